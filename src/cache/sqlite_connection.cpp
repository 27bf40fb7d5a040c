#include "cache/sqlite_connection.hpp"

#include "cache/sqlite_schema.hpp"
#include "llm_caching/errors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace llm_caching::cache {
namespace {

namespace fs = std::filesystem;

std::string corrupt_hint(const fs::path& path) {
  return fmt::format(
      "the cache file {} is not a usable SQLite database (corrupt, or not SQLite at all); run "
      "`llm-caching cache clear` or delete the file (with its -wal, -shm and -locks files)",
      path.string());
}

}  // namespace

bool is_corruption(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT;
}

bool stored_key_is(sqlite3_stmt* statement, int column, std::string_view key) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, column));
  const int size = sqlite3_column_bytes(statement, column);
  return text != nullptr && std::string_view(text, static_cast<std::size_t>(size)) == key;
}

void create_private_directories(const fs::path& dir) {
  if (dir.empty() || dir == dir.root_path()) return;
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) return;
  create_private_directories(dir.parent_path());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw CacheError(fmt::format("cannot create the cache directory {}: {}", dir.string(),
                                 std::strerror(errno)));
  }
}

void create_private_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw CacheError(
        fmt::format("cannot create the cache file {}: {}", path.string(), std::strerror(errno)));
  }
  ::close(fd);
}

SqliteConnection::~SqliteConnection() {
  for (sqlite3_stmt* stmt : {select_entry, touch_entry, upsert_entry, delete_entry, delete_row,
                             delete_range, delete_from, delete_expired, select_totals,
                             select_oldest, begin_immediate, commit, rollback}) {
    sqlite3_finalize(stmt);
  }
  sqlite3_close_v2(db);
}

void SqliteConnection::fail(std::string_view what, int rc) const {
  if (is_corruption(rc)) throw CacheError(corrupt_hint(path));
  throw CacheError(fmt::format("SQLite cache {}: {} failed: {}", path.string(), what,
                               db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}

sqlite3_stmt* SqliteConnection::prepare(const char* sql) const {
  sqlite3_stmt* stmt = nullptr;
  check(sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr),
        "preparing a statement");
  return stmt;
}

std::int64_t SqliteConnection::query_int(const char* sql) const {
  sqlite3_stmt* stmt = prepare(sql);
  const int rc = sqlite3_step(stmt);
  const std::int64_t value = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) fail("reading the schema", rc);
  return value;
}

void SqliteConnection::open(std::chrono::milliseconds busy_timeout, std::uint64_t mmap_bytes) {
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  check(rc, "opening");
  sqlite3_extended_result_codes(db, 1);
  check(sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count())), "setting busy_timeout");
  enable_wal(busy_timeout);
  exec("PRAGMA synchronous=NORMAL", "setting synchronous=NORMAL");
  // Reads through a memory map skip a pread() and a copy per page: on a file far larger than
  // SQLite's page cache this is most of the cost of a hit. Writes still go through the WAL.
  // Mapped pages count in RSS, so the map is bounded (SqliteOptions::mmap_bytes).
  exec(fmt::format("PRAGMA mmap_size={}", mmap_bytes).c_str(), "setting mmap_size");
  ensure_sqlite_schema(*this);
  prepare_statements();
}

/// Switching a fresh file to WAL needs an exclusive lock, and SQLite reports SQLITE_BUSY at once
/// (without its busy handler) when another process is creating the same file: retry until the
/// busy timeout is spent. Once the file is in WAL mode this is a no-op.
void SqliteConnection::enable_wal(std::chrono::milliseconds busy_timeout) {
  const auto deadline = std::chrono::steady_clock::now() + busy_timeout;
  while (true) {
    const int rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
    const int primary = rc & 0xff;
    if (rc == SQLITE_OK) return;
    if ((primary != SQLITE_BUSY && primary != SQLITE_LOCKED) ||
        std::chrono::steady_clock::now() >= deadline) {
      fail("switching to WAL", rc);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void SqliteConnection::prepare_statements() {
  select_entry = prepare("SELECT value, expires_at, last_access, key FROM entries WHERE id = ?1");
  touch_entry = prepare("UPDATE entries SET last_access = ?2 WHERE id = ?3 AND key = ?1");
  upsert_entry = prepare(
      "INSERT INTO entries(id, key, value, expires_at, size, last_access) "
      "VALUES (?6, ?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT(id) DO UPDATE SET key = excluded.key, value = excluded.value, "
      "expires_at = excluded.expires_at, size = excluded.size, last_access = excluded.last_access");
  delete_entry = prepare("DELETE FROM entries WHERE id = ?2 AND key = ?1");
  delete_row = prepare("DELETE FROM entries WHERE rowid = ?1");
  delete_range = prepare("DELETE FROM entries WHERE key >= ?1 AND key < ?2");
  delete_from = prepare("DELETE FROM entries WHERE key >= ?1");
  delete_expired = prepare("DELETE FROM entries WHERE expires_at > 0 AND expires_at <= ?1");
  select_totals = prepare(
      "SELECT (SELECT value FROM meta WHERE name = 'total_bytes'), "
      "(SELECT value FROM meta WHERE name = 'entry_count')");
  select_oldest = prepare("SELECT rowid, size FROM entries ORDER BY last_access LIMIT ?1");
  begin_immediate = prepare("BEGIN IMMEDIATE");
  commit = prepare("COMMIT");
  rollback = prepare("ROLLBACK");
}

std::pair<std::uint64_t, std::uint64_t> SqliteConnection::totals() {
  StatementUse use(select_totals);
  step(select_totals, "reading totals");
  return {static_cast<std::uint64_t>(sqlite3_column_int64(select_totals, 0)),
          static_cast<std::uint64_t>(sqlite3_column_int64(select_totals, 1))};
}

}  // namespace llm_caching::cache

#include "cache/sqlite_backend.hpp"

#include "cache/fnv1a.hpp"
#include "core/thread_name.hpp"

#include "llm_caching/errors.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

namespace llm_caching::cache {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMetaSchema = R"sql(
CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta(name, value) VALUES ('total_bytes', 0), ('entry_count', 0);
)sql";

// Schema 3. Rows are appended in write order (the implicit rowid): an insert rewrites the table's
// last page and one small leaf of the id index. Schema 2 stored rows under their id, so each
// insert rewrote a random 4 KiB leaf holding ~3 entries, and a key index leaf besides: 2.2x the
// CPU and 2.6x the WAL bytes per write. Looked up by id, a 63-bit hash of the key, through its
// index. The key is still stored and compared, so a hash collision is a miss, never another
// key's answer.
constexpr const char* kEntriesSchema = R"sql(
CREATE TABLE entries(
  id INTEGER NOT NULL UNIQUE,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0, -- unix ms, 0 = never
  size INTEGER NOT NULL,                 -- bytes of key + value
  last_access INTEGER NOT NULL           -- unix ms, refreshed at most once a minute
);
CREATE INDEX entries_by_last_access ON entries(last_access);
CREATE INDEX entries_by_expiry ON entries(expires_at) WHERE expires_at > 0;
-- Totals kept by triggers, so every process sees the same numbers without scanning the table.
CREATE TRIGGER entries_insert AFTER INSERT ON entries BEGIN
  UPDATE meta SET value = value + NEW.size WHERE name = 'total_bytes';
  UPDATE meta SET value = value + 1 WHERE name = 'entry_count';
END;
CREATE TRIGGER entries_delete AFTER DELETE ON entries BEGIN
  UPDATE meta SET value = value - OLD.size WHERE name = 'total_bytes';
  UPDATE meta SET value = value - 1 WHERE name = 'entry_count';
END;
CREATE TRIGGER entries_resize AFTER UPDATE OF size ON entries BEGIN
  UPDATE meta SET value = value + NEW.size - OLD.size WHERE name = 'total_bytes';
END;
)sql";

// Schema 2 -> 3, in the opening connection's transaction: the old table is renamed, the rows
// move to a table of schema 3 a chunk at a time, each chunk deleted from the old table as it
// lands (so the pages it frees hold the next chunks and the file does not double), and the
// totals are counted again (the new triggers saw the copies but not the old rows).
constexpr const char* kMigrateFrom2 = R"sql(
DROP TRIGGER entries_insert;
DROP TRIGGER entries_delete;
DROP TRIGGER entries_resize;
DROP INDEX entries_by_last_access;
DROP INDEX entries_by_expiry;
ALTER TABLE entries RENAME TO entries_v2;
)sql";
constexpr const char* kMigrateFrom2Chunk = R"sql(
INSERT INTO entries(id, key, value, expires_at, size, last_access)
  SELECT id, key, value, expires_at, size, last_access FROM entries_v2 ORDER BY id LIMIT 4096;
DELETE FROM entries_v2 WHERE id <= (SELECT max(id) FROM entries);
)sql";
constexpr const char* kMigrateFrom2Finish = R"sql(
DROP TABLE entries_v2;
UPDATE meta SET value = (SELECT coalesce(sum(size), 0) FROM entries) WHERE name = 'total_bytes';
UPDATE meta SET value = (SELECT count(*) FROM entries) WHERE name = 'entry_count';
UPDATE meta SET value = 3 WHERE name = 'schema_version';
)sql";

}  // namespace

std::int64_t sqlite_entry_id(std::string_view key) noexcept {
  return static_cast<std::int64_t>(fnv1a64(key) & 0x7fffffffffffffffULL);
}

namespace {

/// Whether column `column` of the current row holds exactly `key` (ids can collide; keys not).
bool stored_key_is(sqlite3_stmt* statement, int column, std::string_view key) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, column));
  const int size = sqlite3_column_bytes(statement, column);
  return text != nullptr && std::string_view(text, static_cast<std::size_t>(size)) == key;
}

std::string corrupt_hint(const fs::path& path) {
  return fmt::format(
      "the cache file {} is not a usable SQLite database (corrupt, or not SQLite at all); run "
      "`llm-caching cache clear` or delete the file (with its -wal, -shm and -locks files)",
      path.string());
}

bool is_corruption(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT;
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

/// Creates the file with mode 0600 before SQLite sees it (SQLite would use 0644); SQLite gives
/// its -wal and -shm files the mode of the database file.
void create_private_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw CacheError(
        fmt::format("cannot create the cache file {}: {}", path.string(), std::strerror(errno)));
  }
  ::close(fd);
}

/// Resets a statement when a use of it ends, so that no read transaction stays open (it would
/// pin an old snapshot and block WAL checkpoints).
class StatementUse {
 public:
  explicit StatementUse(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StatementUse() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StatementUse(const StatementUse&) = delete;
  StatementUse& operator=(const StatementUse&) = delete;
  sqlite3_stmt* operator*() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

}  // namespace

/// Moves the WAL back into the database file on its own thread and connection. Left to SQLite,
/// the commit that crosses the WAL threshold runs the checkpoint, fsync included, under the
/// backend's mutex: every read and lock of the process then waits for the disk (a gateway miss
/// added milliseconds at p99). A PASSIVE checkpoint blocks neither readers nor writers.
struct SqliteBackend::Checkpointer {
  /// WAL pages after a commit from which a checkpoint is asked for (SQLite's default).
  static constexpr int kWalPages = 1000;
  /// WAL pages from which the committing connection checkpoints itself (see on_commit).
  static constexpr int kRestartWalPages = 4 * kWalPages;

  explicit Checkpointer(fs::path file) : path(std::move(file)) {}
  ~Checkpointer() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    wake.notify_one();
    if (thread.joinable()) thread.join();
  }

  /// sqlite3_wal_hook callback, run after each commit of the backend's connection.
  static int on_commit(void* self, sqlite3* db, const char*, int wal_pages) {
    auto& checkpointer = *static_cast<Checkpointer*>(self);
    // Run by the backend's one connection, under its mutex: the counters need no lock.
    if (wal_pages < checkpointer.last_wal_pages) checkpointer.next_request_at = kWalPages;
    checkpointer.last_wal_pages = wal_pages;
    if (wal_pages >= kRestartWalPages) {
      // SQLite restarts the WAL from the top only when a transaction starts on a fully
      // checkpointed WAL. Under steady writes the background checkpoint never leaves one, and
      // the file grows: here the committing connection checkpoints, as SQLite would, and its
      // next transaction restarts the WAL. (After the background one, never against it.)
      std::lock_guard lock(checkpointer.checkpointing);
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (wal_pages >= checkpointer.next_request_at) {
      // Once per kWalPages new pages, not after every commit past the threshold: each
      // checkpoint syncs the WAL and the file (two fsyncs), and a miss commits every time.
      checkpointer.next_request_at = wal_pages + kWalPages;
      checkpointer.request();
    }
    return SQLITE_OK;
  }

  void request() {
    {
      std::lock_guard lock(mutex);
      requested = true;
      // Started on first need: most backends (tests, short CLI runs) never fill a WAL.
      if (!thread.joinable()) thread = std::thread([this] { run(); });
    }
    wake.notify_one();
  }

  void run() {
    // Idle priority, whichever thread started it (the gateway's idle writer or a caller's): a
    // checkpoint is a burst of copying and two fsyncs that no request waits for. If it starves,
    // the WAL still stays bounded: past kRestartWalPages the committing connection checkpoints.
    core::make_this_thread_idle();
    core::name_this_thread("llmc-checkpoint");
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      spdlog::warn("SQLite cache {}: no checkpoint connection: {}", path.string(),
                   sqlite3_errmsg(db));
      sqlite3_close_v2(db);
      return;
    }
    sqlite3_busy_timeout(db, 1000);
    // A connection learns that the file is in WAL mode when it first reads it; until then a
    // checkpoint does nothing.
    sqlite3_exec(db, "PRAGMA schema_version", nullptr, nullptr, nullptr);
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait(lock, [this] { return requested || stopping; });
      if (stopping) break;
      requested = false;
      lock.unlock();
      int rc = SQLITE_OK;
      {
        std::lock_guard busy(checkpointing);
        rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      }
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        spdlog::debug("SQLite cache {}: checkpoint: {}", path.string(), sqlite3_errmsg(db));
      }
      lock.lock();
    }
    lock.unlock();
    sqlite3_close_v2(db);
  }

  fs::path path;
  std::mutex mutex;
  std::condition_variable wake;
  bool requested = false;           // guarded by mutex
  bool stopping = false;            // guarded by mutex
  int last_wal_pages = 0;           // on_commit's own: WAL size after the previous commit
  int next_request_at = kWalPages;  // on_commit's own: WAL size that asks for a checkpoint
  /// Held while a checkpoint of this process runs, so the two never collide (one gets BUSY).
  std::mutex checkpointing;
  std::thread thread;
};

struct SqliteBackend::Connection {
  fs::path path;
  sqlite3* db = nullptr;
  sqlite3_stmt* select_entry = nullptr;
  sqlite3_stmt* touch_entry = nullptr;
  sqlite3_stmt* upsert_entry = nullptr;
  sqlite3_stmt* delete_entry = nullptr;
  sqlite3_stmt* delete_row = nullptr;
  sqlite3_stmt* delete_range = nullptr;
  sqlite3_stmt* delete_from = nullptr;
  sqlite3_stmt* delete_expired = nullptr;
  sqlite3_stmt* select_totals = nullptr;
  sqlite3_stmt* select_oldest = nullptr;
  sqlite3_stmt* begin_immediate = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* rollback = nullptr;

  explicit Connection(fs::path file) : path(std::move(file)) {}
  ~Connection() {
    for (sqlite3_stmt* stmt : {select_entry, touch_entry, upsert_entry, delete_entry, delete_row,
                               delete_range, delete_from, delete_expired, select_totals,
                               select_oldest, begin_immediate, commit, rollback}) {
      sqlite3_finalize(stmt);
    }
    sqlite3_close_v2(db);
  }

  [[noreturn]] void fail(std::string_view what, int rc) const {
    if (is_corruption(rc)) throw CacheError(corrupt_hint(path));
    throw CacheError(fmt::format("SQLite cache {}: {} failed: {}", path.string(), what,
                                 db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  }
  void check(int rc, std::string_view what) const {
    if (rc != SQLITE_OK) fail(what, rc);
  }
  void exec(const char* sql, std::string_view what) const {
    check(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), what);
  }
  sqlite3_stmt* prepare(const char* sql) const {
    sqlite3_stmt* stmt = nullptr;
    check(sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr),
          "preparing a statement");
    return stmt;
  }
  /// A one-off query yielding one integer (schema checks; not on any hot path).
  std::int64_t query_int(const char* sql) const {
    sqlite3_stmt* stmt = prepare(sql);
    const int rc = sqlite3_step(stmt);
    const std::int64_t value = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW) fail("reading the schema", rc);
    return value;
  }
  /// Steps a statement; true while it yields rows.
  bool step(sqlite3_stmt* stmt, std::string_view what) const {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail(what, rc);
    return false;
  }
  void run(sqlite3_stmt* stmt, std::string_view what) const {
    StatementUse use(stmt);
    step(stmt, what);
  }
  void bind_text(sqlite3_stmt* stmt, int index, std::string_view text) const {
    check(sqlite3_bind_text64(stmt, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8),
          "binding a key");
  }
  void bind_int(sqlite3_stmt* stmt, int index, std::int64_t value) const {
    check(sqlite3_bind_int64(stmt, index, value), "binding a number");
  }
  std::uint64_t changes() const { return static_cast<std::uint64_t>(sqlite3_changes64(db)); }

  /// Runs `body` inside BEGIN IMMEDIATE ... COMMIT (the write lock is taken up front, so the
  /// busy timeout applies instead of a deadlock-avoiding SQLITE_BUSY on lock upgrade).
  template <class Body>
  auto write_transaction(Body&& body) {
    run(begin_immediate, "BEGIN IMMEDIATE");
    try {
      if constexpr (std::is_void_v<decltype(body())>) {
        body();
        run(commit, "COMMIT");
      } else {
        auto result = body();
        run(commit, "COMMIT");
        return result;
      }
    } catch (...) {
      sqlite3_reset(rollback);
      sqlite3_step(rollback);
      sqlite3_reset(rollback);
      throw;
    }
  }

  void open(std::chrono::milliseconds busy_timeout, std::uint64_t mmap_bytes);
  void enable_wal(std::chrono::milliseconds busy_timeout);
  void ensure_schema();
  /// Under ensure_schema's transaction.
  void upgrade_from_schema_2();
  void prepare_statements();
  std::pair<std::uint64_t, std::uint64_t> totals();  // bytes, entries
};

void SqliteBackend::Connection::open(std::chrono::milliseconds busy_timeout,
                                     std::uint64_t mmap_bytes) {
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
  ensure_schema();
  prepare_statements();
}

/// Switching a fresh file to WAL needs an exclusive lock, and SQLite reports SQLITE_BUSY at once
/// (without its busy handler) when another process is creating the same file: retry until the
/// busy timeout is spent. Once the file is in WAL mode this is a no-op.
void SqliteBackend::Connection::enable_wal(std::chrono::milliseconds busy_timeout) {
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

void SqliteBackend::Connection::upgrade_from_schema_2() {
  const std::int64_t entries = query_int("SELECT count(*) FROM entries");
  spdlog::info(
      "SQLite cache {}: upgrading {} entries from schema 2 to 3 (once; a large file takes "
      "a minute or more)",
      path.string(), entries);
  exec(kMigrateFrom2, "upgrading the cache from schema 2");
  exec(kEntriesSchema, "upgrading the cache from schema 2");
  while (query_int("SELECT EXISTS (SELECT 1 FROM entries_v2)") != 0) {
    exec(kMigrateFrom2Chunk, "upgrading the cache from schema 2");
  }
  exec(kMigrateFrom2Finish, "upgrading the cache from schema 2");
}

void SqliteBackend::Connection::ensure_schema() {
  exec("BEGIN IMMEDIATE", "BEGIN IMMEDIATE");
  bool upgraded = false;
  try {
    if (query_int("SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='meta'") == 0) {
      if (query_int("SELECT count(*) FROM sqlite_schema") != 0) {
        throw CacheError(fmt::format(
            "the file {} is a SQLite database of another program, not an llm-caching cache; "
            "choose another path",
            path.string()));
      }
      exec(kMetaSchema, "creating the schema");
      exec(kEntriesSchema, "creating the schema");
      const std::string version = fmt::format(
          "INSERT INTO meta(name, value) VALUES ('schema_version', {})", kSqliteSchemaVersion);
      exec(version.c_str(), "writing the schema version");
    } else {
      std::int64_t version =
          query_int("SELECT coalesce(max(value), 0) FROM meta WHERE name='schema_version'");
      if (version == 2) {
        upgrade_from_schema_2();
        version = 3;
        upgraded = true;
      }
      if (version != kSqliteSchemaVersion) {
        throw CacheError(fmt::format(
            "the cache file {} has schema version {}, this build reads version {} ({}); use a "
            "matching version, or another path (the file is only a cache: deleting it is safe)",
            path.string(), version, kSqliteSchemaVersion,
            version > kSqliteSchemaVersion ? "written by a newer llm-caching"
                                           : "written by an older llm-caching"));
      }
    }
    exec("COMMIT", "COMMIT");
    if (upgraded) {
      // The upgrade wrote the whole table into the WAL: give that disk back now, not at exit.
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    }
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void SqliteBackend::Connection::prepare_statements() {
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

std::pair<std::uint64_t, std::uint64_t> SqliteBackend::Connection::totals() {
  StatementUse use(select_totals);
  step(select_totals, "reading totals");
  return {static_cast<std::uint64_t>(sqlite3_column_int64(select_totals, 0)),
          static_cast<std::uint64_t>(sqlite3_column_int64(select_totals, 1))};
}

namespace {

/// SQLite counts every allocation of the process under one global mutex unless told otherwise
/// before it initializes: the gateway's threads then queue on each other's mallocs. The count
/// only serves sqlite3_memory_used(), which nothing here reads. A program that initialized
/// SQLite itself keeps its own choice (the call then fails, harmlessly).
void stop_sqlite_memory_statistics_once() {
  static const bool done = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)done;
}

}  // namespace

SqliteBackend::SqliteBackend(SqliteOptions options, NowMs now_ms)
    : options_(std::move(options)), now_ms_(std::move(now_ms)) {
  stop_sqlite_memory_statistics_once();
  if (!options_.path.is_absolute()) {
    throw CacheError(
        fmt::format("the SQLite cache path must be absolute, got '{}'", options_.path.string()));
  }
  create_private_directories(options_.path.parent_path());
  create_private_file(options_.path);
  auto db = std::make_unique<Connection>(options_.path);
  db->open(options_.busy_timeout, 0);
  checkpointer_ = std::make_unique<Checkpointer>(options_.path);
  locks_ = std::make_unique<KeyLockFile>(fs::path(options_.path.string() + "-locks"));
  // Replaces SQLite's automatic checkpoint (itself a WAL hook) with the checkpointer's thread.
  sqlite3_wal_hook(db->db, &Checkpointer::on_commit, checkpointer_.get());
  db_ = std::move(db);
  // Reads have a connection of their own: a hit or a miss never waits for a write, nor for the
  // checkpoint a commit may run (both hold the writer's mutex). Only the reader maps the file,
  // so the map is counted once in RSS; the writer reads its pages with pread. (A pool of
  // readers, one per worker, measured no better and would split the map: docs/PERFORMANCE.md.)
  auto reader = std::make_unique<Connection>(options_.path);
  reader->open(options_.busy_timeout, options_.mmap_bytes);
  // Its only writes are best-effort access-time touches: they never checkpoint.
  reader->exec("PRAGMA wal_autocheckpoint=0", "turning off the reader's checkpoints");
  reader_ = std::move(reader);
}

SqliteBackend::~SqliteBackend() = default;

template <class Op>
auto SqliteBackend::guarded(Op&& op) {
  std::lock_guard lock(mutex_);
  try {
    return op(*db_);
  } catch (...) {
    ++counters_.errors;
    throw;
  }
}

template <class Op>
auto SqliteBackend::counting_errors(Op&& op) {
  try {
    return op();
  } catch (...) {
    ++unguarded_.errors;
    throw;
  }
}

std::optional<std::string> SqliteBackend::get_now(std::string_view key) {
  const std::int64_t now = now_ms_();
  std::lock_guard lock(read_mutex_);
  return counting_errors([&] { return read_entry(*reader_, key, now); });
}

/// Under read_mutex_.
std::optional<std::string> SqliteBackend::read_entry(Connection& db, std::string_view key,
                                                     std::int64_t now) {
  std::int64_t last_access = 0;
  std::optional<std::string> value;
  {
    StatementUse use(db.select_entry);
    db.bind_int(db.select_entry, 1, sqlite_entry_id(key));
    if (db.step(db.select_entry, "reading an entry") && stored_key_is(db.select_entry, 3, key)) {
      const std::int64_t expires_at = sqlite3_column_int64(db.select_entry, 1);
      if (expires_at != 0 && now >= expires_at) {
        ++unguarded_.expired;  // left for prune or eviction: reads stay read-only
      } else {
        const auto* data = static_cast<const char*>(sqlite3_column_blob(db.select_entry, 0));
        const int size = sqlite3_column_bytes(db.select_entry, 0);
        value.emplace(data != nullptr ? data : "", static_cast<std::size_t>(size));
        last_access = sqlite3_column_int64(db.select_entry, 2);
      }
    }
  }
  if (!value) {
    ++unguarded_.misses;
    return value;
  }
  ++unguarded_.hits;
  if (now - last_access >= kLastAccessGranularityMs) {
    StatementUse use(db.touch_entry);
    db.bind_text(db.touch_entry, 1, key);
    db.bind_int(db.touch_entry, 2, now);
    db.bind_int(db.touch_entry, 3, sqlite_entry_id(key));
    // Best effort and without waiting: a busy file must not slow a hit or turn it into an
    // error; the next hit a minute later tries again.
    sqlite3_busy_timeout(db.db, 0);
    sqlite3_step(db.touch_entry);
    sqlite3_busy_timeout(db.db, static_cast<int>(options_.busy_timeout.count()));
  }
  return value;
}

void SqliteBackend::upsert(std::string_view key, std::string_view value,
                           std::chrono::milliseconds ttl, std::int64_t now) {
  Connection& db = *db_;
  StatementUse use(db.upsert_entry);
  db.bind_text(db.upsert_entry, 1, key);
  // A null data pointer would bind SQL NULL, not an empty blob.
  const char* data = value.data() != nullptr ? value.data() : "";
  db.check(sqlite3_bind_blob64(db.upsert_entry, 2, data, value.size(), SQLITE_STATIC),
           "binding a value");
  db.bind_int(db.upsert_entry, 3, ttl.count() == 0 ? 0 : now + ttl.count());
  db.bind_int(db.upsert_entry, 4, static_cast<std::int64_t>(key.size() + value.size()));
  db.bind_int(db.upsert_entry, 5, now);
  db.bind_int(db.upsert_entry, 6, sqlite_entry_id(key));
  db.step(db.upsert_entry, "writing an entry");
  ++counters_.writes;
}

void SqliteBackend::put_now(std::string_view key, std::string_view value,
                            std::chrono::milliseconds ttl) {
  if (ttl.count() < 0) return;
  const std::int64_t now = now_ms_();
  guarded([&](Connection& db) {
    upsert(key, value, ttl, now);
    if (db.totals().first > options_.max_bytes) evict_if_over_bound(now);
  });
}

void SqliteBackend::put_many_now(const std::vector<PutItem>& items) {
  const std::int64_t now = now_ms_();
  guarded([&](Connection& db) {
    db.write_transaction([&] {
      for (const PutItem& item : items) {
        // No yield_if_idle here: a yield inside the transaction keeps the write lock through the
        // wait, which on a busy machine is long for an idle thread (the exchange's catch-up
        // writer and other processes' writers would wait for it too).
        if (item.ttl.count() >= 0) upsert(item.key, item.value, item.ttl, now);
      }
    });
    if (db.totals().first > options_.max_bytes) evict_if_over_bound(now);
  });
}

/// Under the lock. Drops expired entries first, then least recently accessed ones, until the
/// file holds at most 90% of max_bytes.
void SqliteBackend::evict_if_over_bound(std::int64_t now) {
  Connection& db = *db_;
  const std::uint64_t target = options_.max_bytes / 10 * 9;
  db.write_transaction([&] {
    {
      StatementUse use(db.delete_expired);
      db.bind_int(db.delete_expired, 1, now);
      db.step(db.delete_expired, "pruning expired entries");
      counters_.expired += db.changes();
    }
    std::uint64_t total = db.totals().first;
    std::vector<std::int64_t> victims;  // rowids
    while (total > target) {
      victims.clear();
      {
        StatementUse use(db.select_oldest);
        db.bind_int(db.select_oldest, 1, 256);
        while (total > target && db.step(db.select_oldest, "choosing entries to evict")) {
          victims.push_back(sqlite3_column_int64(db.select_oldest, 0));
          total -= std::min<std::uint64_t>(total, sqlite3_column_int64(db.select_oldest, 1));
        }
      }
      if (victims.empty()) break;  // totals disagree with the rows; nothing left to evict
      for (const std::int64_t rowid : victims) {
        StatementUse use(db.delete_row);
        db.bind_int(db.delete_row, 1, rowid);
        db.step(db.delete_row, "evicting an entry");
        counters_.evictions += db.changes();
      }
      total = db.totals().first;
    }
  });
}

bool SqliteBackend::erase_now(std::string_view key) {
  return guarded([&](Connection& db) {
    StatementUse use(db.delete_entry);
    db.bind_text(db.delete_entry, 1, key);
    db.bind_int(db.delete_entry, 2, sqlite_entry_id(key));
    db.step(db.delete_entry, "erasing an entry");
    return db.changes() > 0;
  });
}

std::uint64_t SqliteBackend::clear_now(std::string_view prefix) {
  // Range [prefix, successor(prefix)) in byte order: unlike LIKE, treats '%' and '_' in keys as
  // plain characters. No index orders the keys (schema 3 keeps writes cheap instead), so this
  // scans the table: a maintenance command, not a request path.
  std::string successor(prefix);
  while (!successor.empty() && static_cast<unsigned char>(successor.back()) == 0xff) {
    successor.pop_back();
  }
  if (!successor.empty()) successor.back() = static_cast<char>(successor.back() + 1);
  return guarded([&](Connection& db) {
    sqlite3_stmt* stmt = successor.empty() ? db.delete_from : db.delete_range;
    StatementUse use(stmt);
    db.bind_text(stmt, 1, prefix);
    if (!successor.empty()) db.bind_text(stmt, 2, successor);
    db.step(stmt, "clearing entries");
    return db.changes();
  });
}

std::uint64_t SqliteBackend::prune_now() {
  const std::int64_t now = now_ms_();
  return guarded([&](Connection& db) {
    StatementUse use(db.delete_expired);
    db.bind_int(db.delete_expired, 1, now);
    db.step(db.delete_expired, "pruning expired entries");
    const std::uint64_t removed = db.changes();
    counters_.expired += removed;
    return removed;
  });
}

bool SqliteBackend::try_lock_now(std::string_view lock_key, std::string_view token,
                                 std::chrono::milliseconds ttl) {
  return counting_errors([&] { return locks_->try_lock(lock_key, token, ttl, now_ms_()); });
}

void SqliteBackend::unlock_now(std::string_view lock_key, std::string_view token) {
  counting_errors([&] { locks_->unlock(lock_key, token); });
}

BackendStats SqliteBackend::stats_now() {
  return guarded([&](Connection& db) {
    BackendStats stats = counters_;
    stats.hits += unguarded_.hits;
    stats.misses += unguarded_.misses;
    stats.expired += unguarded_.expired;
    stats.errors += unguarded_.errors;
    std::tie(stats.bytes, stats.entries) = db.totals();
    return stats;
  });
}

asio::awaitable<std::optional<std::string>> SqliteBackend::get(std::string key) {
  co_return get_now(key);
}
asio::awaitable<void> SqliteBackend::put(std::string key, std::string value,
                                         std::chrono::milliseconds ttl) {
  put_now(key, value, ttl);
  co_return;
}
asio::awaitable<void> SqliteBackend::put_many(std::vector<PutItem> items) {
  put_many_now(items);
  co_return;
}
asio::awaitable<bool> SqliteBackend::erase(std::string key) {
  co_return erase_now(key);
}
asio::awaitable<std::uint64_t> SqliteBackend::clear(std::string prefix) {
  co_return clear_now(prefix);
}
asio::awaitable<std::uint64_t> SqliteBackend::prune() {
  co_return prune_now();
}
asio::awaitable<BackendStats> SqliteBackend::stats() {
  co_return stats_now();
}
asio::awaitable<bool> SqliteBackend::try_lock(std::string lock_key, std::string token,
                                              std::chrono::milliseconds ttl) {
  co_return try_lock_now(lock_key, token, ttl);
}
asio::awaitable<void> SqliteBackend::unlock(std::string lock_key, std::string token) {
  unlock_now(lock_key, token);
  co_return;
}

asio::awaitable<void> SqliteBackend::wait_for_unlock(std::string lock_key,
                                                     std::chrono::milliseconds at_most) {
  // Testing a file lock is one system call: poll it often, so that a waiter answers within a
  // few milliseconds of the holder's release (or of its death).
  const auto until = std::chrono::steady_clock::now() + at_most;
  auto pause = std::chrono::milliseconds(1);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (locks_->is_locked(lock_key, now_ms_())) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) break;
    timer.expires_at(std::min(now + pause, until));
    co_await timer.async_wait(asio::use_awaitable);
    pause = std::min(pause * 2, kLongestUnlockPoll);
  }
}

std::string SqliteBackend::describe() const {
  return "sqlite://" + options_.path.string();
}

}  // namespace llm_caching::cache

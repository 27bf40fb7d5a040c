// One SQLite connection of a SqliteBackend: the file opened in WAL mode with its prepared
// statements, and the small wrappers that turn SQLite result codes into CacheErrors naming the
// file. Internal to the SQLite backend TUs (it pulls in sqlite3.h).
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace llm_caching::cache {

/// Whether a SQLite result code says the file is not a database or is damaged.
bool is_corruption(int rc);

/// Whether column `column` of the current row holds exactly `key` (ids can collide; keys not).
bool stored_key_is(sqlite3_stmt* statement, int column, std::string_view key);

/// Creates missing directories with mode 0700 (the parents first). Throws CacheError.
void create_private_directories(const std::filesystem::path& dir);
/// Creates the file with mode 0600 before SQLite sees it (SQLite would use 0644); SQLite gives
/// its -wal and -shm files the mode of the database file. Throws CacheError.
void create_private_file(const std::filesystem::path& path);

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

struct SqliteConnection {
  std::filesystem::path path;
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

  explicit SqliteConnection(std::filesystem::path file) : path(std::move(file)) {}
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  /// Throws CacheError: the corruption hint, or "<what> failed" with SQLite's message.
  [[noreturn]] void fail(std::string_view what, int rc) const;
  void check(int rc, std::string_view what) const {
    if (rc != SQLITE_OK) fail(what, rc);
  }
  void exec(const char* sql, std::string_view what) const {
    check(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), what);
  }
  sqlite3_stmt* prepare(const char* sql) const;
  /// A one-off query yielding one integer (schema checks; not on any hot path).
  std::int64_t query_int(const char* sql) const;
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

  /// Opens the file (WAL, synchronous=NORMAL, a memory map of `mmap_bytes`), creates or checks
  /// the schema (sqlite_schema.hpp) and prepares the statements. Throws CacheError.
  void open(std::chrono::milliseconds busy_timeout, std::uint64_t mmap_bytes);
  void enable_wal(std::chrono::milliseconds busy_timeout);
  void prepare_statements();
  std::pair<std::uint64_t, std::uint64_t> totals();  // bytes, entries
};

}  // namespace llm_caching::cache

// The SQLite backend's operations (see sqlite_backend.hpp for its parts).
#include "cache/sqlite_backend.hpp"

#include "cache/fnv1a.hpp"
#include "cache/sqlite_checkpointer.hpp"
#include "cache/sqlite_connection.hpp"

#include "llm_caching/errors.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <utility>
#include <vector>

namespace llm_caching::cache {

namespace fs = std::filesystem;

std::int64_t sqlite_entry_id(std::string_view key) noexcept {
  return static_cast<std::int64_t>(fnv1a64(key) & 0x7fffffffffffffffULL);
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
  auto db = std::make_unique<SqliteConnection>(options_.path);
  db->open(options_.busy_timeout, 0);
  checkpointer_ = std::make_unique<SqliteCheckpointer>(options_.path);
  locks_ = std::make_unique<KeyLockFile>(fs::path(options_.path.string() + "-locks"));
  // Replaces SQLite's automatic checkpoint (itself a WAL hook) with the checkpointer's thread.
  sqlite3_wal_hook(db->db, &SqliteCheckpointer::on_commit, checkpointer_.get());
  db_ = std::move(db);
  // Reads have a connection of their own: a hit or a miss never waits for a write, nor for the
  // checkpoint a commit may run (both hold the writer's mutex). Only the reader maps the file,
  // so the map is counted once in RSS; the writer reads its pages with pread. (A pool of
  // readers, one per worker, measured no better and would split the map: docs/PERFORMANCE.md.)
  auto reader = std::make_unique<SqliteConnection>(options_.path);
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
std::optional<std::string> SqliteBackend::read_entry(SqliteConnection& db, std::string_view key,
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
  SqliteConnection& db = *db_;
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
  guarded([&](SqliteConnection& db) {
    upsert(key, value, ttl, now);
    if (db.totals().first > options_.max_bytes) evict_if_over_bound(now);
  });
}

void SqliteBackend::put_many_now(const std::vector<PutItem>& items) {
  const std::int64_t now = now_ms_();
  guarded([&](SqliteConnection& db) {
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
  SqliteConnection& db = *db_;
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
  return guarded([&](SqliteConnection& db) {
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
  return guarded([&](SqliteConnection& db) {
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
  return guarded([&](SqliteConnection& db) {
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
  return guarded([&](SqliteConnection& db) {
    BackendStats stats = counters_;
    stats.hits += unguarded_.hits;
    stats.misses += unguarded_.misses;
    stats.expired += unguarded_.expired;
    stats.errors += unguarded_.errors;
    std::tie(stats.bytes, stats.entries) = db.totals();
    add_stored_counters(stats);
    return stats;
  });
}

Backend::KeyPage SqliteBackend::list_keys_now(std::string_view prefix, std::string_view cursor,
                                              std::size_t limit) {
  std::int64_t after = 0;
  if (!cursor.empty()) {
    const auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), after);
    if (ec != std::errc() || end != cursor.data() + cursor.size()) {
      throw CacheError(fmt::format("invalid key-listing cursor for {}", describe()));
    }
  }
  KeyPage page;
  std::lock_guard lock(read_mutex_);
  counting_errors([&] {
    // A maintenance walk, not a request path: prepared per page rather than kept.
    sqlite3_stmt* stmt = reader_->prepare(
        "SELECT rowid, key FROM entries WHERE rowid > ?1 AND substr(key, 1, length(?2)) = ?2 "
        "ORDER BY rowid LIMIT ?3");
    struct Finalize {
      sqlite3_stmt* stmt;
      ~Finalize() { sqlite3_finalize(stmt); }
    } finalize{stmt};
    reader_->bind_int(stmt, 1, after);
    reader_->bind_text(stmt, 2, prefix);
    reader_->bind_int(stmt, 3, static_cast<std::int64_t>(std::max<std::size_t>(limit, 1)));
    std::int64_t last = after;
    while (reader_->step(stmt, "listing keys")) {
      last = sqlite3_column_int64(stmt, 0);
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
      page.keys.emplace_back(text != nullptr ? text : "",
                             static_cast<std::size_t>(sqlite3_column_bytes(stmt, 1)));
    }
    if (page.keys.size() >= std::max<std::size_t>(limit, 1)) page.cursor = std::to_string(last);
  });
  return page;
}

asio::awaitable<Backend::KeyPage> SqliteBackend::list_keys(std::string prefix, std::string cursor,
                                                           std::size_t limit) {
  co_return list_keys_now(prefix, cursor, limit);
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
  co_await locks_->wait_until_unlocked(std::move(lock_key), at_most, now_ms_, kLongestUnlockPoll);
}

std::string SqliteBackend::describe() const {
  return "sqlite://" + options_.path.string();
}

}  // namespace llm_caching::cache

// The SQLite backend's shared rows of the meta table: the clear mark (backend.hpp, DESIGN §5),
// replaced by every clear and read by each process's tiers every clear_check_interval, and the
// hit, miss and write counters of every process (`cache stats`), which that same reader adds
// this process's counts to (one small write transaction, only when there is something to add).
#include "cache/sqlite_backend.hpp"
#include "cache/sqlite_connection.hpp"

#include <utility>

namespace llm_caching::cache {

namespace {

constexpr const char* kAddCounter =
    "INSERT INTO meta(name, value) VALUES (?1, ?2) "
    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value";

}  // namespace

void SqliteBackend::store_counters() {
  const std::uint64_t hits = unguarded_.hits.load() - flushed_.hits.load();
  const std::uint64_t misses = unguarded_.misses.load() - flushed_.misses.load();
  std::lock_guard lock(mutex_);
  const std::uint64_t writes = counters_.writes - flushed_.writes.load();
  if (hits == 0 && misses == 0 && writes == 0) return;
  try {
    SqliteConnection& db = *db_;
    sqlite3_stmt* stmt = db.prepare(kAddCounter);
    struct Finalize {
      sqlite3_stmt* stmt;
      ~Finalize() { sqlite3_finalize(stmt); }
    } finalize{stmt};
    db.write_transaction([&] {
      for (const auto& [name, count] :
           {std::pair{"hits", hits}, std::pair{"misses", misses}, std::pair{"writes", writes}}) {
        if (count == 0) continue;
        StatementUse use(stmt);
        db.bind_text(stmt, 1, name);
        db.bind_int(stmt, 2, static_cast<std::int64_t>(count));
        db.step(stmt, "adding to the counters");
      }
    });
  } catch (...) {
    ++counters_.errors;
    throw;
  }
  flushed_.hits += hits;
  flushed_.misses += misses;
  flushed_.writes += writes;
}

void SqliteBackend::add_stored_counters(BackendStats& stats) {
  std::int64_t stored[3] = {0, 0, 0};
  {
    std::lock_guard lock(read_mutex_);
    stored[0] = reader_->query_int("SELECT coalesce(max(value), 0) FROM meta WHERE name = 'hits'");
    stored[1] =
        reader_->query_int("SELECT coalesce(max(value), 0) FROM meta WHERE name = 'misses'");
    stored[2] =
        reader_->query_int("SELECT coalesce(max(value), 0) FROM meta WHERE name = 'writes'");
  }
  // What every process stored, plus what this one counted since it last added its counts.
  stats.hits += static_cast<std::uint64_t>(stored[0]) - flushed_.hits.load();
  stats.misses += static_cast<std::uint64_t>(stored[1]) - flushed_.misses.load();
  stats.writes += static_cast<std::uint64_t>(stored[2]) - flushed_.writes.load();
}

std::uint64_t SqliteBackend::read_clear_mark_now() {
  store_counters();
  std::lock_guard lock(read_mutex_);
  try {
    return static_cast<std::uint64_t>(
        reader_->query_int("SELECT coalesce(max(value), 0) FROM meta WHERE name = 'clear_mark'"));
  } catch (...) {
    ++unguarded_.errors;
    throw;
  }
}

void SqliteBackend::write_clear_mark_now() {
  const std::int64_t mark = new_clear_mark();
  std::lock_guard lock(mutex_);
  try {
    SqliteConnection& db = *db_;
    sqlite3_stmt* stmt = db.prepare(
        "INSERT INTO meta(name, value) VALUES ('clear_mark', ?1) "
        "ON CONFLICT(name) DO UPDATE SET value = excluded.value");
    struct Finalize {
      sqlite3_stmt* stmt;
      ~Finalize() { sqlite3_finalize(stmt); }
    } finalize{stmt};
    db.bind_int(stmt, 1, mark);
    db.step(stmt, "writing the clear mark");
  } catch (...) {
    ++counters_.errors;
    throw;
  }
}

asio::awaitable<std::uint64_t> SqliteBackend::read_clear_mark() {
  co_return read_clear_mark_now();
}

asio::awaitable<void> SqliteBackend::write_clear_mark() {
  write_clear_mark_now();
  co_return;
}

}  // namespace llm_caching::cache

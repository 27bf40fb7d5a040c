#include "cache/sqlite_checkpointer.hpp"

#include "core/thread_name.hpp"

#include <spdlog/spdlog.h>

namespace llm_caching::cache {

WalCheckpointPolicy::Action WalCheckpointPolicy::after_commit(int wal_pages) {
  if (wal_pages < last_wal_pages_) next_request_at_ = kWalPages;
  last_wal_pages_ = wal_pages;
  if (wal_pages >= kRestartWalPages) {
    // SQLite restarts the WAL from the top only when a transaction starts on a fully
    // checkpointed WAL. Under steady writes the background checkpoint never leaves one, and
    // the file grows: here the committing connection checkpoints, as SQLite would, and its
    // next transaction restarts the WAL. (After the background one, never against it.)
    return Action::checkpoint_here;
  }
  if (wal_pages >= next_request_at_) {
    // Once per kWalPages new pages, not after every commit past the threshold: each
    // checkpoint syncs the WAL and the file (two fsyncs), and a miss commits every time.
    next_request_at_ = wal_pages + kWalPages;
    return Action::ask_background;
  }
  return Action::none;
}

SqliteCheckpointer::~SqliteCheckpointer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

int SqliteCheckpointer::on_commit(void* self, sqlite3* db, const char*, int wal_pages) {
  auto& checkpointer = *static_cast<SqliteCheckpointer*>(self);
  // Run by the backend's one connection, under its mutex: the policy needs no lock.
  switch (checkpointer.policy_.after_commit(wal_pages)) {
    case WalCheckpointPolicy::Action::checkpoint_here: {
      std::lock_guard lock(checkpointer.checkpointing_);
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      break;
    }
    case WalCheckpointPolicy::Action::ask_background:
      checkpointer.request();
      break;
    case WalCheckpointPolicy::Action::none:
      break;
  }
  return SQLITE_OK;
}

void SqliteCheckpointer::request() {
  {
    std::lock_guard lock(mutex_);
    requested_ = true;
    // Started on first need: most backends (tests, short CLI runs) never fill a WAL.
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  wake_.notify_one();
}

void SqliteCheckpointer::run() {
  // Idle priority, whichever thread started it (the gateway's idle writer or a caller's): a
  // checkpoint is a burst of copying and two fsyncs that no request waits for. If it starves,
  // the WAL still stays bounded: past kRestartWalPages the committing connection checkpoints.
  core::make_this_thread_idle();
  core::name_this_thread("llmc-checkpoint");
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    spdlog::warn("SQLite cache {}: no checkpoint connection: {}", path_.string(),
                 sqlite3_errmsg(db));
    sqlite3_close_v2(db);
    return;
  }
  sqlite3_busy_timeout(db, 1000);
  // A connection learns that the file is in WAL mode when it first reads it; until then a
  // checkpoint does nothing.
  sqlite3_exec(db, "PRAGMA schema_version", nullptr, nullptr, nullptr);
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return requested_ || stopping_; });
    if (stopping_) break;
    requested_ = false;
    lock.unlock();
    int rc = SQLITE_OK;
    {
      std::lock_guard busy(checkpointing_);
      rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      spdlog::debug("SQLite cache {}: checkpoint: {}", path_.string(), sqlite3_errmsg(db));
    }
    lock.lock();
  }
  lock.unlock();
  sqlite3_close_v2(db);
}

}  // namespace llm_caching::cache

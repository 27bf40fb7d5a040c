// Moves the WAL back into the database file on its own thread and connection. Left to SQLite,
// the commit that crosses the WAL threshold runs the checkpoint, fsync included, under the
// backend's mutex: every read and lock of the process then waits for the disk (a gateway miss
// added milliseconds at p99). A PASSIVE checkpoint blocks neither readers nor writers.
// Internal to the SQLite backend TUs.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>

namespace llm_caching::cache {

/// When to checkpoint, from the WAL's size after each commit. Pure
/// (tests/unit/test_sqlite_checkpointer.cpp).
class WalCheckpointPolicy {
 public:
  /// WAL pages after a commit from which a checkpoint is asked for (SQLite's default).
  static constexpr int kWalPages = 1000;
  /// WAL pages from which the committing connection checkpoints itself (see after_commit).
  static constexpr int kRestartWalPages = 4 * kWalPages;

  enum class Action {
    none,
    ask_background,   ///< wake the checkpointer's thread
    checkpoint_here,  ///< the committing connection checkpoints, now
  };
  /// `wal_pages`: the WAL's size in pages after the commit.
  Action after_commit(int wal_pages);

 private:
  int last_wal_pages_ = 0;           ///< WAL size after the previous commit
  int next_request_at_ = kWalPages;  ///< WAL size that asks for a checkpoint
};

class SqliteCheckpointer {
 public:
  explicit SqliteCheckpointer(std::filesystem::path file) : path_(std::move(file)) {}
  /// Stops and joins the thread (if it was ever started).
  ~SqliteCheckpointer();
  SqliteCheckpointer(const SqliteCheckpointer&) = delete;
  SqliteCheckpointer& operator=(const SqliteCheckpointer&) = delete;

  /// sqlite3_wal_hook callback (`self` is the checkpointer), run after each commit of the
  /// backend's connection.
  static int on_commit(void* self, sqlite3* db, const char*, int wal_pages);

 private:
  void request();
  void run();

  std::filesystem::path path_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool requested_ = false;      // guarded by mutex_
  bool stopping_ = false;       // guarded by mutex_
  WalCheckpointPolicy policy_;  // on_commit's own
  /// Held while a checkpoint of this process runs, so the two never collide (one gets BUSY).
  std::mutex checkpointing_;
  std::thread thread_;
};

}  // namespace llm_caching::cache

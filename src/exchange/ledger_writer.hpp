// The ledger's writer (docs/COSTS.md, "The ledger"): callers hand it a record and go on; a
// thread of its own stores the records in batches in the backend (Backend::ledger_append). While
// the backend fails, batches go to a spill file, replayed in order once it answers again, each
// under the name it was first sent with (core/ledger_batch.hpp): a batch the store ran before
// its reply was lost is not stored twice. The destructor stores (or spills) every record handed
// over: a clean shutdown loses none.
#pragma once

#include "cache/backend.hpp"
#include "core/ledger.hpp"
#include "core/ledger_batch.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace llm_caching::exchange {

/// A fresh ledger writer name: 16 hex digits of the kernel's random bits (new_lock_token).
std::string new_ledger_writer_name();

struct LedgerOptions {
  /// Off: no writer, no record.
  bool enabled = false;
  /// Where a batch the backend refused waits (ledger-<store>-<pid>.jsonl: per batch a line
  /// with its name, then one record a line).
  /// Spill files of processes that ended before replaying theirs are replayed too. Empty: such a
  /// batch is logged and dropped.
  std::filesystem::path spill_dir;
  /// The longest a record waits before its batch is written.
  std::chrono::milliseconds flush_interval{100};
  /// How often a spill file is tried again while the backend keeps failing.
  std::chrono::milliseconds retry_interval{1000};
  /// At most this many records per write (a larger queue is written in several).
  std::size_t batch_limit = 5000;
};

struct ExchangeResult;

/// Fills `record`'s outcome, token counts, cost and avoided cost from a finished exchange.
void record_result(core::LedgerRecord& record, const ExchangeResult& result);

class LedgerWriter {
 public:
  /// Starts the thread. Replays leftover spill files of this store on its first round.
  LedgerWriter(std::shared_ptr<cache::Backend> backend, LedgerOptions options);
  /// Stores or spills every record recorded, then joins the thread.
  ~LedgerWriter();
  LedgerWriter(const LedgerWriter&) = delete;
  LedgerWriter& operator=(const LedgerWriter&) = delete;

  /// Queues one record in the calling thread's shard (a lock no other caller takes, and a
  /// move). A call served from the cache of the group and UTC second of the last record this
  /// thread queued folds into that record instead (core::fold_served_into).
  void record(core::LedgerRecord record);
  /// The same for one more call like `like`, a record the caller keeps (a memoized hit's), that
  /// ended at `time_ms` and took `latency_us`: copied only when it does not fold.
  void record_like(const core::LedgerRecord& like, std::int64_t time_ms, std::int64_t latency_us);
  /// Returns once every record recorded before the call is stored or spilled, and (when the
  /// backend answers) the spill files are replayed. For tests and `costs` in the same process.
  void flush();

  /// Counted in calls (a record that stands for several calls counts them all).
  struct Stats {
    std::uint64_t stored = 0;    ///< calls written to the backend (replays included)
    std::uint64_t spilled = 0;   ///< calls written to a spill file
    std::uint64_t replayed = 0;  ///< calls moved from spill files to the backend
    std::uint64_t dropped = 0;   ///< calls lost (no spill dir, or the spill file failed)
    /// Calling threads with a queue of their own; one that ended is dropped once its records
    /// are taken.
    std::size_t shards = 0;
  };
  Stats stats() const;
  /// This process's spill file (empty without a spill dir).
  const std::filesystem::path& spill_file() const noexcept { return spill_file_; }

 private:
  void run();
  /// Names one batch and writes it: to the backend, else to the spill file (also while a spill
  /// is pending, so that batches keep their order).
  void write(std::vector<core::LedgerRecord> batch);
  /// Moves this store's spill files to the backend; false when the backend failed.
  bool replay_spills();
  bool replay_file(const std::filesystem::path& file, bool own);
  /// Stores the spilled batches in order, under their names; an unnamed one (a file from before
  /// batch names) in pieces of batch_limit. Returns how many were stored before a failure.
  std::size_t replay_batches(std::vector<core::SpillBatch>& batches, std::uint64_t& stored_calls);
  void spill(const std::vector<core::LedgerRecord>& batch, const core::LedgerBatchId& id);
  bool store(std::vector<core::LedgerRecord> batch, core::LedgerBatchId id);

  std::shared_ptr<cache::Backend> backend_;
  LedgerOptions options_;
  std::filesystem::path spill_file_;
  int spill_fd_ = -1;  ///< open (and flock'ed) while the spill file exists; writer thread only
  bool spill_pending_ = true;  ///< writer thread only; true at start: look for leftovers
  std::chrono::steady_clock::time_point next_replay_{};
  /// This writer's name in its batches' names (random: processes sharing a store never collide).
  const std::string batch_writer_ = new_ledger_writer_name();
  std::uint64_t last_sequence_ = 0;  ///< writer thread only

  /// One calling thread's queue. Threads never share one: a hit on one core does not pull
  /// another core's cache line. The writer thread takes every shard's records each round.
  struct Shard {
    std::mutex mutex;
    std::vector<core::LedgerRecord> queue;  // guarded by mutex
  };
  /// The calling thread's shard of this writer (made on its first record).
  Shard& shard();
  /// Moves every shard's records into `batch`; drops the shards of threads that ended.
  void take_shards(std::vector<core::LedgerRecord>& batch);
  /// record and record_like: folds a call like `like` (ended at `time_ms` after `latency_us`)
  /// into the calling thread's last record, else queues the record `make_record()` returns.
  template <class MakeRecord>
  void queue(const core::LedgerRecord& like, std::int64_t time_ms, std::int64_t latency_us,
             MakeRecord make_record);
  /// Wakes the writer when `queued` records reached a batch.
  void wake_if_full(std::size_t queued);

  /// Tells this writer's shards from those of a writer destroyed before at the same address.
  const std::uint64_t id_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::vector<std::shared_ptr<Shard>> shards_;  // guarded by mutex_
  std::atomic<bool> full_{false};      ///< a shard holds a batch's worth: write without waiting
  std::uint64_t rounds_started_ = 0;   // guarded by mutex_
  std::uint64_t rounds_finished_ = 0;  // guarded by mutex_
  /// The last round a flush waits for; rounds up to it are urgent. A round number, not a count
  /// of waiting flushes: a count still held when its round ended started a needless urgent round,
  /// which replayed a spill at once.
  std::uint64_t flush_round_ = 0;  // guarded by mutex_
  bool stopping_ = false;          // guarded by mutex_
  Stats stats_;                    // guarded by mutex_
  std::thread thread_;
};

}  // namespace llm_caching::exchange

// SQLite L2 (`sqlite:///abs/path.db`, and the embedded default): one file shared by every process
// that opens it. WAL, busy timeout, TTL, and a size bound enforced by LRU eviction.
// The parts: sqlite_backend.cpp (the operations), sqlite_connection.* (a connection and its
// statements), sqlite_schema.* (schema creation, checks and the upgrade from schema 2),
// sqlite_checkpointer.* (the WAL checkpoint thread); key_lock_file.* holds the locks.
#pragma once

#include "cache/backend.hpp"
#include "cache/key_lock_file.hpp"
#include "llm_caching/cache_options.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string_view>

namespace llm_caching::cache {

struct SqliteConnection;
class SqliteCheckpointer;

/// Schema version this build writes and reads (meta table row 'schema_version'). A file of
/// schema 2 is upgraded when opened; older ones are refused.
inline constexpr std::int64_t kSqliteSchemaVersion = 3;

/// The id an entry is found by (an indexed column): FNV-1a 64 of its key, kept positive. The key
/// itself is stored and compared too, so a collision is a miss, never another key's entry.
std::int64_t sqlite_entry_id(std::string_view key) noexcept;

/// Reads refresh an entry's last_access (its LRU position) at most this often, so that most hits
/// stay read-only and never wait for another process's write lock.
inline constexpr std::int64_t kLastAccessGranularityMs = 60'000;

/// The longest pause between two looks at a lock another process holds.
inline constexpr std::chrono::milliseconds kLongestUnlockPoll{16};

class SqliteBackend final : public Backend {
 public:
  /// The first one in a process switches off SQLite's memory statistics unless SQLite is already
  /// initialized (README). Creates missing parent directories (0700) and the file (0600). Throws
  /// CacheError naming the file when it cannot be opened, is not a SQLite database, is corrupt,
  /// belongs to another program, or has a newer schema.
  explicit SqliteBackend(SqliteOptions options, NowMs now_ms = system_now_ms);
  ~SqliteBackend() override;
  SqliteBackend(const SqliteBackend&) = delete;
  SqliteBackend& operator=(const SqliteBackend&) = delete;

  asio::awaitable<std::optional<std::string>> get(std::string key) override;
  /// A negative ttl stores nothing (the entry would be expired already).
  asio::awaitable<void> put(std::string key, std::string value,
                            std::chrono::milliseconds ttl) override;
  /// One transaction for all the items.
  asio::awaitable<void> put_many(std::vector<PutItem> items) override;
  bool writes_batches() const noexcept override { return true; }
  asio::awaitable<bool> erase(std::string key) override;
  asio::awaitable<std::uint64_t> clear(std::string prefix) override;
  asio::awaitable<std::uint64_t> prune() override;
  asio::awaitable<BackendStats> stats() override;
  /// Pages in write order (the cursor is the last rowid seen), on the reader connection.
  asio::awaitable<KeyPage> list_keys(std::string prefix, std::string cursor,
                                     std::size_t limit) override;
  std::string describe() const override;
  /// The meta table's row 'clear_mark' (sqlite_clear_mark.cpp), read on the reader connection;
  /// reading it first adds this process's hit, miss and write counts since the last read to the
  /// rows 'hits', 'misses', 'writes', which stats() reports for every process.
  bool keeps_clear_mark() const noexcept override { return true; }
  asio::awaitable<std::uint64_t> read_clear_mark() override;
  asio::awaitable<void> write_clear_mark() override;
  std::uint64_t read_clear_mark_now();
  void write_clear_mark_now();
  /// A byte of the side file `<path>-locks` (KeyLockFile): held until unlocked or until this
  /// backend (its process) ends. `ttl` only lets another token of this backend take it over.
  asio::awaitable<bool> try_lock(std::string lock_key, std::string token,
                                 std::chrono::milliseconds ttl) override;
  asio::awaitable<void> unlock(std::string lock_key, std::string token) override;
  /// Polls the lock file: 1 ms, doubling up to kLongestUnlockPoll.
  asio::awaitable<void> wait_for_unlock(std::string lock_key,
                                        std::chrono::milliseconds at_most) override;
  bool notifies_unlock() const noexcept override { return true; }
  /// The ledger is the table `ledger` of the same file (sqlite_ledger.cpp), created on first
  /// use; one transaction per batch.
  bool keeps_ledger() const noexcept override { return true; }
  asio::awaitable<void> ledger_append(std::vector<core::LedgerRecord> records,
                                      core::LedgerBatchId batch) override;
  asio::awaitable<std::vector<core::LedgerRecord>> ledger_read(std::int64_t since_ms,
                                                               std::int64_t until_ms) override;
  /// Budget counters: the table `budgets` of the same file (sqlite_ledger.cpp), checked and
  /// charged in one write transaction, so processes sharing the file never overspend together.
  bool keeps_budgets() const noexcept override { return true; }
  asio::awaitable<BudgetVerdict> budget_reserve(std::vector<BudgetCharge> charges,
                                                std::int64_t amount) override;
  asio::awaitable<void> budget_adjust(std::vector<BudgetCharge> charges,
                                      std::int64_t delta) override;
  BudgetVerdict budget_reserve_now(const std::vector<BudgetCharge>& charges, std::int64_t amount);
  void ledger_append_now(const std::vector<core::LedgerRecord>& records,
                         const core::LedgerBatchId& batch = {});
  std::vector<core::LedgerRecord> ledger_read_now(std::int64_t since_ms, std::int64_t until_ms);

  // The same operations without a coroutine frame; SQLite calls block (local file, short locks).
  std::optional<std::string> get_now(std::string_view key);
  void put_now(std::string_view key, std::string_view value, std::chrono::milliseconds ttl);
  void put_many_now(const std::vector<PutItem>& items);
  bool erase_now(std::string_view key);
  std::uint64_t clear_now(std::string_view prefix);
  std::uint64_t prune_now();
  BackendStats stats_now();
  KeyPage list_keys_now(std::string_view prefix, std::string_view cursor, std::size_t limit);
  bool try_lock_now(std::string_view lock_key, std::string_view token,
                    std::chrono::milliseconds ttl);
  void unlock_now(std::string_view lock_key, std::string_view token);

  const SqliteOptions& options() const noexcept { return options_; }

 private:
  /// Runs `op` under the connection mutex; counts and rethrows failures.
  template <class Op>
  auto guarded(Op&& op);
  /// Runs `op`; counts a failure in unguarded_ and rethrows it.
  template <class Op>
  auto counting_errors(Op&& op);
  void evict_if_over_bound(std::int64_t now);
  std::optional<std::string> read_entry(SqliteConnection& db, std::string_view key,
                                        std::int64_t now);
  /// Under the lock: one upsert, in the caller's transaction if there is one.
  void upsert(std::string_view key, std::string_view value, std::chrono::milliseconds ttl,
              std::int64_t now);

  SqliteOptions options_;
  NowMs now_ms_;
  std::mutex mutex_;
  std::unique_ptr<SqliteCheckpointer> checkpointer_;  // declared first: outlives db_'s WAL hook
  std::unique_ptr<SqliteConnection> db_;              // writes; guarded by mutex_
  std::mutex read_mutex_;
  std::unique_ptr<SqliteConnection> reader_;  // reads (get); guarded by read_mutex_
  /// Counted outside mutex_: by reads (on reader_) and by the lock file.
  struct UnguardedCounters {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint64_t> expired{0};
    std::atomic<std::uint64_t> errors{0};
  };
  UnguardedCounters unguarded_;
  std::unique_ptr<KeyLockFile> locks_;  // has its own mutex
  BackendStats counters_;               // guarded by mutex_
  /// The part of the hit, miss and write counts already added to the meta rows.
  struct Flushed {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint64_t> writes{0};
  };
  Flushed flushed_;
  /// Adds the counts since the last call to the meta rows (sqlite_clear_mark.cpp).
  void store_counters();
  /// Under mutex_ (stats_now): the stored counts, less what of them is this process's and
  /// already in stats.
  void add_stored_counters(BackendStats& stats);
  bool ledger_table_ready_ = false;  // guarded by mutex_
  /// Under mutex_: creates the ledger table once per backend (CREATE TABLE IF NOT EXISTS).
  void ensure_ledger_table();
  /// In a write transaction: false when `batch`'s writer stored it (or a later one) already;
  /// else notes it as the writer's last. An unnamed batch: true.
  bool mark_ledger_batch(const core::LedgerBatchId& batch);
};

}  // namespace llm_caching::cache

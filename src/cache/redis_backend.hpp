// Redis L2 (`redis://`, `rediss://`, `redis+sentinel://`, `redis+cluster://`): entries as plain
// string values with a PX expiry, under the storage keys of DESIGN §3. Redis expires entries
// itself. On a cluster a key's last part is a hash tag (`llm-caching:v1:<ns>:{<hex>}`,
// cluster_slots.hpp), so that an entry, its lock and its release signal share a slot; keyless
// commands (SCAN, DBSIZE, INFO) go to every master. With read_from_replicas, get() reads a
// replica (RedisClusterClient::read) and everything else stays on the masters.
#pragma once

#include "cache/backend.hpp"
#include "cache/redis_client.hpp"
#include "cache/redis_cluster.hpp"
#include "llm_caching/cache_options.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

namespace llm_caching::cache {

class RedisBackend final : public Backend {
 public:
  /// Does not wait for Redis: connecting happens in the background, and the first calls wait
  /// for that first attempt (up to the connect timeout). Throws ConfigurationError for TLS files
  /// that cannot be loaded.
  explicit RedisBackend(RedisOptions options);

  /// GET; with read_from_replicas on a replica of the key's slot, and a miss there asked again
  /// of the master (so a miss is the master's: the lock path that follows never calls the
  /// provider for an entry that has already landed).
  asio::awaitable<std::optional<std::string>> get(std::string key) override;
  /// A negative ttl stores nothing (the entry would be expired already).
  asio::awaitable<void> put(std::string key, std::string value,
                            std::chrono::milliseconds ttl) override;
  asio::awaitable<bool> erase(std::string key) override;
  /// SCAN MATCH prefix* + UNLINK, in batches (on a cluster: on each master, UNLINK per key).
  asio::awaitable<std::uint64_t> clear(std::string prefix) override;
  /// One SCAN MATCH prefix* step (the cursor is SCAN's, on a cluster prefixed with the index of
  /// the master being walked; a page may be empty mid-walk).
  asio::awaitable<KeyPage> list_keys(std::string prefix, std::string cursor,
                                     std::size_t limit) override;
  /// Redis expires keys itself: nothing to do, returns 0.
  asio::awaitable<std::uint64_t> prune() override;
  /// entries: DBSIZE of the selected database, less the two llm-caching:{meta} keys; bytes: the
  /// server's used_memory; expired and evictions: the server's counters (on a cluster, each summed
  /// over the masters); hits/misses/writes: every process's (the hash llm-caching:{meta}:counters,
  /// plus what this process counted since it last added its counts there); errors: this process's.
  asio::awaitable<BackendStats> stats() override;
  /// The string llm-caching:{meta}:cleared (redis_counters.cpp). Reading it also adds this
  /// process's hit, miss and write counts since the last read to llm-caching:{meta}:counters
  /// (HINCRBY, in the same script): a hit costs an atomic increment, the store one script per
  /// clear_check_interval.
  bool keeps_clear_mark() const noexcept override { return true; }
  asio::awaitable<std::uint64_t> read_clear_mark() override;
  asio::awaitable<void> write_clear_mark() override;
  std::string describe() const override;
  /// SET lock_key token NX PX ttl (Redis expires a dead holder's lock by itself); a taken lock
  /// also deletes the release signal of the previous holder (llm-caching:released:<storage key>),
  /// in one script.
  asio::awaitable<bool> try_lock(std::string lock_key, std::string token,
                                 std::chrono::milliseconds ttl) override;
  /// A compare-and-delete script: deletes lock_key only while it still holds token; when a
  /// waiter registered, it then leaves the release signal (a one-element list, kept 2 s).
  asio::awaitable<void> unlock(std::string lock_key, std::string token) override;
  /// Registers as a waiter (llm-caching:waited:<storage key>, as long as the lock lives; returns
  /// at once when the lock is gone), then BRPOPLPUSH of the release signal onto itself (every
  /// waiter wakes, the signal stays) with at_most as its timeout, over a connection of its own
  /// (RedisClient::blocking_command).
  asio::awaitable<void> wait_for_unlock(std::string lock_key,
                                        std::chrono::milliseconds at_most) override;
  bool notifies_unlock() const noexcept override { return true; }
  bool locks_cost_a_round_trip() const noexcept override { return true; }
  /// The cluster routing's counters (zeros for a single server).
  RedisClusterClient::Counters cluster_counters() const noexcept;
  /// The ledger (redis_ledger.cpp): the stream llm-caching:{ledger} (about
  /// RedisOptions::ledger_max_records records) and per-day counter hashes
  /// llm-caching:{ledger}:day:<YYYY-MM-DD>, written by one script per batch.
  bool keeps_ledger() const noexcept override { return true; }
  asio::awaitable<void> ledger_append(std::vector<core::LedgerRecord> records,
                                      core::LedgerBatchId batch) override;
  /// XRANGE from since_ms (a record's stream id is never before its time), filtered by time.
  asio::awaitable<std::vector<core::LedgerRecord>> ledger_read(std::int64_t since_ms,
                                                               std::int64_t until_ms) override;
  /// Budget counters are string keys (INCRBY), checked and charged by one script
  /// (redis_ledger.cpp).
  bool keeps_budgets() const noexcept override { return true; }
  asio::awaitable<BudgetVerdict> budget_reserve(std::vector<BudgetCharge> charges,
                                                std::int64_t amount) override;
  asio::awaitable<void> budget_adjust(std::vector<BudgetCharge> charges,
                                      std::int64_t delta) override;

 private:
  /// Runs a command; an error reply or an I/O failure becomes CacheError (counted).
  asio::awaitable<RedisReply> run(RedisCommand command);
  /// Runs a read (GET) through RedisClusterClient::read: on a replica, the master when it
  /// cannot serve. Failures as run's (only the master's count).
  asio::awaitable<RedisReply> run_read(RedisCommand command);
  /// Runs a keyless command on one server (nullopt: the one server of a non-cluster URL).
  asio::awaitable<RedisReply> run_on(std::optional<RedisEndpoint> server, RedisCommand command);
  /// Where keyless commands go: each master of a cluster, or {nullopt} for one server.
  asio::awaitable<std::vector<std::optional<RedisEndpoint>>> servers();
  /// The name `key` has in Redis (cluster_key on a cluster).
  std::string redis_key(std::string key) const;
  const RedisOptions& options() const noexcept;
  RedisReply checked(RedisReply reply, const std::string& name);

  std::unique_ptr<RedisClient> single_;          ///< redis://, rediss://, redis+sentinel://
  std::unique_ptr<RedisClusterClient> cluster_;  ///< redis+cluster://, rediss+cluster://
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> errors_{0};
  /// The part of hits_, misses_ and writes_ already added to the stored counters.
  struct Flushed {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint64_t> writes{0};
  };
  Flushed flushed_;
  /// Sets stats' hits, misses and writes from the stored counters and this process's rest.
  asio::awaitable<void> add_stored_counters(BackendStats& stats);
};

}  // namespace llm_caching::cache

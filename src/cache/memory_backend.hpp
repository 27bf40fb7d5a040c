// In-process L2 (`memory://`): an LRU bounded in bytes, with TTL checked on read.
#pragma once

#include "cache/backend.hpp"
#include "cache/lru_map.hpp"
#include "llm_caching/cache_options.hpp"

#include <mutex>
#include <unordered_map>

namespace llm_caching::cache {

class MemoryBackend final : public Backend {
 public:
  explicit MemoryBackend(MemoryOptions options, NowMs now_ms = system_now_ms);

  asio::awaitable<std::optional<std::string>> get(std::string key) override;
  /// A negative ttl stores nothing (the entry would be expired already).
  asio::awaitable<void> put(std::string key, std::string value,
                            std::chrono::milliseconds ttl) override;
  asio::awaitable<bool> erase(std::string key) override;
  asio::awaitable<std::uint64_t> clear(std::string prefix) override;
  asio::awaitable<std::uint64_t> prune() override;
  asio::awaitable<BackendStats> stats() override;
  /// Every matching key in one page, sorted (the store is in memory anyway).
  asio::awaitable<KeyPage> list_keys(std::string prefix, std::string cursor,
                                     std::size_t limit) override;
  std::string describe() const override;
  /// Locks live in this process only (so does the store): they order this process's callers.
  asio::awaitable<bool> try_lock(std::string lock_key, std::string token,
                                 std::chrono::milliseconds ttl) override;
  asio::awaitable<void> unlock(std::string lock_key, std::string token) override;
  /// The ledger in this process's memory, like the entries (unbounded: a test's or a demo's).
  bool keeps_ledger() const noexcept override { return true; }
  asio::awaitable<void> ledger_append(std::vector<core::LedgerRecord> records,
                                      core::LedgerBatchId batch) override;
  asio::awaitable<std::vector<core::LedgerRecord>> ledger_read(std::int64_t since_ms,
                                                               std::int64_t until_ms) override;
  /// Budget counters in this process's memory (TTLs ignored).
  bool keeps_budgets() const noexcept override { return true; }
  asio::awaitable<BudgetVerdict> budget_reserve(std::vector<BudgetCharge> charges,
                                                std::int64_t amount) override;
  asio::awaitable<void> budget_adjust(std::vector<BudgetCharge> charges,
                                      std::int64_t delta) override;

  // The same operations without a coroutine frame (everything here is synchronous anyway).
  std::optional<std::string> get_now(std::string_view key);
  void put_now(std::string key, std::string value, std::chrono::milliseconds ttl);
  bool erase_now(std::string_view key);
  std::uint64_t clear_now(std::string_view prefix);
  std::uint64_t prune_now();
  BackendStats stats_now() const;
  std::vector<std::string> keys_now(std::string_view prefix) const;
  bool try_lock_now(const std::string& lock_key, std::string_view token,
                    std::chrono::milliseconds ttl);
  void unlock_now(const std::string& lock_key, std::string_view token);

 private:
  MemoryOptions options_;
  NowMs now_ms_;
  mutable std::mutex mutex_;
  LruMap<std::string> entries_;  // guarded by mutex_
  BackendStats counters_;        // guarded by mutex_; entries/bytes filled in by stats_now()
  struct Lock {
    std::string token;
    std::int64_t expires_at = 0;
  };
  std::unordered_map<std::string, Lock> locks_;  // guarded by mutex_
  std::vector<core::LedgerRecord> ledger_;       // guarded by mutex_
  /// The last batch stored per writer (core::LedgerBatchId).
  std::unordered_map<std::string, std::uint64_t> ledger_batches_;  // guarded by mutex_
  std::unordered_map<std::string, std::int64_t> budgets_;          // guarded by mutex_
};

}  // namespace llm_caching::cache

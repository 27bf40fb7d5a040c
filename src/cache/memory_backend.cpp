#include "cache/memory_backend.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace llm_caching::cache {

MemoryBackend::MemoryBackend(MemoryOptions options, NowMs now_ms)
    : options_(options), now_ms_(std::move(now_ms)), entries_(options.max_bytes) {}

std::optional<std::string> MemoryBackend::get_now(std::string_view key) {
  const std::int64_t now = now_ms_();
  std::optional<std::string> value(std::in_place);
  std::lock_guard lock(mutex_);
  switch (entries_.find(key, now, *value)) {
    case LruMap<std::string>::Lookup::hit:
      ++counters_.hits;
      return value;
    case LruMap<std::string>::Lookup::expired:
      ++counters_.expired;
      break;
    case LruMap<std::string>::Lookup::miss:
      break;
  }
  ++counters_.misses;
  return std::nullopt;
}

void MemoryBackend::put_now(std::string key, std::string value, std::chrono::milliseconds ttl) {
  if (ttl.count() < 0) return;
  const std::int64_t expires_at = ttl.count() == 0 ? 0 : now_ms_() + ttl.count();
  const std::uint64_t value_bytes = value.size();
  std::lock_guard lock(mutex_);
  counters_.evictions += entries_.put(std::move(key), std::move(value), value_bytes, expires_at);
  ++counters_.writes;
}

std::vector<std::string> MemoryBackend::keys_now(std::string_view prefix) const {
  std::vector<std::string> keys;
  {
    std::lock_guard lock(mutex_);
    entries_.for_each_key([&](std::string_view key) {
      if (key.starts_with(prefix)) keys.emplace_back(key);
    });
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

asio::awaitable<Backend::KeyPage> MemoryBackend::list_keys(std::string prefix, std::string cursor,
                                                           std::size_t limit) {
  (void)cursor, (void)limit;
  KeyPage page;
  page.keys = keys_now(prefix);
  co_return page;
}

bool MemoryBackend::erase_now(std::string_view key) {
  std::lock_guard lock(mutex_);
  return entries_.erase(key);
}

std::uint64_t MemoryBackend::clear_now(std::string_view prefix) {
  std::lock_guard lock(mutex_);
  return entries_.erase_prefix(prefix);
}

std::uint64_t MemoryBackend::prune_now() {
  const std::int64_t now = now_ms_();
  std::lock_guard lock(mutex_);
  const std::uint64_t removed = entries_.erase_expired(now);
  counters_.expired += removed;
  return removed;
}

BackendStats MemoryBackend::stats_now() const {
  std::lock_guard lock(mutex_);
  BackendStats stats = counters_;
  stats.entries = entries_.entries();
  stats.bytes = entries_.bytes();
  return stats;
}

bool MemoryBackend::try_lock_now(const std::string& lock_key, std::string_view token,
                                 std::chrono::milliseconds ttl) {
  const std::int64_t now = now_ms_();
  std::lock_guard lock(mutex_);
  const auto [it, inserted] = locks_.try_emplace(lock_key);
  if (!inserted && it->second.expires_at > now) return false;
  it->second.token = std::string(token);
  it->second.expires_at = now + ttl.count();
  return true;
}

void MemoryBackend::unlock_now(const std::string& lock_key, std::string_view token) {
  std::lock_guard lock(mutex_);
  if (auto it = locks_.find(lock_key); it != locks_.end() && it->second.token == token) {
    locks_.erase(it);
  }
}

asio::awaitable<bool> MemoryBackend::try_lock(std::string lock_key, std::string token,
                                              std::chrono::milliseconds ttl) {
  co_return try_lock_now(lock_key, token, ttl);
}
asio::awaitable<void> MemoryBackend::unlock(std::string lock_key, std::string token) {
  unlock_now(lock_key, token);
  co_return;
}

asio::awaitable<std::optional<std::string>> MemoryBackend::get(std::string key) {
  co_return get_now(key);
}
asio::awaitable<void> MemoryBackend::put(std::string key, std::string value,
                                         std::chrono::milliseconds ttl) {
  put_now(std::move(key), std::move(value), ttl);
  co_return;
}
asio::awaitable<bool> MemoryBackend::erase(std::string key) {
  co_return erase_now(key);
}
asio::awaitable<std::uint64_t> MemoryBackend::clear(std::string prefix) {
  co_return clear_now(prefix);
}
asio::awaitable<std::uint64_t> MemoryBackend::prune() {
  co_return prune_now();
}
asio::awaitable<BackendStats> MemoryBackend::stats() {
  co_return stats_now();
}

asio::awaitable<void> MemoryBackend::ledger_append(std::vector<core::LedgerRecord> records,
                                                   core::LedgerBatchId batch) {
  std::lock_guard lock(mutex_);
  if (batch.named()) {
    // As Redis does (backend.hpp): the tests' flaky stores build on this one.
    std::uint64_t& last = ledger_batches_[batch.writer];
    if (batch.sequence <= last) co_return;
    last = batch.sequence;
  }
  for (core::LedgerRecord& record : records) ledger_.push_back(std::move(record));
  co_return;
}

asio::awaitable<std::vector<core::LedgerRecord>> MemoryBackend::ledger_read(std::int64_t since_ms,
                                                                            std::int64_t until_ms) {
  std::vector<core::LedgerRecord> out;
  std::lock_guard lock(mutex_);
  for (const core::LedgerRecord& record : ledger_) {
    if (record.time_ms >= since_ms && record.time_ms < until_ms) out.push_back(record);
  }
  co_return out;
}

asio::awaitable<Backend::BudgetVerdict> MemoryBackend::budget_reserve(
    std::vector<BudgetCharge> charges, std::int64_t amount) {
  BudgetVerdict verdict;
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < charges.size(); ++i) {
    const std::int64_t used = budgets_[charges[i].key];
    if (amount > 0 && used > charges[i].limit_nano_usd - amount) {
      verdict.granted = false;
      verdict.refused = i;
      verdict.used = {used};
      co_return verdict;
    }
  }
  for (const BudgetCharge& charge : charges) verdict.used.push_back(budgets_[charge.key] += amount);
  co_return verdict;
}

asio::awaitable<void> MemoryBackend::budget_adjust(std::vector<BudgetCharge> charges,
                                                   std::int64_t delta) {
  std::lock_guard lock(mutex_);
  for (const BudgetCharge& charge : charges) budgets_[charge.key] += delta;
  co_return;
}

std::string MemoryBackend::describe() const {
  return fmt::format("memory://?max_bytes={}", options_.max_bytes);
}

}  // namespace llm_caching::cache

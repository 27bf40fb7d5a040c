#include "cache/backend.hpp"

#include <boost/asio/steady_timer.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>

#include "llm_caching/errors.hpp"

namespace llm_caching::cache {

std::int64_t new_clear_mark() {
  std::random_device device;
  const std::uint64_t high = device();
  const std::uint64_t low = device();
  const auto now = static_cast<std::uint64_t>(system_now_ms());
  // Random bits, and the time in case random_device is deterministic on this platform.
  const std::uint64_t mark = ((high << 32) ^ low ^ (now << 20)) & 0x7fffffffffffffffULL;
  return mark == 0 ? 1 : static_cast<std::int64_t>(mark);
}

asio::awaitable<void> Backend::put_many(std::vector<PutItem> items) {
  for (PutItem& item : items) co_await put(std::move(item.key), std::move(item.value), item.ttl);
}

asio::awaitable<Backend::KeyPage> Backend::list_keys(std::string prefix, std::string cursor,
                                                     std::size_t limit) {
  (void)prefix, (void)cursor, (void)limit;
  throw CacheError("the cache backend " + describe() + " cannot list its keys");
  co_return KeyPage{};
}

asio::awaitable<void> Backend::ledger_append(std::vector<core::LedgerRecord> records,
                                             core::LedgerBatchId batch) {
  (void)records, (void)batch;
  throw CacheError("the cache backend " + describe() + " keeps no ledger");
  co_return;
}

asio::awaitable<std::vector<core::LedgerRecord>> Backend::ledger_read(std::int64_t since_ms,
                                                                      std::int64_t until_ms) {
  (void)since_ms, (void)until_ms;
  throw CacheError("the cache backend " + describe() + " keeps no ledger");
  co_return std::vector<core::LedgerRecord>{};
}

asio::awaitable<Backend::BudgetVerdict> Backend::budget_reserve(std::vector<BudgetCharge> charges,
                                                                std::int64_t amount) {
  (void)charges, (void)amount;
  throw CacheError("the cache backend " + describe() + " keeps no budgets");
  co_return BudgetVerdict{};
}

asio::awaitable<void> Backend::budget_adjust(std::vector<BudgetCharge> charges,
                                             std::int64_t delta) {
  (void)charges, (void)delta;
  throw CacheError("the cache backend " + describe() + " keeps no budgets");
  co_return;
}

asio::awaitable<void> Backend::wait_for_unlock(std::string lock_key,
                                               std::chrono::milliseconds at_most) {
  (void)lock_key;
  asio::steady_timer timer(co_await asio::this_coro::executor, at_most);
  co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace llm_caching::cache

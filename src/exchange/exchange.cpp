// The orchestration of the exchange (DESIGN §2): price, key, lookup, then the in-process flight
// (flight.hpp), the cross-process lock (cross_process_lock.hpp), the provider call
// (provider_call.hpp) and the store, written through or behind (write_behind.hpp); the stale
// policies (docs/SINGLE_FLIGHT.md) around them.
#include "exchange/exchange.hpp"

#include "exchange/budget_hold.hpp"
#include "exchange/cache_modes.hpp"
#include "exchange/cross_process_lock.hpp"
#include "exchange/named_thread.hpp"
#include "exchange/provider_call.hpp"
#include "exchange/replay_miss.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <utility>

namespace llm_caching::exchange {

namespace {

/// An answer this call did not pay for (a hit, a stale entry, another caller's call): it is
/// billed 0, and the original call's cost is what it avoided.
void serve_unpaid(ExchangeResult& result, std::shared_ptr<const core::CacheEntry> entry) {
  result.avoided_nano_usd = entry->cost_nano_usd;
  result.entry = std::move(entry);
}

/// The request's storage key. Derived outside run's coroutine frame: the derivation's strings
/// (the hashed material, the canonical request) would otherwise live as long as the call, and a
/// burst's woken waiters would free them one after the other.
std::string request_storage_key(const ExchangeRequest& request) {
  const KeyDerivation derived =
      derive_key(request.native.provider, request.native.api, request.native.model,
                 request.native.body, request.scope);
  return storage_key(request.namespace_, derived.hex);
}

/// The model's price: `overrides` first, then `costs` (null: `prices`, the exchange's table,
/// else the defaults). Null when the model is in neither and unpriced models are allowed;
/// ConfigurationError when they are not.
const ModelCosts* find_price(const ExchangeRequest& request, const CostTable* prices) {
  // Counting tokens and moderating are free: priced, at nothing, whatever the model's rates.
  static const ModelCosts kFree{};
  if (request.native.api == Api::count_tokens || request.native.api == Api::moderations) {
    return &kFree;
  }
  const CostTable& table = request.costs ? *request.costs
                           : prices      ? *prices
                                         : CostTable::defaults();
  const ModelCosts* found =
      request.overrides ? request.overrides->find(request.native.model) : nullptr;
  if (found) return found;
  return request.allow_unpriced ? table.find(request.native.model)
                                : &table.at(request.native.model);
}

/// `why`: explain_replay_miss's words (an unreadable entry, the nearest recorded one), or "".
[[noreturn]] void throw_replay_miss(const ExchangeRequest& request, const std::string& key,
                                    const std::string& why) {
  throw CacheMissError(fmt::format(
      "no cached answer for {} (key {}) and the cache mode is replay_only, so the provider "
      "was not called{}",
      describe_call(request.native), key, why));
}

/// stale-if-error's fallback: the expired entry, served when the provider is down or rate
/// limiting, unless part of a relayed answer already reached the caller (a second one cannot
/// follow).
struct StaleFallback {
  std::shared_ptr<const core::CacheEntry> entry;
  std::int64_t expired_for_ms = 0;
  std::shared_ptr<bool> relayed_any;  // set when the request relays

  /// Notes in relayed_any whether request.relay passes a chunk on (with an entry only).
  void watch_relay(ExchangeRequest& request) {
    if (!entry || !request.relay) return;
    relayed_any = std::make_shared<bool>(false);
    request.relay = [inner = std::move(request.relay), seen = relayed_any](std::string_view chunk) {
      *seen = true;
      inner(chunk);
    };
  }
  bool serves() const { return entry && !(relayed_any && *relayed_any); }
  /// Serves the entry after the provider's `failure` (logged at warn).
  void serve(ExchangeResult& result, const std::string& failure) {
    spdlog::warn(
        "provider call for {} failed ({}); serving the entry that expired {} ms ago "
        "(stale-if-error)",
        result.storage_key, failure, expired_for_ms);
    result.cache_hit = true;
    result.stale = true;
    serve_unpaid(result, std::move(entry));
  }
};

/// Serves the lookup's entry (a hit) when it is fresh, or expired by at most swr_ms
/// (stale-while-revalidate: result.stale); true then. Otherwise an entry expired by at most
/// sie_ms becomes stale-if-error's fallback.
bool serve_lookup(ExchangeResult& result, cache::TieredCache::GraceLookup& lookup,
                  std::int64_t swr_ms, std::int64_t sie_ms, StaleFallback& fallback) {
  if (lookup.entry && (!lookup.expired || (swr_ms > 0 && lookup.expired_for_ms <= swr_ms))) {
    result.cache_hit = true;
    result.stale = lookup.expired;
    serve_unpaid(result, std::move(lookup.entry));
    return true;
  }
  if (lookup.entry && sie_ms > 0 && lookup.expired_for_ms <= sie_ms) {
    fallback.entry = std::move(lookup.entry);
    fallback.expired_for_ms = lookup.expired_for_ms;
  }
  return false;
}

}  // namespace

std::int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Exchange::Exchange(std::shared_ptr<cache::TieredCache> cache, Clock clock, ExchangeOptions options)
    : cache_(std::move(cache)),
      clock_(std::move(clock)),
      options_(options),
      write_behind_(cache_, WriteBehindOptions{.limit = options.write_behind_limit,
                                               .catch_up = options.write_behind_catch_up}) {}

// The pending writes first, then (the members, last first) the background refreshes.
Exchange::~Exchange() {
  write_behind_.finish();
}

void Exchange::start_ledger(LedgerOptions options) {
  if (!options.enabled) return;
  std::call_once(ledger_once_, [&] {
    const std::shared_ptr<cache::Backend>& backend = cache_->backend();
    if (!backend || !backend->keeps_ledger()) return;
    ledger_ = std::make_unique<LedgerWriter>(backend, std::move(options));
    ledger_view_.store(ledger_.get(), std::memory_order_release);
  });
}

bool Exchange::reads_l2_under_lock(const ExchangeRequest& request, std::int64_t swr_ms,
                                   std::int64_t sie_ms) const noexcept {
  return request.read_l2_under_lock && request.mode == CacheMode::use && request.coalesce &&
         swr_ms == 0 && sie_ms == 0 && options_.lock_ttl.count() > 0 &&
         !cache_->locks_cost_a_round_trip();
}

std::optional<ExchangeResult> Exchange::answer_from_l1(const ExchangeRequest& request) {
  if (!reads_cache(request.mode)) return std::nullopt;
  const ModelCosts* found = nullptr;
  try {
    found = find_price(request, options_.prices);
  } catch (const ConfigurationError&) {
    return std::nullopt;
  }
  ExchangeResult result;
  result.storage_key = request_storage_key(request);
  std::shared_ptr<const core::CacheEntry> entry = cache_->peek_l1(result.storage_key, clock_());
  if (!entry) return std::nullopt;
  if (request.storage_key_out) *request.storage_key_out = result.storage_key;
  result.cache_hit = true;
  result.priced = found != nullptr;
  serve_unpaid(result, std::move(entry));
  return result;
}

// One coroutine from the cache lookup to the flight's answer: a woken waiter resumes, returns
// and frees this one frame (no fetch coroutine of its own; see docs/PERFORMANCE.md, burst).
asio::awaitable<ExchangeResult> Exchange::run(Model& model, ExchangeRequest request) {
  // Price first: an unpriced model is a configuration error before any I/O, never a silent $0.
  static const ModelCosts kUnpriced{};
  const ModelCosts* found = find_price(request, options_.prices);
  const ModelCosts& price = found ? *found : kUnpriced;
  ExchangeResult result;
  result.storage_key = request_storage_key(request);
  if (request.storage_key_out) *request.storage_key_out = result.storage_key;
  result.priced = found != nullptr;

  const std::int64_t swr_ms = request.refresh_model ? request.stale_while_revalidate.count() : 0;
  const std::int64_t sie_ms = request.stale_if_error.count();
  StaleFallback fallback;
  const bool l2_under_lock = reads_l2_under_lock(request, swr_ms, sie_ms);
  if (reads_cache(request.mode)) {
    cache::TieredCache::GraceLookup lookup;
    if (l2_under_lock) {
      lookup.entry = cache_->get_l1(result.storage_key, clock_());  // the L2: under the lock
    } else if (swr_ms > 0 || sie_ms > 0) {
      lookup = co_await cache_->get(result.storage_key, clock_(), std::max(swr_ms, sie_ms));
    } else {
      lookup.entry = co_await cache_->get(result.storage_key, clock_());
    }
    if (serve_lookup(result, lookup, swr_ms, sie_ms, fallback)) {
      if (result.stale) start_refresh(request, result.storage_key, price, result.priced);
      co_return std::move(result);
    }
    if (request.mode == CacheMode::replay_only) {
      const std::string why = co_await explain_replay_miss(*cache_, request, result.storage_key);
      throw_replay_miss(request, result.storage_key, why);
    }
  }

  // stale-if-error (with a fallback only): a provider that is down or rate limiting gets the
  // expired answer served.
  fallback.watch_relay(request);
  std::string failure;
  try {
    if (!coalesces(request.mode) || !request.coalesce) {
      ExchangeResult led = co_await lead(model, request, result.storage_key, price);
      led.priced = result.priced;
      co_return std::move(led);
    }
    // Join the key's flight or lead a new one. A waiter whose leader was cancelled goes round
    // again: the first to come back leads, the others join it (docs/SINGLE_FLIGHT.md).
    for (;;) {
      std::pair<std::shared_ptr<Flight>, bool> joined = flights_.join(result.storage_key);
      const std::shared_ptr<Flight>& flight = joined.first;
      if (joined.second) {
        co_return co_await lead_flight(model, request, flight, result.storage_key, price,
                                       result.priced, l2_under_lock);
      }
      // Throws operation_aborted when this caller's wait is cancelled, which ends this caller
      // only. request.native is parked in the wait: it comes back only when this caller may
      // still call the provider (handed over).
      FlightOutcome outcome{};
      if (!flight->is_over(outcome)) {
        // deferred, not use_awaitable: co_await of a deferred operation stores its handler in
        // this frame's awaiter, with no coroutine frame of its own to allocate and free.
        outcome = co_await flight->async_wait(request.native, asio::deferred);
      }
      if (outcome == FlightOutcome::handed_over) continue;
      // The flight is over: its entry and error no longer change (Flight), so no lock.
      if (flight->error) std::rethrow_exception(flight->error);
      (flight->from_cache ? result.cache_hit : result.coalesced) = true;
      serve_unpaid(result, flight->entry);
      co_return std::move(result);
    }
  } catch (const RateLimitError& e) {
    if (!fallback.serves()) throw;
    failure = e.what();
  } catch (const ProviderError& e) {
    if (!fallback.serves()) throw;
    if (e.http_status() != 0 && e.http_status() < 500) throw;  // the request itself is wrong
    failure = e.what();
  }
  fallback.serve(result, failure);
  co_return std::move(result);
}

asio::awaitable<ExchangeResult> Exchange::lead_flight(Model& model, const ExchangeRequest& request,
                                                      std::shared_ptr<Flight> flight,
                                                      const std::string& key,
                                                      const ModelCosts& price, bool priced,
                                                      bool l2_unread) {
  FlightGuard guard(flights_, std::move(flight), key);
  ExchangeResult result;
  std::exception_ptr error;
  try {
    result = co_await lead_across_processes(model, request, key, price, l2_unread);
    result.priced = priced;
  } catch (...) {
    error = std::current_exception();
  }
  guard.finish(result.entry, error, result.cache_hit);
  if (error) std::rethrow_exception(error);
  co_return std::move(result);
}

void Exchange::start_refresh(const ExchangeRequest& request, const std::string& key,
                             const ModelCosts& price, bool priced) {
  std::shared_ptr<Flight> flight = flights_.start(key);
  if (!flight) return;  // a call for this key is already out: it refreshes the entry
  ExchangeRequest copy = request;
  copy.relay = nullptr;        // the caller already has its (stale) answer
  copy.caller_gone = nullptr;  // nobody waits for a refresh: it finishes its retries
  copy.costs = nullptr;        // the price is resolved; these may point into the caller's frame
  copy.overrides = nullptr;
  asio::any_io_executor executor = request.refresh_executor;
  if (!executor) {
    std::lock_guard lock(background_mutex_);
    if (!background_) background_ = named_thread("llmc-refresh");
    executor = background_->get_executor();
  }
  asio::co_spawn(executor,
                 background_refresh(request.refresh_model, std::move(copy), std::move(flight), key,
                                    price, priced),
                 asio::detached);
}

asio::awaitable<void> Exchange::background_refresh(std::shared_ptr<Model> model,
                                                   ExchangeRequest request,
                                                   std::shared_ptr<Flight> flight, std::string key,
                                                   ModelCosts price, bool priced) {
  const auto started = std::chrono::steady_clock::now();
  std::optional<ExchangeResult> refreshed;
  try {
    refreshed = co_await lead_flight(*model, request, std::move(flight), key, price, priced, false);
  } catch (const std::exception& e) {
    spdlog::warn("stale-while-revalidate: refreshing {} failed: {}", key, e.what());
  }
  LedgerWriter* ledger = this->ledger();
  if (ledger == nullptr || !request.ledger_who || !refreshed) co_return;  // a failure spent 0
  // The refresh spent on behalf of the caller that got the stale answer: its own record.
  core::LedgerRecord record = *request.ledger_who;
  record_result(record, *refreshed);
  record.outcome = core::LedgerOutcome::refresh;
  record.time_ms = system_now_ms();
  record.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
  ledger->record(std::move(record));
}

asio::awaitable<ExchangeResult> Exchange::lead_across_processes(Model& model,
                                                                const ExchangeRequest& request,
                                                                const std::string& key,
                                                                const ModelCosts& price,
                                                                bool l2_unread) {
  // Only `use` both reads and writes the L2: a read_only holder would store nothing to wait for.
  // (run() asks for l2_unread only where the lock is taken.)
  if (options_.lock_ttl.count() <= 0 || request.mode != CacheMode::use) {
    co_return co_await lead(model, request, key, price);
  }
  LockTurn turn = co_await lock_across_processes(*cache_, key, options_.lock_ttl,
                                                 options_.lock_wait, clock_, l2_unread);
  if (!turn.entry) co_return co_await lead(model, request, key, price, std::move(turn.token));
  ExchangeResult result;
  result.storage_key = key;
  (turn.own_lookup ? result.cache_hit : result.coalesced) = true;
  serve_unpaid(result, std::move(turn.entry));
  co_return std::move(result);
}

asio::awaitable<ExchangeResult> Exchange::lead(Model& model, const ExchangeRequest& request,
                                               const std::string& key, const ModelCosts& price,
                                               std::optional<std::string> lock_token) {
  HeldLock held(write_behind_, key, std::move(lock_token));
  ExchangeResult result;
  result.storage_key = key;
  BudgetHold budget;
  if (!request.budgets.empty()) {
    const std::int64_t worst_case = core::worst_case_nano_usd(
        price, static_cast<std::int64_t>(boost::json::serialize(request.native.body).size()),
        core::output_limit(request.native.provider, request.native.body));
    budget =
        co_await reserve_budget(*cache_->backend(), request.budgets, worst_case, cache_->strict());
  }
  std::optional<ProviderAnswer> called;
  std::exception_ptr failure;
  try {
    called.emplace(
        co_await call_provider(model, request, key, price, clock_, flights_, cache_->redactor()));
  } catch (...) {
    failure = std::current_exception();
  }
  result.soft_budgets_exceeded = budget.soft_exceeded;
  if (!budget.charges.empty()) {
    const std::int64_t spent = failure ? 0 : called->entry->cost_nano_usd;
    co_await settle_budget(*cache_->backend(), std::move(budget), spent);
  }
  if (failure) std::rethrow_exception(failure);
  ProviderAnswer& answer = *called;
  result.entry = std::move(answer.entry);
  result.attempts = answer.attempts;
  result.relayed = answer.relayed;
  result.cost_nano_usd = result.entry->cost_nano_usd;
  if (writes_cache(request.mode)) {
    // The L2 keeps the entry past its TTL for the stale policies' grace; reads check the TTL.
    const auto grace = std::max(request.stale_while_revalidate, request.stale_if_error);
    const auto retention = request.ttl.count() > 0 ? request.ttl + grace : request.ttl;
    if (request.write_behind && !cache_->strict()) {
      // Answer now from the L1; the encoding, the L2 write and the unlock follow on the writer
      // thread, off this request's path.
      const bool stored = cache_->put_l1(key, result.entry);
      std::optional<std::string> token = held.take();
      if (!write_behind_.try_queue(key, stored ? result.entry : nullptr, retention, token) &&
          token) {
        co_await cache_->unlock(key, *token);  // over the limit: in the L1 only
      }
    } else {
      co_await cache_->put(key, result.entry, retention);
      if (auto token = held.take()) co_await cache_->unlock(key, *token);
    }
  }
  co_return std::move(result);
}

}  // namespace llm_caching::exchange

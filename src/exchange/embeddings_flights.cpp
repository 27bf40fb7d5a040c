// Single-flight per input for run_embeddings (embeddings_flights.hpp): in-process flights from
// the exchange's FlightTable, cross-process locks from cross_process_lock.hpp, as a chat call
// takes them (docs/SINGLE_FLIGHT.md).
#include "exchange/embeddings_flights.hpp"

#include "exchange/cache_modes.hpp"

#include <boost/asio/deferred.hpp>

#include <algorithm>
#include <chrono>
#include <functional>

namespace llm_caching::exchange {

namespace {

/// Whether the call's led inputs take their cross-process lock: as Exchange::run, for `use`
/// calls only (a read_only caller would store nothing another process could wait for).
bool locks_across_processes(const EmbeddingsCall& call) {
  return call.exchange.options().lock_ttl.count() > 0 &&
         call.request.settings.mode == CacheMode::use;
}

/// Another process stored the input's answer while this call looked: it is served, coalesced.
void take_coalesced(EmbeddingsCall& call, EmbeddedInput& in, FlightGuard& guard,
                    std::shared_ptr<const core::CacheEntry> entry) {
  guard.finish(entry, nullptr, false);
  ++call.result.coalesced;
  in.coalesced = true;
  take_unpaid(call.result, in, std::move(entry));
}

}  // namespace

boost::asio::awaitable<EmbeddingsPlan> plan_embeddings(EmbeddingsCall& call,
                                                       const std::vector<std::size_t>& missing) {
  EmbeddingsPlan out;
  const ExchangeRequest& settings = call.request.settings;
  if (!settings.coalesce || !coalesces(settings.mode)) {
    for (std::size_t i : missing) out.batch.add(i, nullptr, nullptr);
    co_return out;
  }
  cache::TieredCache& cache = call.exchange.cache();
  FlightTable& flights = call.exchange.flights();
  const bool across = locks_across_processes(call);
  const std::string token = across ? new_lock_token() : std::string();
  // Every input's flight is joined before the first suspension: a request that comes while
  // this one looks its inputs up finds all of them in flight, not some (which would split the
  // inputs between two upstream calls).
  std::vector<std::pair<std::size_t, std::unique_ptr<FlightGuard>>> led;
  for (std::size_t i : missing) {
    const std::string& key = call.result.inputs[i].storage_key;
    std::pair<std::shared_ptr<Flight>, bool> joined = flights.join(key);
    if (joined.second) {
      led.emplace_back(i, std::make_unique<FlightGuard>(flights, std::move(joined.first), key));
    } else {
      out.waits.emplace_back(i, std::move(joined.first));
    }
  }
  for (auto& leading : led) {
    const std::size_t i = leading.first;
    std::unique_ptr<FlightGuard>& guard = leading.second;
    EmbeddedInput& in = call.result.inputs[i];
    std::shared_ptr<const core::CacheEntry> found = co_await cache.get(in.storage_key, call.now);
    if (found) {
      guard->finish(found, nullptr, true);
      ++call.result.cached;
      take_unpaid(call.result, in, std::move(found));
      continue;
    }
    if (!across) {
      out.batch.add(i, std::move(guard), nullptr);
      continue;
    }
    const cache::TieredCache::LockOutcome lock =
        co_await cache.try_lock(in.storage_key, token, call.exchange.options().lock_ttl);
    if (lock == cache::TieredCache::LockOutcome::held_elsewhere) {
      out.elsewhere.emplace_back(i, std::move(guard));
      continue;
    }
    if (lock == cache::TieredCache::LockOutcome::unavailable) {
      out.batch.add(i, std::move(guard), nullptr);  // degraded: no lock, as a chat call
      continue;
    }
    // Acquired: the holder before us may have stored its answer since our read.
    std::shared_ptr<const core::CacheEntry> landed =
        co_await cache.get_l2(in.storage_key, system_now_ms());
    if (landed) {
      co_await cache.unlock(in.storage_key, token);
      take_coalesced(call, in, *guard, std::move(landed));
      continue;
    }
    out.batch.add(i, std::move(guard),
                  std::make_unique<HeldLock>(call.exchange.write_behind(), in.storage_key, token));
  }
  co_return out;
}

boost::asio::awaitable<EmbeddingsBatch> wait_for_processes(EmbeddingsCall& call,
                                                           EmbeddingsPlan& plan) {
  EmbeddingsBatch own;
  if (plan.elsewhere.empty()) co_return own;
  const ExchangeOptions& options = call.exchange.options();
  const auto give_up_at = std::chrono::steady_clock::now() + options.lock_wait;
  const std::function<std::int64_t()> now_ms = system_now_ms;
  for (auto& waiting : plan.elsewhere) {  // no structured binding across co_await (g++ 12)
    const std::size_t i = waiting.first;
    std::unique_ptr<FlightGuard>& guard = waiting.second;
    EmbeddedInput& in = call.result.inputs[i];
    const auto left = std::max(std::chrono::milliseconds(1),
                               std::chrono::duration_cast<std::chrono::milliseconds>(
                                   give_up_at - std::chrono::steady_clock::now()));
    LockTurn turn = co_await lock_across_processes(call.exchange.cache(), in.storage_key,
                                                   options.lock_ttl, left, now_ms, false);
    if (turn.entry) {
      take_coalesced(call, in, *guard, std::move(turn.entry));
      continue;
    }
    std::unique_ptr<HeldLock> held;
    if (turn.token) {
      held = std::make_unique<HeldLock>(call.exchange.write_behind(), in.storage_key,
                                        std::move(turn.token));
    }
    own.add(i, std::move(guard), std::move(held));
  }
  plan.elsewhere.clear();
  co_return own;
}

boost::asio::awaitable<EmbeddingsBatch> wait_in_process(EmbeddingsCall& call,
                                                        EmbeddingsPlan& plan) {
  EmbeddingsBatch handed_over;
  for (auto& waited : plan.waits) {
    const std::size_t i = waited.first;
    const std::shared_ptr<Flight>& flight = waited.second;
    FlightOutcome outcome{};
    if (!flight->is_over(outcome)) {
      NativeRequest parked;  // nothing to park: a handed-over input is sent again from the split
      outcome = co_await flight->async_wait(parked, boost::asio::deferred);
    }
    if (outcome == FlightOutcome::handed_over) {
      handed_over.add(i, nullptr, nullptr);
      continue;
    }
    if (flight->error) std::rethrow_exception(flight->error);
    EmbeddedInput& in = call.result.inputs[i];
    (flight->from_cache ? call.result.cached : call.result.coalesced) += 1;
    in.coalesced = !flight->from_cache;
    take_unpaid(call.result, in, flight->entry);
  }
  co_return handed_over;
}

}  // namespace llm_caching::exchange

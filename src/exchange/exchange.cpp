#include "exchange/exchange.hpp"

#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"
#include "providers/sse.hpp"

#include <fmt/format.h>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include <vector>

namespace llm_caching::exchange {

namespace {

using Signal = asio::experimental::concurrent_channel<void(boost::system::error_code)>;

bool reads_cache(CacheMode m) {
  return m == CacheMode::use || m == CacheMode::read_only || m == CacheMode::replay_only;
}
bool writes_cache(CacheMode m) {
  return m == CacheMode::use || m == CacheMode::refresh;
}
bool coalesces(CacheMode m) {
  return m == CacheMode::use || m == CacheMode::read_only;
}

bool is_retryable_status(int status) {
  switch (status) {
    case 0:    // no response: refused, reset, timed out
    case 408:  // request timeout
    case 429:  // rate limited
    case 500:
    case 502:
    case 503:
    case 504:
    case 529:  // Anthropic overloaded_error
      return true;
    default:
      return false;
  }
}

std::string describe_call(const NativeRequest& r) {
  return fmt::format("{} {}", to_string(r.provider), r.model);
}

[[noreturn]] void throw_provider_failure(const NativeRequest& request, const NativeResponse& resp,
                                         const providers::ProviderErrorInfo& info,
                                         std::string_view context) {
  if (resp.status == 0) {
    const bool timed_out = resp.transport_error.starts_with(kTimeoutTransportPrefix);
    throw ProviderError(
        fmt::format("{}: no response{}: {}", describe_call(request), context, resp.transport_error),
        0, timed_out ? "timeout" : "transport", "");
  }
  throw ProviderError(fmt::format("{}: HTTP {} {}{}: {}", describe_call(request), resp.status,
                                  info.type, context, info.message),
                      resp.status, info.type, info.message);
}

}  // namespace

std::int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// One in-process call in flight for a key; callers that miss on the same key wait for it.
struct Exchange::Flight {
  std::mutex mutex;
  bool done = false;
  std::shared_ptr<const core::CacheEntry> entry;
  std::exception_ptr error;
  std::vector<std::shared_ptr<Signal>> waiters;

  void finish(std::shared_ptr<const core::CacheEntry> e, std::exception_ptr err) {
    std::vector<std::shared_ptr<Signal>> to_wake;
    {
      std::lock_guard lock(mutex);
      done = true;
      entry = std::move(e);
      error = std::move(err);
      to_wake.swap(waiters);
    }
    for (auto& w : to_wake) w->try_send(boost::system::error_code{});
  }
};

Exchange::Exchange(std::shared_ptr<cache::TieredCache> cache, Clock clock)
    : cache_(std::move(cache)), clock_(std::move(clock)) {}

Exchange::~Exchange() = default;

asio::awaitable<ExchangeResult> Exchange::run(Model& model, ExchangeRequest request) {
  // Price first: an unpriced model is a configuration error before any I/O, never a silent $0.
  static const ModelCosts kUnpriced{};
  const CostTable& table = request.costs ? *request.costs : CostTable::defaults();
  const ModelCosts* found =
      request.overrides ? request.overrides->find(request.native.model) : nullptr;
  if (!found)
    found =
        request.allow_unpriced ? table.find(request.native.model) : &table.at(request.native.model);
  const ModelCosts& price = found ? *found : kUnpriced;
  const KeyDerivation derived =
      derive_key(request.native.provider, request.native.model, request.native.body, request.scope);
  ExchangeResult result;
  result.storage_key = storage_key(request.namespace_, derived.hex);
  result.priced = found != nullptr;

  if (reads_cache(request.mode)) {
    if (auto entry = co_await cache_->get(result.storage_key, clock_())) {
      result.cache_hit = true;
      result.avoided_nano_usd = entry->cost_nano_usd;
      result.entry = std::move(entry);
      co_return result;
    }
    if (request.mode == CacheMode::replay_only) {
      throw CacheMissError(fmt::format(
          "no cached answer for {} (key {}) and the cache mode is replay_only, so the provider "
          "was not called",
          describe_call(request.native), result.storage_key));
    }
  }

  if (!coalesces(request.mode)) {
    ExchangeResult led = co_await lead(model, request, result.storage_key, price);
    led.priced = result.priced;
    co_return led;
  }

  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard lock(flights_mutex_);
    auto [it, inserted] = flights_.try_emplace(result.storage_key);
    if (inserted) it->second = std::make_shared<Flight>();
    flight = it->second;
    leader = inserted;
  }

  if (leader) {
    std::exception_ptr error;
    try {
      const bool priced = result.priced;
      result = co_await lead(model, request, result.storage_key, price);
      result.priced = priced;
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(flights_mutex_);
      flights_.erase(result.storage_key);
    }
    flight->finish(result.entry, error);
    if (error) std::rethrow_exception(error);
    co_return result;
  }

  // A waiter: wake when the leader finishes, then share its answer (billed 0) or its error.
  auto signal = std::make_shared<Signal>(co_await asio::this_coro::executor, 1);
  bool wait = false;
  {
    std::lock_guard lock(flight->mutex);
    if (!flight->done) {
      flight->waiters.push_back(signal);
      wait = true;
    }
  }
  if (wait) {
    boost::system::error_code ec;
    co_await signal->async_receive(asio::redirect_error(asio::use_awaitable, ec));
  }
  std::lock_guard lock(flight->mutex);
  if (flight->error) std::rethrow_exception(flight->error);
  result.coalesced = true;
  result.entry = flight->entry;
  result.avoided_nano_usd = flight->entry->cost_nano_usd;
  co_return result;
}

asio::awaitable<ExchangeResult> Exchange::lead(Model& model, const ExchangeRequest& request,
                                               const std::string& key, const ModelCosts& price) {
  ExchangeResult result;
  result.storage_key = key;
  result.entry = co_await call_provider(model, request, price, result.attempts, result.relayed);
  result.cost_nano_usd = result.entry->cost_nano_usd;
  if (writes_cache(request.mode)) {
    co_await cache_->put(key, result.entry, request.ttl);
  }
  co_return result;
}

asio::awaitable<std::shared_ptr<const core::CacheEntry>> Exchange::call_provider(
    Model& model, const ExchangeRequest& request, const ModelCosts& price, int& attempts,
    bool& relayed) {
  const NativeRequest& native = request.native;
  core::RetryPolicy policy(request.retry, request.retry_seed);
  auto* streaming =
      native.stream && request.relay ? dynamic_cast<StreamingModel*>(&model) : nullptr;
  std::size_t relayed_bytes = 0;
  const ChunkSink counting_relay = [&](std::string_view chunk) {
    relayed_bytes += chunk.size();
    request.relay(chunk);
  };
  for (;;) {
    ++attempts;
    // (Not a ?: with co_await in both arms: g++ 12 miscompiles that and frees a bad pointer.)
    NativeResponse resp;
    if (streaming) {
      resp = co_await streaming->call_streaming(native, counting_relay);
    } else {
      resp = co_await model.call(native);
    }
    relayed = relayed_bytes > 0;
    if (relayed && (resp.status < 200 || resp.status >= 300)) {
      // Part of an answer already reached the caller: another attempt would append a second one.
      const providers::ProviderErrorInfo info =
          providers::parse_error_body(native.provider, resp.status, resp.body);
      throw_provider_failure(native, resp, info, " in the middle of a relayed stream");
    }
    if (resp.status >= 200 && resp.status < 300) {
      auto entry = std::make_shared<core::CacheEntry>();
      entry->provider = std::string(to_string(native.provider));
      entry->model = native.model;
      entry->created_at_ms = clock_();
      entry->ttl_ms = request.ttl.count();
      if (resp.streamed) {
        entry->response = providers::sse_to_response(native.provider, resp.body);
        entry->stream = std::move(resp.body);
      } else {
        entry->response = std::move(resp.body);
      }
      // Throws ProviderError on garbage: nothing is cached and the caller learns why.
      const providers::ChatResponse parsed =
          providers::parse_response(native.provider, entry->response, false);
      entry->usage = parsed.usage;
      entry->usage.requests = 1;
      entry->cost_nano_usd = cost_nano_usd(price, entry->usage);
      if (request.validate) request.validate(*entry);
      co_return entry;
    }

    const providers::ProviderErrorInfo info =
        providers::parse_error_body(native.provider, resp.status, resp.body);
    if (!is_retryable_status(resp.status)) throw_provider_failure(native, resp, info, "");

    core::RetryHint hint{resp.retry_after ? resp.retry_after : info.retry_delay};
    const core::RetryDecision decision = policy.next(hint);
    if (decision.give_up) {
      const std::string context =
          fmt::format(" after {} attempts and {} ms of waiting (max_wait {} ms)", policy.attempts(),
                      policy.waited().count(), request.retry.max_wait.count());
      if (resp.status == 429 || resp.status == 529) {
        throw RateLimitError(
            fmt::format("{}: rate limited (HTTP {} {}){}: {}", describe_call(native), resp.status,
                        info.type, context, info.message),
            policy.attempts(), policy.waited(), policy.last_retry_after());
      }
      throw_provider_failure(native, resp, info, context);
    }
    asio::steady_timer timer(co_await asio::this_coro::executor, decision.wait);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

}  // namespace llm_caching::exchange

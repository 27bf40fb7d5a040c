#include "exchange/provider_call.hpp"

#include "cache/redactor.hpp"

#include "core/printable.hpp"
#include "core/retry.hpp"
#include "llm_caching/errors.hpp"
#include "providers/sse.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <utility>

namespace llm_caching::exchange {

namespace asio = boost::asio;

namespace {

/// A 2xx answer as a cache entry: dated, with its stream, priced from its usage.
std::shared_ptr<core::CacheEntry> entry_from(const ExchangeRequest& request, NativeResponse& resp,
                                             const ModelCosts& price, const Clock& clock,
                                             const cache::Redactor& redact) {
  const NativeRequest& native = request.native;
  auto entry = std::make_shared<core::CacheEntry>();
  entry->provider = std::string(to_string(native.provider));
  entry->model = native.model;
  entry->created_at_ms = clock();
  entry->ttl_ms = request.ttl.count();
  if (resp.streamed) {
    entry->response = providers::sse_to_response(native.provider, native.api, resp.body);
    entry->stream = std::move(resp.body);
  } else {
    entry->response = std::move(resp.body);
  }
  // Throws ProviderError on garbage: nothing is cached and the caller learns why. Only the
  // usage is needed here (the cost); the answer goes out as the provider sent it.
  entry->usage = providers::parse_usage(native.provider, native.api, entry->response);
  entry->usage.requests = 1;
  entry->cost_nano_usd = cost_nano_usd(price, entry->usage);
  // Format 3: the request as keyed (no credential: those are headers, never the keyed body),
  // for a replay miss to name what differs (DESIGN §4), with LLM_CACHE_REDACT's matches
  // scrubbed whatever the backend (the key was made from the request as sent). Derived again
  // here, on a miss only: the lookup's derivation is not kept for the length of the call.
  std::string keyed =
      derive_key(native.provider, native.api, native.model, native.body, request.scope)
          .canonical_request;
  entry->request = redact.empty() ? std::move(keyed) : redact.apply_to_request(keyed);
  if (!entry->request.empty()) {
    entry->api = std::string(to_string(native.api));
    entry->scope_digest = core::request_scope_digest(request.scope);
  }
  // Format 4: the task that recorded it (not part of the key).
  entry->task = core::entry_task_name(request.task);
  if (request.validate) request.validate(*entry);
  return entry;
}

/// Throws for a retryable failure that the retry policy gives up on.
[[noreturn]] void throw_gave_up(const ExchangeRequest& request, const NativeResponse& resp,
                                const providers::ProviderErrorInfo& info,
                                const core::RetryPolicy& policy) {
  const std::string context =
      fmt::format(" after {} attempts and {} ms of waiting (max_wait {} ms)", policy.attempts(),
                  policy.waited().count(), request.retry.max_wait.count());
  if (resp.status == 429 || resp.status == 529) {
    throw RateLimitError(
        fmt::format("{}: rate limited (HTTP {} {}){}: {}", describe_call(request.native),
                    resp.status, info.type, context, info.message),
        policy.attempts(), policy.waited(), policy.last_retry_after());
  }
  throw_provider_failure(request.native, resp, info, context);
}

}  // namespace

std::string_view transport_error_type(TransportFailure failure) noexcept {
  switch (failure) {
    case TransportFailure::timeout:
      return "timeout";
    case TransportFailure::tls_verify:
      return "tls_verify";
    case TransportFailure::too_large:
      return "too_large";
    default:
      return "transport";
  }
}

bool is_retryable(const NativeResponse& response) noexcept {
  // A certificate that does not verify will not verify on the next try either, and an answer
  // over the size limit is as large again on the next (each try spends the quota).
  if (response.status == 0 && (response.transport_failure == TransportFailure::tls_verify ||
                               response.transport_failure == TransportFailure::too_large)) {
    return false;
  }
  return is_retryable_status(response.status);
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
  return fmt::format("{} {}", to_string(r.provider), core::printable(r.model));
}

void throw_provider_failure(const NativeRequest& request, const NativeResponse& resp,
                            const providers::ProviderErrorInfo& info, std::string_view context) {
  if (resp.status == 0) {
    throw ProviderError(
        fmt::format("{}: no response{}: {}", describe_call(request), context, resp.transport_error),
        0, std::string(transport_error_type(resp.transport_failure)), "");
  }
  throw ProviderError(fmt::format("{}: HTTP {} {}{}: {}", describe_call(request), resp.status,
                                  info.type, context, info.message),
                      resp.status, info.type, info.message);
}

bool abandoned(const ExchangeRequest& request, FlightTable& flights, const std::string& key) {
  if (!request.caller_gone || !request.caller_gone()) return false;
  return !flights.has_waiters(key);  // a caller that joined still waits for the answer
}

asio::awaitable<ProviderAnswer> call_provider(Model& model, const ExchangeRequest& request,
                                              const std::string& key, const ModelCosts& price,
                                              const Clock& clock, FlightTable& flights,
                                              const cache::Redactor& redact) {
  const NativeRequest& native = request.native;
  core::RetryPolicy policy(request.retry, request.retry_seed);
  auto* streaming =
      native.stream && request.relay ? dynamic_cast<StreamingModel*>(&model) : nullptr;
  std::size_t relayed_bytes = 0;
  const ChunkSink counting_relay = [&](std::string_view chunk) {
    relayed_bytes += chunk.size();
    request.relay(chunk);
  };
  ProviderAnswer answer;
  for (;;) {
    ++answer.attempts;
    // (Not a ?: with co_await in both arms: g++ 12 miscompiles that and frees a bad pointer.)
    NativeResponse resp;
    if (streaming) {
      resp = co_await streaming->call_streaming(native, counting_relay);
    } else {
      resp = co_await model.call(native);
    }
    answer.relayed = relayed_bytes > 0;
    if (answer.relayed && (resp.status < 200 || resp.status >= 300)) {
      // Part of an answer already reached the caller: another attempt would append a second one.
      const providers::ProviderErrorInfo info =
          providers::parse_error_body(native.provider, resp.status, resp.body);
      throw_provider_failure(native, resp, info, " in the middle of a relayed stream");
    }
    if (resp.status >= 200 && resp.status < 300) {
      answer.entry = entry_from(request, resp, price, clock, redact);
      co_return std::move(answer);
    }

    const providers::ProviderErrorInfo info =
        providers::parse_error_body(native.provider, resp.status, resp.body);
    if (!is_retryable(resp)) throw_provider_failure(native, resp, info, "");

    core::RetryHint hint{resp.retry_after ? resp.retry_after : info.retry_delay};
    const core::RetryDecision decision = policy.next(hint);
    if (decision.give_up) throw_gave_up(request, resp, info, policy);
    // Before and after the wait: a caller that hung up gets no more upstream calls.
    const auto stop_if_abandoned = [&] {
      if (!abandoned(request, flights, key)) return;
      spdlog::info("{}: the caller is gone; no retry after {} attempts", describe_call(native),
                   policy.attempts());
      throw ProviderError(fmt::format("{}: the caller went away during the retries ({} attempts)",
                                      describe_call(native), policy.attempts()),
                          0, "abandoned", "");
    };
    stop_if_abandoned();
    asio::steady_timer timer(co_await asio::this_coro::executor, decision.wait);
    co_await timer.async_wait(asio::use_awaitable);
    stop_if_abandoned();
  }
}

}  // namespace llm_caching::exchange

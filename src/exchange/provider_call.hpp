// The provider call of a miss (DESIGN §2): the model is called, again after a wait for each
// retryable failure (core::RetryPolicy, Retry-After aware), until it answers; the answer becomes
// a priced cache entry, and a failure the public error that says why.
#pragma once

#include "exchange/exchange.hpp"
#include "exchange/flight.hpp"
#include "llm_caching/costs.hpp"
#include "llm_caching/model.hpp"
#include "providers/codec.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace llm_caching::cache {
class Redactor;  // cache/redactor.hpp
}  // namespace llm_caching::cache

namespace llm_caching::exchange {

/// A provider's answer as the exchange stores it, and what getting it took.
struct ProviderAnswer {
  /// Priced with the call's price, dated by the clock, checked by ExchangeRequest::validate.
  std::shared_ptr<const core::CacheEntry> entry;
  int attempts = 0;      ///< provider attempts made
  bool relayed = false;  ///< the answer already went to ExchangeRequest::relay
};

/// Calls the provider for request.native (streaming to request.relay when the model can), with
/// request.retry's retries, until it answers 2xx. Throws ProviderError (not retryable, retries
/// exhausted, a failure after bytes were relayed, garbage, or "abandoned": the caller hung up and
/// no other caller waits on key's flight in `flights`), RateLimitError (429/529 past max_wait),
/// and whatever request.validate throws. `clock` dates the entry; the entry names request.task
/// (core::entry_task_name) and keeps the keyed request scrubbed by `redact` (the cache's
/// LLM_CACHE_REDACT patterns: TieredCache::redactor).
boost::asio::awaitable<ProviderAnswer> call_provider(Model& model, const ExchangeRequest& request,
                                                     const std::string& key,
                                                     const ModelCosts& price, const Clock& clock,
                                                     FlightTable& flights,
                                                     const cache::Redactor& redact);

/// Whether a provider status is worth another attempt: no response, 408, 429, 500, 502-504, 529.
bool is_retryable_status(int status);

/// "<provider> <model>" for messages (the model made printable).
std::string describe_call(const NativeRequest& request);

/// Whether a failed answer is worth another attempt: a retryable status, except a TLS
/// certificate that did not verify (it will not verify on the next try either).
bool is_retryable(const NativeResponse& response) noexcept;

/// The ProviderError::error_type of a response that never came: "timeout", "tls_verify" or
/// "transport".
std::string_view transport_error_type(TransportFailure failure) noexcept;

/// Throws the ProviderError for a failed answer: status 0 (no response) with the error_type of
/// transport_error_type(); otherwise the HTTP status with the provider's error type and message.
/// `context` is added to the message.
[[noreturn]] void throw_provider_failure(const NativeRequest& request, const NativeResponse& resp,
                                         const providers::ProviderErrorInfo& info,
                                         std::string_view context);

/// Whether the caller hung up (ExchangeRequest::caller_gone) and no other caller waits on the
/// key's in-process flight.
bool abandoned(const ExchangeRequest& request, FlightTable& flights, const std::string& key);

}  // namespace llm_caching::exchange

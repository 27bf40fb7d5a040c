// The seam between the exchange and a provider: one native request in, one native response out.
// Providers (OpenAI, Anthropic, Gemini over HTTPS) implement it; tests use scripted models.
#pragma once

#include "llm_caching/cache_key.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace llm_caching {

struct NativeRequest {
  Provider provider = Provider::openai;
  std::string model;         ///< model id as sent (no "provider:" prefix)
  boost::json::object body;  ///< the provider's native request body
  bool stream = false;       ///< the caller wants a stream (gateway); the cache key ignores it
  Api api = Api::chat;       ///< which of the provider's APIs (path, key, usage, stream format)
};

/// Why no response arrived (NativeResponse::status 0). `timeout` answers 504 in the gateway and
/// is the error type "timeout"; the others are "transport" (502).
enum class TransportFailure { none, connect, tls_verify, timeout, reset, protocol, too_large };

struct NativeResponse {
  /// HTTP status; 0 when no response arrived (connection refused, reset, timeout).
  int status = 200;
  /// The response body exactly as received (JSON, or SSE text when `streamed`).
  std::string body;
  bool streamed = false;
  /// When the provider said to come back (Retry-After, retry-after-ms, x-ratelimit-reset-*,
  /// Gemini RetryInfo), already parsed.
  std::optional<std::chrono::milliseconds> retry_after;
  /// For status 0: what went wrong, for the error message. Never contains secrets.
  std::string transport_error;
  /// For status 0: the kind of failure; `none` (a Model that sets only transport_error) counts
  /// as a failed connection.
  TransportFailure transport_failure = TransportFailure::none;
};

class Model {
 public:
  virtual ~Model() = default;
  /// Must not throw for HTTP errors (return the status); may throw for programming errors.
  virtual boost::asio::awaitable<NativeResponse> call(const NativeRequest& request) = 0;
};

}  // namespace llm_caching

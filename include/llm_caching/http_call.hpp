// A provider request as an SDK sends it over HTTP, run through the cache in-process: the Python
// front hands each request of a pydantic_ai agent (any SDK built on httpx) here, so keys, tiers,
// single-flight, retries and costs are the library's own. The gateway does the same over a socket.
#pragma once

#include "llm_caching/agent.hpp"
#include "llm_caching/usage.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llm_caching {

struct HttpCall {
  std::string method = "POST";
  /// The absolute URL the SDK built: https://api.openai.com/v1/responses,
  /// http://127.0.0.1:8080/v1beta/models/gemini-2.0-flash:generateContent, ...
  std::string url;
  /// As sent; names in any case. Only the credential (Authorization, x-api-key, x-goog-api-key)
  /// is used, and it never reaches a key, an entry or a log line.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpCallResult {
  /// false: not a request the cache handles (a GET, an upload, embeddings, ...). Nothing was
  /// sent: the caller sends it to the provider itself. The fields below are then unset.
  bool handled = true;
  int status = 200;
  std::string content_type;  ///< application/json, or text/event-stream for a stream
  /// The provider's answer as it would have arrived: JSON, or SSE text for a stream (a hit of a
  /// non-streamed original is turned into the provider's events). An error answer (status >=
  /// 400 other than 429) is the provider's own body, after the retries.
  std::string body;
  Provider provider = Provider::openai;
  std::string model;
  Usage usage;
  bool cache_hit = false;
  bool coalesced = false;  ///< answered by a concurrent identical call's provider call
  bool stale = false;
  std::int64_t cost_nano_usd = 0;  ///< billed by this call (0 on a hit)
  std::int64_t avoided_cost_nano_usd = 0;
  std::string cache_key;
  int attempts = 0;  ///< provider calls made, retries included
};

/// Runs one provider request through the cache with `options` (cache_url, mode, namespace_,
/// ttl, custom_costs, max_wait, initial_wait, stale policies, coalesce, strict_cache, runtime;
/// the expense recorder and the history are the caller's, per run). The key is the one
/// cached_agent_run and the gateway derive for the same native request. Throws
/// ConfigurationError (no price), CacheMissError (replay_only miss; names the task), CacheError
/// (strict cache), RateLimitError (429 past max_wait), ProviderError (no answer arrived).
boost::asio::awaitable<HttpCallResult> cached_http_call(HttpCall call, std::string task_name,
                                                        RunOptions options);
/// cached_http_call's answer when it is in this process's memory (the cache's L1): found on the
/// calling thread without I/O, for a caller whose event loop is not the library's. nullopt:
/// call cached_http_call (which looks again, and counts the miss).
std::optional<HttpCallResult> cached_http_call_from_memory(const HttpCall& call,
                                                           const RunOptions& options);
/// The same on its own io_context.
HttpCallResult cached_http_call_sync(HttpCall call, std::string_view task_name, RunOptions options);

}  // namespace llm_caching

// Per-request controls of the gateway, read from headers, and the other pure decisions the routes
// make: which route a target is, whose key a request carries, how errors look in each provider's
// format. No I/O; unit-tested without sockets.
#pragma once

#include "gateway/http_types.hpp"
#include "gateway/stale.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/cache_mode.hpp"

#include <array>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace llm_caching::gateway {

/// A request the gateway refuses before doing anything (answered 400 in the provider's format).
class BadRequest : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CacheControls {
  CacheMode mode = CacheMode::use;
  std::optional<std::chrono::milliseconds> ttl;       ///< x-llm-cache-ttl (seconds)
  std::string namespace_;                             ///< x-llm-cache-namespace
  std::string task;                                   ///< x-llm-task
  std::optional<std::chrono::milliseconds> max_wait;  ///< x-llm-max-wait-ms: retry budget
  bool coalesce = true;                               ///< x-llm-cache-coalesce: on | off
  /// The stale windows in force (0 = off): the gateway's defaults, as the request's directives
  /// change them (StaleDirectives).
  std::chrono::milliseconds stale_while_revalidate{0};
  std::chrono::milliseconds stale_if_error{0};
};

/// Reads x-llm-cache (no-cache | no-store | refresh | only-if-cached | no-stale,
/// comma-separated), Cache-Control (no-cache, no-store, only-if-cached, stale-while-revalidate=<s>,
/// stale-if-error=<s>, max-stale=<s>; other directives ignored), x-llm-cache-ttl
/// (positive whole seconds), x-llm-cache-namespace ([A-Za-z0-9._-]{1,64}), x-llm-task (printable
/// ASCII, at most 128 bytes), x-llm-max-wait-ms (0..3600000) and x-llm-cache-coalesce (on | off).
/// Mode: only-if-cached -> replay_only; no-cache/refresh with no-store -> bypass; no-cache/refresh
/// -> refresh; no-store
/// -> read_only; else use. The stale windows start from `defaults` (the gateway's). Throws
/// BadRequest naming the header for anything else.
CacheControls parse_cache_controls(const Headers& headers, const StaleWindows& defaults = {},
                                   CacheMode default_mode = CacheMode::use);

/// The x-llm-cache response value: "HIT" when served from the cache (or from a concurrent
/// identical call), "MISS" when the cache was read and missed, "BYPASS" when it was not read.
std::string_view cache_status(CacheMode mode, bool served_from_cache) noexcept;

/// The same, telling apart an answer shared from a concurrent identical call ("COALESCED") and
/// an expired entry served under a stale policy ("STALE").
std::string_view cache_status(CacheMode mode, bool cache_hit, bool coalesced,
                              bool stale = false) noexcept;

enum class RouteKind {
  llm,     ///< a provider call: the exchange
  models,  ///< GET /v1/models, passed through to the OpenAI upstream
  /// POST /v1/embeddings, Gemini's :embedContent and :batchEmbedContents: cached per input
  /// (route_embeddings.cpp).
  embeddings,
  /// Any other path under /v1/, /v1beta/ or /upload/: forwarded as it is, never cached
  /// (passthrough.cpp).
  passthrough,
  healthz,
  metrics,
  costs,  ///< GET /costs: the ledger's report as JSON (route_costs.cpp)
  not_found,
  method_not_allowed,
};

/// The Gemini API version the library calls and the gateway's keys assume.
inline constexpr std::string_view kGeminiDefaultVersion = "v1beta";

struct Route {
  RouteKind kind = RouteKind::not_found;
  Provider provider = Provider::openai;  ///< for llm routes, and the error format of any route
  Api api = Api::chat;                   ///< which of the provider's APIs an llm route calls
  /// Gemini: from the path (percent-decoded); else the model of a body that names none
  /// (OpenAI moderations: "omni-moderation-latest", the API's own default).
  std::string model;
  bool gemini_stream = false;  ///< :streamGenerateContent
  bool gemini_sse = false;     ///< ...?alt=sse (else one JSON array of chunks)
  bool gemini_batch = false;   ///< :batchEmbedContents (else :embedContent)
  /// Gemini: the API version in the caller's path ("v1beta", "v1", "v1alpha"), which the
  /// upstream is called with too (the real API serves each, with different features).
  std::string_view gemini_version = kGeminiDefaultVersion;
  std::string query_key;  ///< Gemini ?key= (a secret: never log it)
};

/// Matches a request line. Paths are exact; a trailing query is ignored except Gemini's alt and
/// key. Never throws: a target that does not parse is not_found.
Route match_route(std::string_view method, std::string_view target);

/// The caller's API key as the provider would read it (Authorization bearer token, x-api-key,
/// x-goog-api-key or Gemini's ?key=), or "" when none. A secret: never log it.
std::string caller_credential(Provider provider, const Headers& headers,
                              std::string_view query_key);

/// Credential headers the gateway forwards upstream unchanged (Azure OpenAI's `api-key`). The
/// standard ones (Authorization, x-api-key, x-goog-api-key, ?key=) are read by
/// caller_credential and sent upstream in the provider's own form; every other
/// credential-bearing header (Cookie, Proxy-Authorization) is dropped (upstream.cpp).
inline constexpr std::array<std::string_view, 1> kForwardedCredentialHeaders = {"api-key"};

/// Who the caller is, for the cache partition: its credential (caller_credential) and every
/// forwarded credential header it sent, so that each credential an upstream may read decides
/// the partition. "" for a caller that sends none. A secret: never log it.
std::string caller_identity(Provider provider, const Headers& headers, std::string_view query_key);
/// The same, for a caller whose credential (caller_credential) is already read.
std::string caller_identity(std::string credential, const Headers& headers);

/// The cache partition for a caller: "key:" + 32 hex of SHA-256(identity), or "anonymous" for
/// a caller without a key (no keyed caller ever reads it). One-way: the scope never reveals the
/// key.
std::string tenant_scope(std::string_view identity);

/// tenant_scope with the last identity remembered: callers repeat their key on every request.
/// The remembered key lives only in its worker's memory, like the request that carried it.
class TenantScopeMemo {
 public:
  const std::string& operator()(std::string_view identity);

 private:
  std::string last_identity_;
  std::string last_scope_;
};

/// Request headers that change the answer itself (beta features, API version) as key material:
/// "" when the request has none (or only the default `anthropic-version`, which the gateway sends
/// anyway), else "name=v1,v2;..." with the names in a fixed order and each list's values trimmed,
/// sorted and deduplicated, so that the order a client lists its betas in does not matter, and
/// each value with '%', ';', ',' and non-printable bytes as %XX, so that no value can pass for a
/// separator or another header (no two header sets give the same text).
/// Headers: anthropic-beta, anthropic-version, openai-beta.
std::string answer_shaping_headers(const Headers& headers);

/// A JSON error body in the provider's own format (OpenAI {"error": {...}}, Anthropic
/// {"type": "error", "error": {...}}, Gemini {"error": {"code", "message", "status"}}), with the
/// error type each provider uses for that HTTP status.
std::string error_body(Provider provider, int status, std::string_view message,
                       std::string_view type = {});

/// Dollars with 9 decimals, trailing zeros trimmed ("0.000125", "0").
std::string format_usd(std::int64_t nano_usd);

}  // namespace llm_caching::gateway

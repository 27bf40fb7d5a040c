// Where a provider lives and how a call to it is addressed: the known hosts, the endpoint a
// library call or a gateway upstream resolves to, its URL, headers, cache scope and retry hints.
// The provider client (http_model.hpp) is built on these; nothing here does I/O.
#pragma once

#include "llm_caching/cache_key.hpp"
#include "llm_caching/model.hpp"
#include "providers/http_client.hpp"

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llm_caching::providers {

/// A service a model prefix names. The wire format (`Provider`) says how to talk to it; the host
/// says where it lives and which variables configure it. Groq, DeepSeek, OpenRouter, Together,
/// Mistral, Ollama, vLLM and llama.cpp's server all speak the OpenAI wire format.
struct ProviderHost {
  std::string_view prefix;  ///< "openai", "groq", "anthropic", "gemini", ...
  Provider wire = Provider::openai;
  std::string_view base_url_variable;       ///< e.g. "GROQ_BASE_URL"
  std::string_view key_variable;            ///< e.g. "GROQ_API_KEY"
  std::string_view alternate_key_variable;  ///< "" or e.g. "GOOGLE_API_KEY"
  std::string_view default_base_url;
  /// Runs on the user's machine: no key is required (one is sent if the variable is set) and a
  /// model missing from the price table costs 0 instead of being a configuration error.
  bool local = false;
};

/// Every known host, in the order the documentation lists them.
std::span<const ProviderHost> known_hosts() noexcept;
/// The host of a model prefix ("groq", "google-gla", ...); null when unknown.
const ProviderHost* find_host(std::string_view prefix) noexcept;
/// The provider's own public service: openai, anthropic, gemini.
const ProviderHost& default_host(Provider provider) noexcept;

/// Where calls for one provider go, and with which key: the library's endpoint (from the
/// Agent and the environment) and the gateway's upstream (from its flags and config) alike.
struct ProviderEndpoint {
  Provider provider = Provider::openai;
  std::string host;  ///< the prefix of the host ("openai", "groq", ...)
  /// No trailing slash. OpenAI-style base URLs end in the version (".../v1"); Anthropic's and
  /// Gemini's are the host root.
  std::string base_url;  ///< resolved: argument, else *_BASE_URL, else the host's default
  /// The key sent instead of any caller's (library: argument, else *_API_KEY). Never logged.
  std::string api_key;
  /// Gateway: the key sent only when the caller sends none (and api_key is empty). The cache
  /// partition is still the caller's ("anonymous"): this key never reaches a cache key.
  std::string fallback_api_key;
};

/// Resolves base URL and key from the arguments and the environment. Throws ConfigurationError
/// naming the variable when no key is found, before any I/O. A plain http:// base URL needs no
/// key (local servers); https:// does, except for local hosts (Ollama, vLLM, llama.cpp).
/// `require_key` false (replay_only runs, which never call the provider) skips that check.
ProviderEndpoint resolve_endpoint(const ProviderHost& host, std::string base_url,
                                  std::string api_key, bool require_key = true);
ProviderEndpoint resolve_endpoint(Provider provider, std::string base_url, std::string api_key);

/// The cache-key scope of an endpoint. Empty for the wire provider's own public service (so keys
/// equal the gateway's shared keys), else "endpoint=<host[:port]/path>" of the base URL (no
/// user info, query or scheme): different servers answering the same model id may answer
/// differently, so they never share entries.
std::string cache_scope(const ProviderEndpoint& endpoint);

/// The parts of a cache key's scope (DESIGN §3, "Scope"). The one rule for the library, the CLI
/// and the gateway: key_scope joins the non-empty parts with ';' in this order.
struct ScopeParts {
  std::string_view tenant;    ///< the gateway's partition of the caller (empty when shared)
  std::string_view endpoint;  ///< cache_scope of where a miss goes (empty: the public service)
  std::string_view shaping;   ///< the gateway's answer-shaping headers (anthropic-beta, ...)
  std::string_view api;       ///< another API version than the library's ("gemini-api=v1")
};
std::string key_scope(const ScopeParts& parts);
/// The scope of a call to `endpoint` with no tenant, headers or API version: what the library
/// and the CLI key a call with, and what a gateway sharing its cache across keys keys the same
/// call with when it forwards misses to the same base URL.
std::string key_scope(const ProviderEndpoint& endpoint);

/// The URL a request for `model` to `api` goes to.
std::string endpoint_url(const ProviderEndpoint& endpoint, std::string_view model, bool stream,
                         Api api = Api::chat);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// The headers a call carries to the provider: `forwarded` (a gateway caller's end-to-end
/// headers; null for the library) except hop-by-hop ones, Host, Content-Length, Accept-Encoding
/// (the answer is stored and replayed as plain bytes), cookies, the x-llm-* controls,
/// Cache-Control and every credential header; then the credential (endpoint.api_key, else
/// `caller_credential`, else endpoint.fallback_api_key) in the provider's own header,
/// anthropic-version for Anthropic unless forwarded, and content-type. Values are secrets:
/// never log them.
HeaderList request_headers(const ProviderEndpoint& endpoint, const HeaderList* forwarded = nullptr,
                           std::string_view caller_credential = {});

/// Auth and version headers for the provider alone (request_headers without content-type).
HeaderList auth_headers(const ProviderEndpoint& endpoint);

/// What went wrong with a provider exchange, in words fit for a gateway's caller: the kind of
/// failure, never the provider's host, port or address (the operator's log has those).
std::string describe_transport_failure(TransportError::Kind kind);
TransportFailure transport_failure_of(TransportError::Kind kind) noexcept;

/// The retry hint of a response: retry-after-ms, Retry-After (seconds or HTTP date), or OpenAI's
/// x-ratelimit-reset-requests / -tokens durations, in that order of precedence.
std::optional<std::chrono::milliseconds> retry_hint_from_headers(const HttpResponse& response);

/// The extra CA file for provider connections: `options_ca_file` if set, else the variable
/// LLM_CACHING_CA_FILE, else "" (the system store only; OpenSSL's SSL_CERT_FILE and
/// SSL_CERT_DIR still replace the system store's location).
std::string resolve_ca_file(std::string options_ca_file);

}  // namespace llm_caching::providers

// The real transport: a Model that sends native requests to a provider over HTTPS (or plain HTTP
// where the base URL says so, for local servers such as Ollama, vLLM and llama.cpp).
#pragma once

#include "llm_caching/cache_key.hpp"
#include "llm_caching/model.hpp"
#include "providers/http_client.hpp"

#include <memory>
#include <span>
#include <string>
#include <string_view>

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

struct ProviderEndpoint {
  Provider provider = Provider::openai;
  std::string host;      ///< the prefix of the host ("openai", "groq", ...)
  std::string base_url;  ///< resolved: argument, else *_BASE_URL, else the host's default
  std::string api_key;   ///< resolved: argument, else *_API_KEY
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

/// The URL a request for `model` goes to.
std::string endpoint_url(const ProviderEndpoint& endpoint, std::string_view model, bool stream,
                         Api api = Api::chat);

/// Auth and version headers for the provider. Values are secrets: never log them.
std::vector<std::pair<std::string, std::string>> auth_headers(const ProviderEndpoint& endpoint);

/// The retry hint of a response: retry-after-ms, Retry-After (seconds or HTTP date), or OpenAI's
/// x-ratelimit-reset-requests / -tokens durations, in that order of precedence.
std::optional<std::chrono::milliseconds> retry_hint_from_headers(const HttpResponse& response);

/// The extra CA file for provider connections: `options_ca_file` if set, else the variable
/// LLM_CACHING_CA_FILE, else "" (the system store only; OpenSSL's SSL_CERT_FILE and
/// SSL_CERT_DIR still replace the system store's location).
std::string resolve_ca_file(std::string options_ca_file);

/// A Model over the process's ClientPool: its calls share keep-alive connections with every other
/// HttpModel's that has the same client options.
class HttpModel final : public Model {
 public:
  HttpModel(ProviderEndpoint endpoint, HttpClientOptions options);
  boost::asio::awaitable<NativeResponse> call(const NativeRequest& request) override;
  const ProviderEndpoint& endpoint() const noexcept { return endpoint_; }
  /// cache_scope(endpoint()).
  const std::string& cache_scope() const noexcept { return scope_; }

 private:
  ProviderEndpoint endpoint_;
  HttpClientOptions options_;
  std::string scope_;
};

/// Resolves the endpoint now (so a missing key fails before I/O) and returns the model.
/// options.ca_file goes through resolve_ca_file; an unreadable CA file is a ConfigurationError.
std::shared_ptr<HttpModel> make_http_model(const ProviderHost& host, std::string base_url,
                                           std::string api_key, HttpClientOptions options = {},
                                           bool require_key = true);
std::shared_ptr<HttpModel> make_http_model(Provider provider, std::string base_url,
                                           std::string api_key, HttpClientOptions options = {});

}  // namespace llm_caching::providers

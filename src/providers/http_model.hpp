// The real transport: a Model that sends native requests to a provider over HTTPS (or plain HTTP
// where the base URL says so, for local servers such as Ollama, vLLM and llama.cpp).
#pragma once

#include "llm_caching/cache_key.hpp"
#include "llm_caching/model.hpp"
#include "providers/http_client.hpp"

#include <memory>
#include <string>

namespace llm_caching::providers {

struct ProviderEndpoint {
  Provider provider = Provider::openai;
  std::string base_url;  ///< resolved: argument, else *_BASE_URL, else the public endpoint
  std::string api_key;   ///< resolved: argument, else *_API_KEY
};

/// Resolves base URL and key from the arguments and the environment. Throws ConfigurationError
/// naming the variable when no key is found, before any I/O. A plain http:// base URL needs no
/// key (local servers); https:// always does.
ProviderEndpoint resolve_endpoint(Provider provider, std::string base_url, std::string api_key);

/// The URL a request for `model` goes to.
std::string endpoint_url(const ProviderEndpoint& endpoint, std::string_view model, bool stream);

/// Auth and version headers for the provider. Values are secrets: never log them.
std::vector<std::pair<std::string, std::string>> auth_headers(const ProviderEndpoint& endpoint);

/// The retry hint of a response: retry-after-ms, Retry-After (seconds or HTTP date), or OpenAI's
/// x-ratelimit-reset-requests / -tokens durations, in that order of precedence.
std::optional<std::chrono::milliseconds> retry_hint_from_headers(const HttpResponse& response);

/// Resolves the endpoint now (so a missing key fails before I/O) and returns a Model that opens
/// an HttpClient on the caller's executor for each call.
std::shared_ptr<Model> make_http_model(Provider provider, std::string base_url,
                                       std::string api_key, HttpClientOptions options = {});

}  // namespace llm_caching::providers

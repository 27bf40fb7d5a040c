#include "providers/http_model.hpp"

#include "core/text.hpp"
#include "providers/client_pool.hpp"

#include "core/retry.hpp"
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <fstream>

namespace llm_caching::providers {

namespace {

std::string env(std::string_view name) {
  if (name.empty()) return {};
  const char* v = std::getenv(std::string(name).c_str());
  return v ? std::string(v) : std::string();
}

// The wire providers' own services come first: default_host() indexes them by Provider.
constexpr std::array<ProviderHost, 13> kHosts{{
    {"openai", Provider::openai, "OPENAI_BASE_URL", "OPENAI_API_KEY", "",
     "https://api.openai.com/v1", false},
    {"anthropic", Provider::anthropic, "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "",
     "https://api.anthropic.com", false},
    {"google-gla", Provider::gemini, "GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY",
     "https://generativelanguage.googleapis.com", false},
    {"gemini", Provider::gemini, "GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY",
     "https://generativelanguage.googleapis.com", false},
    {"google", Provider::gemini, "GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY",
     "https://generativelanguage.googleapis.com", false},
    {"groq", Provider::openai, "GROQ_BASE_URL", "GROQ_API_KEY", "",
     "https://api.groq.com/openai/v1", false},
    {"deepseek", Provider::openai, "DEEPSEEK_BASE_URL", "DEEPSEEK_API_KEY", "",
     "https://api.deepseek.com/v1", false},
    {"openrouter", Provider::openai, "OPENROUTER_BASE_URL", "OPENROUTER_API_KEY", "",
     "https://openrouter.ai/api/v1", false},
    {"together", Provider::openai, "TOGETHER_BASE_URL", "TOGETHER_API_KEY", "",
     "https://api.together.xyz/v1", false},
    {"mistral", Provider::openai, "MISTRAL_BASE_URL", "MISTRAL_API_KEY", "",
     "https://api.mistral.ai/v1", false},
    {"ollama", Provider::openai, "OLLAMA_BASE_URL", "OLLAMA_API_KEY", "",
     "http://localhost:11434/v1", true},
    {"vllm", Provider::openai, "VLLM_BASE_URL", "VLLM_API_KEY", "", "http://localhost:8000/v1",
     true},
    {"llamacpp", Provider::openai, "LLAMACPP_BASE_URL", "LLAMACPP_API_KEY", "",
     "http://localhost:8080/v1", true},
}};

std::string trim_trailing_slashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

std::span<const ProviderHost> known_hosts() noexcept {
  return kHosts;
}

const ProviderHost* find_host(std::string_view prefix) noexcept {
  for (const ProviderHost& h : kHosts) {
    if (h.prefix == prefix) return &h;
  }
  return nullptr;
}

const ProviderHost& default_host(Provider provider) noexcept {
  switch (provider) {
    case Provider::openai:
      return kHosts[0];
    case Provider::anthropic:
      return kHosts[1];
    case Provider::gemini:
      return kHosts[2];
  }
  return kHosts[0];
}

ProviderEndpoint resolve_endpoint(const ProviderHost& host, std::string base_url,
                                  std::string api_key, bool require_key) {
  ProviderEndpoint e;
  e.provider = host.wire;
  e.host = std::string(host.prefix);
  e.base_url = !base_url.empty() ? std::move(base_url) : env(host.base_url_variable);
  if (e.base_url.empty()) e.base_url = std::string(host.default_base_url);
  e.base_url = trim_trailing_slashes(e.base_url);
  if (!e.base_url.starts_with("https://") && !e.base_url.starts_with("http://")) {
    throw ConfigurationError("base URL for " + e.host +
                             " must start with https:// or http:// (set " +
                             std::string(host.base_url_variable) + " or Agent::base_url)");
  }
  e.api_key = !api_key.empty() ? std::move(api_key) : env(host.key_variable);
  if (e.api_key.empty()) e.api_key = env(host.alternate_key_variable);
  if (require_key && e.api_key.empty() && !host.local && e.base_url.starts_with("https://")) {
    std::string vars(host.key_variable);
    if (!host.alternate_key_variable.empty()) {
      vars += " (or " + std::string(host.alternate_key_variable) + ")";
    }
    throw ConfigurationError("no API key for " + e.host + ": set " + vars + " or Agent::api_key");
  }
  return e;
}

ProviderEndpoint resolve_endpoint(Provider provider, std::string base_url, std::string api_key) {
  return resolve_endpoint(default_host(provider), std::move(base_url), std::move(api_key));
}

std::string cache_scope(const ProviderEndpoint& endpoint) {
  if (endpoint.base_url == default_host(endpoint.provider).default_base_url) return {};
  const auto parsed = boost::urls::parse_uri(endpoint.base_url);
  if (!parsed) {
    throw ConfigurationError("base URL for " + endpoint.host + " is not a valid URL");
  }
  const bool https = parsed->scheme() == "https";
  std::string scope = "endpoint=" + core::lowercase(parsed->encoded_host());
  const std::string_view port = parsed->port();
  if (!port.empty() && port != (https ? "443" : "80")) scope += ":" + std::string(port);
  scope += trim_trailing_slashes(std::string(parsed->encoded_path()));
  return scope;
}

std::string endpoint_url(const ProviderEndpoint& endpoint, std::string_view model, bool stream,
                         Api api) {
  switch (endpoint.provider) {
    case Provider::openai:
      // OpenAI-style base URLs end in the version (".../v1", ".../openai/v1", ".../api/v1").
      return endpoint.base_url + request_path(endpoint.provider, api, model, stream).substr(3);
    case Provider::anthropic:
    case Provider::gemini:
      return endpoint.base_url + request_path(endpoint.provider, api, model, stream);
  }
  return endpoint.base_url;
}

std::vector<std::pair<std::string, std::string>> auth_headers(const ProviderEndpoint& endpoint) {
  std::vector<std::pair<std::string, std::string>> h;
  switch (endpoint.provider) {
    case Provider::openai:
      if (!endpoint.api_key.empty()) h.emplace_back("authorization", "Bearer " + endpoint.api_key);
      break;
    case Provider::anthropic:
      if (!endpoint.api_key.empty()) h.emplace_back("x-api-key", endpoint.api_key);
      h.emplace_back("anthropic-version", std::string(kAnthropicVersion));
      break;
    case Provider::gemini:
      if (!endpoint.api_key.empty()) h.emplace_back("x-goog-api-key", endpoint.api_key);
      break;
  }
  return h;
}

std::optional<std::chrono::milliseconds> retry_hint_from_headers(const HttpResponse& response) {
  if (auto ms = core::parse_retry_after_ms(response.header("retry-after-ms"))) return ms;
  if (auto ra = core::parse_retry_after(response.header("retry-after"),
                                        std::chrono::system_clock::now())) {
    return ra;
  }
  // The reset durations come on every response; only a 429 means "wait for them".
  if (response.status != 429) return std::nullopt;
  std::optional<std::chrono::milliseconds> reset;
  for (const char* name : {"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"}) {
    if (auto d = core::parse_go_duration(response.header(name))) {
      if (!reset || *d > *reset) reset = d;
    }
  }
  return reset;
}

std::string resolve_ca_file(std::string options_ca_file) {
  if (!options_ca_file.empty()) return options_ca_file;
  return env("LLM_CACHING_CA_FILE");
}

HttpModel::HttpModel(ProviderEndpoint endpoint, HttpClientOptions options)
    : endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      scope_(providers::cache_scope(endpoint_)) {}

boost::asio::awaitable<NativeResponse> HttpModel::call(const NativeRequest& request) {
  HttpRequest http;
  http.method = "POST";
  http.url = endpoint_url(endpoint_, request.model, false, request.api);
  http.headers = auth_headers(endpoint_);
  http.headers.emplace_back("content-type", "application/json");
  http.body = boost::json::serialize(request.body);

  NativeResponse out;
  try {
    // The process's pool: keep-alive connections shared by every call (client_pool.hpp).
    HttpResponse response = co_await ClientPool::process_wide().send(std::move(http), options_);
    out.status = response.status;
    out.retry_after = retry_hint_from_headers(response);
    out.body = std::move(response.body);
  } catch (const TransportError& e) {
    // A certificate that does not verify will not verify on the next try either.
    if (e.kind() == TransportError::Kind::tls_verify) {
      throw ProviderError(e.what(), 0, "tls_verify", "");
    }
    out.status = 0;
    out.transport_error = e.what();
  }
  co_return out;
}

std::shared_ptr<HttpModel> make_http_model(const ProviderHost& host, std::string base_url,
                                           std::string api_key, HttpClientOptions options,
                                           bool require_key) {
  ProviderEndpoint endpoint =
      resolve_endpoint(host, std::move(base_url), std::move(api_key), require_key);
  options.ca_file = resolve_ca_file(std::move(options.ca_file));
  if (!options.ca_file.empty() && !std::ifstream(options.ca_file)) {
    // Fail here, before the request is priced and keyed, rather than inside the retry loop.
    throw ConfigurationError("cannot read CA file '" + options.ca_file +
                             "' (from --ca-file, LLM_CACHING_CA_FILE or HttpClientOptions)");
  }
  return std::make_shared<HttpModel>(std::move(endpoint), std::move(options));
}

std::shared_ptr<HttpModel> make_http_model(Provider provider, std::string base_url,
                                           std::string api_key, HttpClientOptions options) {
  return make_http_model(default_host(provider), std::move(base_url), std::move(api_key),
                         std::move(options));
}

}  // namespace llm_caching::providers

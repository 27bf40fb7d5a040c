#include "providers/endpoint.hpp"

#include "core/text.hpp"

#include "core/retry.hpp"
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>

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

/// Not forwarded to a provider: hop-by-hop and framing headers, what the stored answer must not
/// depend on, the gateway's own controls, and every credential (the endpoint decides the key).
bool is_dropped_header(std::string_view name) {
  static constexpr std::array<std::string_view, 17> kDropped = {"host",
                                                                "content-length",
                                                                "connection",
                                                                "keep-alive",
                                                                "proxy-connection",
                                                                "te",
                                                                "trailer",
                                                                "transfer-encoding",
                                                                "upgrade",
                                                                "accept-encoding",
                                                                "cookie",
                                                                "cache-control",
                                                                "authorization",
                                                                "x-api-key",
                                                                "x-goog-api-key",
                                                                "expect",
                                                                "proxy-authorization"};
  return name.starts_with("x-llm-") ||
         std::find(kDropped.begin(), kDropped.end(), name) != kDropped.end();
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
  e.base_url = core::without_trailing_slashes(e.base_url);
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
  scope += core::without_trailing_slashes(std::string(parsed->encoded_path()));
  return scope;
}

std::string key_scope(const ScopeParts& parts) {
  std::string scope;
  for (const std::string_view part : {parts.tenant, parts.endpoint, parts.shaping, parts.api}) {
    if (part.empty()) continue;
    if (!scope.empty()) scope += ';';
    scope += part;
  }
  return scope;
}

std::string key_scope(const ProviderEndpoint& endpoint) {
  const std::string where = cache_scope(endpoint);
  return key_scope(ScopeParts{.endpoint = where});
}

std::string endpoint_url(const ProviderEndpoint& endpoint, std::string_view model, bool stream,
                         Api api) {
  const std::string path = request_path(endpoint.provider, api, model, stream);
  switch (endpoint.provider) {
    case Provider::openai:
      // OpenAI-style base URLs end in the version (".../v1", ".../openai/v1", ".../api/v1"):
      // ".../v1" + "/responses".
      return endpoint.base_url + path.substr(3);
    case Provider::anthropic:
    case Provider::gemini:
      return endpoint.base_url + path;
  }
  return endpoint.base_url;
}

HeaderList request_headers(const ProviderEndpoint& endpoint, const HeaderList* forwarded,
                           std::string_view caller_credential) {
  HeaderList out;
  bool has_anthropic_version = false;
  if (forwarded) {
    out.reserve(forwarded->size() + 3);
    for (const auto& [name, value] : *forwarded) {
      if (is_dropped_header(name) || name == "content-type") continue;
      if (name == "anthropic-version") has_anthropic_version = true;
      out.emplace_back(name, value);
    }
  }
  const std::string_view key = !endpoint.api_key.empty()    ? std::string_view(endpoint.api_key)
                               : !caller_credential.empty() ? caller_credential
                                                            : endpoint.fallback_api_key;
  if (!key.empty()) {
    switch (endpoint.provider) {
      case Provider::openai:
        out.emplace_back("authorization", "Bearer " + std::string(key));
        break;
      case Provider::anthropic:
        out.emplace_back("x-api-key", std::string(key));
        break;
      case Provider::gemini:
        out.emplace_back("x-goog-api-key", std::string(key));
        break;
    }
  }
  if (endpoint.provider == Provider::anthropic && !has_anthropic_version) {
    out.emplace_back("anthropic-version", std::string(kAnthropicVersion));
  }
  out.emplace_back("content-type", "application/json");
  return out;
}

HeaderList auth_headers(const ProviderEndpoint& endpoint) {
  HeaderList h = request_headers(endpoint);
  h.pop_back();  // content-type
  return h;
}

std::string describe_transport_failure(TransportError::Kind kind) {
  switch (kind) {
    case TransportError::Kind::connect:
      return "could not connect to the upstream";
    case TransportError::Kind::tls_verify:
      return "the upstream's TLS certificate was not accepted";
    case TransportError::Kind::timeout:
      return "the upstream did not answer in time";
    case TransportError::Kind::reset:
      return "the upstream closed the connection";
    case TransportError::Kind::protocol:
      return "the upstream sent a malformed HTTP response";
    case TransportError::Kind::too_large:
      return "the upstream's response was too large";
  }
  return "the upstream exchange failed";
}

TransportFailure transport_failure_of(TransportError::Kind kind) noexcept {
  switch (kind) {
    case TransportError::Kind::connect:
      return TransportFailure::connect;
    case TransportError::Kind::tls_verify:
      return TransportFailure::tls_verify;
    case TransportError::Kind::timeout:
      return TransportFailure::timeout;
    case TransportError::Kind::reset:
      return TransportFailure::reset;
    case TransportError::Kind::protocol:
      return TransportFailure::protocol;
    case TransportError::Kind::too_large:
      return TransportFailure::too_large;
  }
  return TransportFailure::connect;
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

}  // namespace llm_caching::providers

#include "providers/http_model.hpp"

#include "core/retry.hpp"
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>

#include <cstdlib>

namespace llm_caching::providers {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

struct ProviderDefaults {
  const char* base_url_variable;
  const char* key_variable;
  const char* alternate_key_variable;  // may be null
  const char* public_base_url;
};

ProviderDefaults defaults_for(Provider p) {
  switch (p) {
    case Provider::openai:
      return {"OPENAI_BASE_URL", "OPENAI_API_KEY", nullptr, "https://api.openai.com/v1"};
    case Provider::anthropic:
      return {"ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", nullptr, "https://api.anthropic.com"};
    case Provider::gemini:
      return {"GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY",
              "https://generativelanguage.googleapis.com"};
  }
  throw ConfigurationError("unknown provider");
}

std::string trim_trailing_slashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

class HttpModel final : public Model {
 public:
  HttpModel(ProviderEndpoint endpoint, HttpClientOptions options)
      : endpoint_(std::move(endpoint)), options_(std::move(options)) {}

  boost::asio::awaitable<NativeResponse> call(const NativeRequest& request) override {
    HttpRequest http;
    http.method = "POST";
    http.url = endpoint_url(endpoint_, request.model, false);
    http.headers = auth_headers(endpoint_);
    http.headers.emplace_back("content-type", "application/json");
    http.body = boost::json::serialize(request.body);

    HttpClient client(co_await boost::asio::this_coro::executor, options_);
    NativeResponse out;
    try {
      HttpResponse response = co_await client.send(std::move(http));
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

 private:
  ProviderEndpoint endpoint_;
  HttpClientOptions options_;
};

}  // namespace

ProviderEndpoint resolve_endpoint(Provider provider, std::string base_url, std::string api_key) {
  const ProviderDefaults d = defaults_for(provider);
  ProviderEndpoint e;
  e.provider = provider;
  e.base_url = !base_url.empty() ? std::move(base_url) : env(d.base_url_variable);
  if (e.base_url.empty()) e.base_url = d.public_base_url;
  e.base_url = trim_trailing_slashes(e.base_url);
  if (!e.base_url.starts_with("https://") && !e.base_url.starts_with("http://")) {
    throw ConfigurationError("base URL for " + std::string(to_string(provider)) +
                             " must start with https:// or http:// (set " +
                             d.base_url_variable + " or Agent::base_url)");
  }
  e.api_key = !api_key.empty() ? std::move(api_key) : env(d.key_variable);
  if (e.api_key.empty() && d.alternate_key_variable) e.api_key = env(d.alternate_key_variable);
  if (e.api_key.empty() && e.base_url.starts_with("https://")) {
    std::string vars = d.key_variable;
    if (d.alternate_key_variable) vars += " (or " + std::string(d.alternate_key_variable) + ")";
    throw ConfigurationError("no API key for " + std::string(to_string(provider)) + ": set " +
                             vars + " or Agent::api_key");
  }
  return e;
}

std::string endpoint_url(const ProviderEndpoint& endpoint, std::string_view model, bool stream) {
  switch (endpoint.provider) {
    case Provider::openai:
      // OpenAI-style base URLs end in the version (".../v1", ".../openai/v1", ".../api/v1").
      return endpoint.base_url + "/chat/completions";
    case Provider::anthropic:
    case Provider::gemini:
      return endpoint.base_url + request_path(endpoint.provider, model, stream);
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
      h.emplace_back("anthropic-version", "2023-06-01");
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

std::shared_ptr<Model> make_http_model(Provider provider, std::string base_url,
                                       std::string api_key, HttpClientOptions options) {
  return std::make_shared<HttpModel>(
      resolve_endpoint(provider, std::move(base_url), std::move(api_key)), std::move(options));
}

}  // namespace llm_caching::providers

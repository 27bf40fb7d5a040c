#include "gateway/upstream.hpp"

#include "core/log_throttle.hpp"

#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"
#include "providers/http_model.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cstdlib>

namespace llm_caching::gateway {

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

std::string without_trailing_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::pair<Provider, std::string> split_assignment(std::string_view assignment,
                                                  std::string_view flag) {
  const auto equals = assignment.find('=');
  if (equals == std::string_view::npos || equals == 0 || equals + 1 == assignment.size()) {
    throw ConfigurationError(std::string(flag) +
                             " expects provider=VALUE (provider: openai, "
                             "anthropic or gemini)");
  }
  return {parse_provider(assignment.substr(0, equals)), std::string(assignment.substr(equals + 1))};
}

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

Upstreams Upstreams::from_environment() {
  Upstreams u;
  const std::array<std::pair<const char*, const char*>, 3> defaults = {{
      {"OPENAI_BASE_URL", "https://api.openai.com/v1"},
      {"ANTHROPIC_BASE_URL", "https://api.anthropic.com"},
      {"GEMINI_BASE_URL", "https://generativelanguage.googleapis.com"},
  }};
  for (std::size_t i = 0; i < 3; ++i) {
    u.all_[i].provider = static_cast<Provider>(i);
    std::string url = env(defaults[i].first);
    u.all_[i].base_url = without_trailing_slashes(url.empty() ? defaults[i].second : url);
  }
  return u;
}

void Upstreams::set_base_url(std::string_view assignment) {
  auto [provider, url] = split_assignment(assignment, "--upstream");
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    throw ConfigurationError("--upstream " + std::string(to_string(provider)) +
                             ": the URL must start with http:// or https://");
  }
  (*this)[provider].base_url = without_trailing_slashes(std::move(url));
}

void Upstreams::set_key_from_env(std::string_view assignment) {
  auto [provider, variable] = split_assignment(assignment, "--upstream-key-env");
  std::string key = env(variable.c_str());
  if (key.empty()) {
    throw ConfigurationError("--upstream-key-env " + std::string(to_string(provider)) + ": $" +
                             variable + " is unset or empty");
  }
  if (key.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    throw ConfigurationError("--upstream-key-env " + std::string(to_string(provider)) + ": $" +
                             variable +
                             " has a line break (a trailing newline from a file?); remove it");
  }
  (*this)[provider].api_key = std::move(key);
}

Headers upstream_headers(const Upstream& upstream, const Headers& caller,
                         std::string_view caller_credential) {
  Headers out;
  out.reserve(caller.size() + 3);
  bool has_anthropic_version = false;
  for (const auto& [name, value] : caller) {
    if (is_dropped_header(name) || name == "content-type") continue;
    if (name == "anthropic-version") has_anthropic_version = true;
    out.emplace_back(name, value);
  }
  const std::string key = !upstream.api_key.empty()    ? upstream.api_key
                          : !caller_credential.empty() ? std::string(caller_credential)
                                                       : upstream.fallback_api_key;
  if (!key.empty()) {
    switch (upstream.provider) {
      case Provider::openai:
        out.emplace_back("authorization", "Bearer " + key);
        break;
      case Provider::anthropic:
        out.emplace_back("x-api-key", key);
        break;
      case Provider::gemini:
        out.emplace_back("x-goog-api-key", key);
        break;
    }
  }
  if (upstream.provider == Provider::anthropic && !has_anthropic_version) {
    out.emplace_back("anthropic-version", std::string(providers::kAnthropicVersion));
  }
  out.emplace_back("content-type", "application/json");
  return out;
}

std::string describe_transport_failure(const providers::TransportError& error) {
  switch (error.kind()) {
    case providers::TransportError::Kind::connect:
      return "could not connect to the upstream";
    case providers::TransportError::Kind::tls_verify:
      return "the upstream's TLS certificate was not accepted";
    case providers::TransportError::Kind::timeout:
      return "the upstream did not answer in time";
    case providers::TransportError::Kind::reset:
      return "the upstream closed the connection";
    case providers::TransportError::Kind::protocol:
      return "the upstream sent a malformed HTTP response";
    case providers::TransportError::Kind::too_large:
      return "the upstream's response was too large";
  }
  return "the upstream exchange failed";
}

std::string upstream_url(const Upstream& upstream, std::string_view model, bool stream, Api api) {
  const std::string path = providers::request_path(upstream.provider, api, model, stream);
  // OpenAI-style base URLs end in the version: ".../v1" + "/responses".
  if (upstream.provider == Provider::openai) return upstream.base_url + path.substr(3);
  return upstream.base_url + path;
}

boost::asio::awaitable<NativeResponse> UpstreamModel::call(const NativeRequest& request) {
  return send(request, nullptr);
}

boost::asio::awaitable<NativeResponse> UpstreamModel::call_streaming(const NativeRequest& request,
                                                                     exchange::ChunkSink on_chunk) {
  return send(request, std::move(on_chunk));
}

boost::asio::awaitable<NativeResponse> UpstreamModel::send(const NativeRequest& request,
                                                           exchange::ChunkSink on_chunk) {
  ++calls_;
  providers::HttpRequest http;
  http.method = "POST";
  http.url = upstream_url(upstream_, request.model, request.stream, request.api);
  http.headers = upstream_headers(upstream_, caller_headers_, caller_credential_);
  http.body = verbatim_body_ ? std::string(*verbatim_body_) : boost::json::serialize(request.body);

  NativeResponse out;
  std::string streamed_body;
  const auto started = std::chrono::steady_clock::now();
  try {
    providers::HttpResponse response;
    if (on_chunk) {
      response = co_await client_.send_streaming(std::move(http), [&](std::string_view chunk) {
        streamed_body.append(chunk);
        on_chunk(chunk);
      });
    } else {
      response = co_await client_.send(std::move(http));
    }
    out.status = response.status;
    out.retry_after = providers::retry_hint_from_headers(response);
    const bool ok = response.status >= 200 && response.status < 300;
    out.streamed = ok && request.stream;
    out.body = ok && on_chunk ? std::move(streamed_body) : std::move(response.body);
    if (!ok) {
      last_error_ =
          ErrorAnswer{response.status, out.body, response.header("content-type"), out.retry_after};
    }
  } catch (const providers::TransportError& e) {
    out.status = 0;
    // The caller learns the kind of failure; where the upstream lives stays in the log.
    static core::LogThrottle throttle(std::chrono::seconds(10));
    if (throttle.allow()) spdlog::warn("gateway: upstream call failed: {}", e.what());
    out.transport_error =
        e.kind() == providers::TransportError::Kind::timeout
            ? std::string(exchange::kTimeoutTransportPrefix) + describe_transport_failure(e)
            : describe_transport_failure(e);
  }
  waited_ += std::chrono::steady_clock::now() - started;
  co_return out;
}

}  // namespace llm_caching::gateway

#include "providers/http_model.hpp"

#include "core/log_throttle.hpp"
#include "llm_caching/errors.hpp"
#include "providers/client_pool.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>

#include <fstream>

namespace llm_caching::providers {

HttpModel::HttpModel(ProviderEndpoint endpoint, HttpClientOptions options, ClientPool& pool)
    : owned_endpoint_(std::move(endpoint)),
      endpoint_(&*owned_endpoint_),
      pool_(&pool),
      pool_options_(std::move(options)) {}

HttpModel::HttpModel(HttpClient& client, const ProviderEndpoint& endpoint,
                     const HeaderList& caller_headers, std::string_view caller_credential)
    : endpoint_(&endpoint),
      client_(&client),
      caller_headers_(&caller_headers),
      caller_credential_(caller_credential) {}

boost::asio::awaitable<NativeResponse> HttpModel::call(const NativeRequest& request) {
  return send(request, nullptr);
}

boost::asio::awaitable<NativeResponse> HttpModel::call_streaming(const NativeRequest& request,
                                                                 ChunkSink on_chunk) {
  return send(request, std::move(on_chunk));
}

HttpRequest HttpModel::http_request(const NativeRequest& request) const {
  HttpRequest http;
  http.method = "POST";
  http.url = endpoint_url(*endpoint_, request.model, request.stream, request.api);
  constexpr std::string_view kCodecVersion = "/v1beta/";
  if (!api_version_.empty() && api_version_ != kCodecVersion.substr(1, 6) &&
      endpoint_->provider == Provider::gemini &&
      std::string_view(http.url).substr(endpoint_->base_url.size()).starts_with(kCodecVersion)) {
    http.url.replace(endpoint_->base_url.size() + 1, kCodecVersion.size() - 2, api_version_);
  }
  http.headers = request_headers(*endpoint_, caller_headers_, caller_credential_);
  http.body = verbatim_body_ ? std::string(*verbatim_body_) : boost::json::serialize(request.body);
  return http;
}

boost::asio::awaitable<HttpResponse> HttpModel::exchange(HttpRequest http, bool stream,
                                                         ChunkSink on_chunk) {
  if (pool_ != nullptr) {
    // The pool's connections live on its own thread; a stream comes back whole, in one chunk.
    HttpResponse response = co_await pool_->send(std::move(http), pool_options_);
    if (on_chunk && stream && response.status >= 200 && response.status < 300) {
      on_chunk(response.body);
    }
    co_return response;
  }
  if (on_chunk) co_return co_await client_->send_streaming(std::move(http), std::move(on_chunk));
  co_return co_await client_->send(std::move(http));
}

void HttpModel::record_transport_failure(const TransportError& error, NativeResponse& out) const {
  out.status = 0;
  out.transport_failure = transport_failure_of(error.kind());
  if (pool_ != nullptr) {
    out.transport_error = error.what();  // the library's own endpoint: its address helps
    return;
  }
  // A gateway's caller learns the kind of failure; where the upstream lives stays in the log.
  static core::LogThrottle throttle(std::chrono::seconds(10));
  if (throttle.allow()) spdlog::warn("gateway: upstream call failed: {}", error.what());
  out.transport_error = describe_transport_failure(error.kind());
}

boost::asio::awaitable<NativeResponse> HttpModel::send(const NativeRequest& request,
                                                       ChunkSink on_chunk) {
  ++calls_;
  NativeResponse out;
  std::string streamed_body;
  const auto started = std::chrono::steady_clock::now();
  try {
    ChunkSink sink;
    if (on_chunk) {
      sink = [&](std::string_view chunk) {
        streamed_body.append(chunk);
        on_chunk(chunk);
      };
    }
    HttpResponse response = co_await exchange(http_request(request), request.stream, sink);
    out.status = response.status;
    out.retry_after = retry_hint_from_headers(response);
    const bool ok = response.status >= 200 && response.status < 300;
    out.streamed = ok && request.stream;
    out.body = ok && on_chunk ? std::move(streamed_body) : std::move(response.body);
    if (!ok) {
      last_error_ =
          ErrorAnswer{response.status, out.body, response.header("content-type"), out.retry_after};
    }
  } catch (const TransportError& e) {
    record_transport_failure(e, out);
  }
  waited_ += std::chrono::steady_clock::now() - started;
  co_return out;
}

std::shared_ptr<HttpModel> make_http_model(ClientPool& pool, const ProviderHost& host,
                                           std::string base_url, std::string api_key,
                                           HttpClientOptions options, bool require_key) {
  ProviderEndpoint endpoint =
      resolve_endpoint(host, std::move(base_url), std::move(api_key), require_key);
  options.ca_file = resolve_ca_file(std::move(options.ca_file));
  if (!options.ca_file.empty() && !std::ifstream(options.ca_file)) {
    // Fail here, before the request is priced and keyed, rather than inside the retry loop.
    throw ConfigurationError("cannot read CA file '" + options.ca_file +
                             "' (from --ca-file, LLM_CACHING_CA_FILE or HttpClientOptions)");
  }
  return std::make_shared<HttpModel>(std::move(endpoint), std::move(options), pool);
}

}  // namespace llm_caching::providers

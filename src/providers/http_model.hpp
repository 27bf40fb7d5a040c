// The provider client: the one mapping of a native request to the provider's HTTP request and of
// its answer back to a NativeResponse, used by the library, the CLI and the gateway alike. Only
// where the connection comes from differs: the runtime's ClientPool (library, CLI: keep-alive
// connections shared by every call on any thread) or a gateway worker's own HttpClient (no thread
// hop on the worker's hot path).
#pragma once

#include "providers/endpoint.hpp"
#include "providers/streaming_model.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace llm_caching::providers {

class ClientPool;

class HttpModel final : public StreamingModel {
 public:
  /// An error answer (status >= 300) the model saw last: the gateway passes it through unchanged.
  struct ErrorAnswer {
    int status = 0;
    std::string body;
    std::string content_type;
    std::optional<std::chrono::milliseconds> retry_after;
  };

  /// Over `pool`, with connections made by `options` (library, CLI). Owns its endpoint.
  HttpModel(ProviderEndpoint endpoint, HttpClientOptions options, ClientPool& pool);
  /// Over a gateway worker's `client`, for one caller's request: `endpoint`, `caller_headers`
  /// and `caller_credential` must outlive the model. The headers sent upstream are built only
  /// when a call is made (a hit never pays for them). A transport failure is described without
  /// the upstream's address (the caller must not learn it; the operator's log has it).
  HttpModel(HttpClient& client, const ProviderEndpoint& endpoint, const HeaderList& caller_headers,
            std::string_view caller_credential);
  HttpModel(const HttpModel&) = delete;
  HttpModel& operator=(const HttpModel&) = delete;

  boost::asio::awaitable<NativeResponse> call(const NativeRequest& request) override;
  boost::asio::awaitable<NativeResponse> call_streaming(const NativeRequest& request,
                                                        ChunkSink on_chunk) override;

  /// The caller's body bytes, to be sent as they are instead of re-serialising the parsed JSON:
  /// only when the caller left that JSON unchanged. Must outlive the model.
  void send_verbatim(std::string_view body) noexcept { verbatim_body_ = body; }
  /// Gemini: call this API version ("v1", "v1alpha") instead of the v1beta that the codec's
  /// paths name, as the gateway's caller did ("v1beta" changes nothing). Must outlive the model
  /// (a literal, in practice).
  void use_api_version(std::string_view version) noexcept { api_version_ = version; }

  const ProviderEndpoint& endpoint() const noexcept { return *endpoint_; }
  const std::optional<ErrorAnswer>& last_error() const noexcept { return last_error_; }
  int calls() const noexcept { return calls_; }
  /// Time spent in provider exchanges, from sending the request to the end of the answer.
  std::chrono::nanoseconds waited() const noexcept { return waited_; }

 private:
  boost::asio::awaitable<HttpResponse> exchange(HttpRequest http, bool stream, ChunkSink on_chunk);
  HttpRequest http_request(const NativeRequest& request) const;
  void record_transport_failure(const TransportError& error, NativeResponse& out) const;
  boost::asio::awaitable<NativeResponse> send(const NativeRequest& request, ChunkSink on_chunk);

  std::optional<ProviderEndpoint> owned_endpoint_;
  const ProviderEndpoint* endpoint_;
  // Exactly one of the two connection sources is set.
  ClientPool* pool_ = nullptr;
  HttpClientOptions pool_options_;
  HttpClient* client_ = nullptr;
  const HeaderList* caller_headers_ = nullptr;
  std::string_view caller_credential_;
  std::optional<std::string_view> verbatim_body_;
  std::string_view api_version_;
  std::optional<ErrorAnswer> last_error_;
  int calls_ = 0;
  std::chrono::nanoseconds waited_{0};
};

/// Resolves the endpoint now (so a missing key fails before I/O) and returns the model, over
/// `pool`. options.ca_file goes through resolve_ca_file; an unreadable CA file is a
/// ConfigurationError.
std::shared_ptr<HttpModel> make_http_model(ClientPool& pool, const ProviderHost& host,
                                           std::string base_url, std::string api_key,
                                           HttpClientOptions options = {}, bool require_key = true);

}  // namespace llm_caching::providers

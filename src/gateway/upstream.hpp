// Where the gateway sends misses: one base URL per provider, and a Model that forwards the
// caller's own credentials (or the configured key) to it.
#pragma once

#include "exchange/exchange.hpp"
#include "gateway/http_types.hpp"
#include "llm_caching/cache_key.hpp"
#include "providers/http_client.hpp"

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace llm_caching::gateway {

struct Upstream {
  Provider provider = Provider::openai;
  /// No trailing slash. OpenAI-style base URLs end in the version (".../v1"); Anthropic's and
  /// Gemini's are the host root.
  std::string base_url;
  /// Configured key used instead of the caller's; empty = forward the caller's. Never logged.
  std::string api_key;
  /// Configured key used only when the caller sends none (and api_key is empty). The cache
  /// partition is still the caller's ("anonymous"): this key never reaches a cache key. Never
  /// logged.
  std::string fallback_api_key;
};

class Upstreams {
 public:
  /// From OPENAI_BASE_URL, ANTHROPIC_BASE_URL, GEMINI_BASE_URL, else the public endpoints. No
  /// keys: by default the caller's own key is forwarded.
  static Upstreams from_environment();

  /// Applies "provider=URL" (as given to --upstream). Throws ConfigurationError for an unknown
  /// provider or a URL that is not http(s)://.
  void set_base_url(std::string_view assignment);
  /// Applies "provider=ENV_VAR": the key is read from that variable now (the key itself never
  /// appears on a command line). Throws ConfigurationError when it is unset or empty.
  void set_key_from_env(std::string_view assignment);

  const Upstream& operator[](Provider p) const { return all_[static_cast<std::size_t>(p)]; }
  Upstream& operator[](Provider p) { return all_[static_cast<std::size_t>(p)]; }

 private:
  std::array<Upstream, 3> all_;
};

/// The headers a miss carries upstream: the caller's end-to-end headers except hop-by-hop ones,
/// Host, Content-Length, Accept-Encoding (the answer is stored and replayed as plain bytes),
/// cookies, the x-llm-* controls, Cache-Control and every credential header; then the
/// credential (the configured key, else `caller_credential`, else the configured fallback key)
/// in the provider's own header,
/// content-type, and anthropic-version for Anthropic when the caller sent none.
Headers upstream_headers(const Upstream& upstream, const Headers& caller,
                         std::string_view caller_credential);

/// What went wrong with an upstream exchange, in words fit for a caller: the kind of failure,
/// never the upstream's host, port or address (the operator's log has those).
std::string describe_transport_failure(const providers::TransportError& error);

/// The URL a call goes to.
std::string upstream_url(const Upstream& upstream, std::string_view model, bool stream,
                         Api api = Api::chat);

/// A Model over the worker thread's HttpClient, with one request's forwarded headers. It keeps
/// the last error answer, so the gateway can pass a provider's 4xx through unchanged.
class UpstreamModel final : public exchange::StreamingModel {
 public:
  struct ErrorAnswer {
    int status = 0;
    std::string body;
    std::string content_type;
    std::optional<std::chrono::milliseconds> retry_after;
  };

  /// `caller_headers` and `caller_credential` must outlive the model; the upstream headers are
  /// built only when a call is made (a hit never pays for them).
  UpstreamModel(providers::HttpClient& client, const Upstream& upstream,
                const Headers& caller_headers, std::string_view caller_credential)
      : client_(client),
        upstream_(upstream),
        caller_headers_(caller_headers),
        caller_credential_(caller_credential) {}

  boost::asio::awaitable<NativeResponse> call(const NativeRequest& request) override;
  boost::asio::awaitable<NativeResponse> call_streaming(const NativeRequest& request,
                                                        exchange::ChunkSink on_chunk) override;

  /// The caller's body bytes, to be sent as they are instead of re-serialising the parsed JSON:
  /// only when the route left that JSON unchanged. Must outlive the model.
  void send_verbatim(std::string_view body) noexcept { verbatim_body_ = body; }

  const std::optional<ErrorAnswer>& last_error() const noexcept { return last_error_; }
  int calls() const noexcept { return calls_; }
  /// Time spent in upstream exchanges, from sending the request to the end of the answer.
  std::chrono::nanoseconds waited() const noexcept { return waited_; }

 private:
  boost::asio::awaitable<NativeResponse> send(const NativeRequest& request,
                                              exchange::ChunkSink on_chunk);

  providers::HttpClient& client_;
  const Upstream& upstream_;
  const Headers& caller_headers_;
  std::string_view caller_credential_;
  std::optional<std::string_view> verbatim_body_;
  std::optional<ErrorAnswer> last_error_;
  int calls_ = 0;
  std::chrono::nanoseconds waited_{0};
};

}  // namespace llm_caching::gateway

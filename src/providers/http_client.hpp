// HTTPS client for provider calls: keep-alive pool, TLS with peer verification, timeouts, proxies.
// Only plain types and asio::awaitable here: Beast and OpenSSL stay inside the .cpp files.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llm_caching/errors.hpp"

namespace llm_caching::providers {

namespace asio = boost::asio;

struct HttpClientOptions {
  /// Covers resolve, TCP connect, proxy CONNECT and the TLS handshake.
  std::chrono::milliseconds connect_timeout{10000};
  /// Longest silence allowed while waiting for response bytes (reset by every byte received),
  /// so a long stream that keeps sending never times out.
  std::chrono::milliseconds read_timeout{600000};
  /// Extra CA file (PEM), trusted in addition to the system store.
  std::string ca_file;
  bool verify_peer = true;
  /// Idle keep-alive connections kept per host for reuse; one coming back to a full pool closes.
  std::size_t max_idle_per_host = 8;
  /// An idle connection unused this long is closed, by a timer or when the next request finds
  /// it: after a burst of misses the pool shrinks back to nothing, rather than holding a socket
  /// per connection the burst opened until the server closes it. Zero or less: never.
  std::chrono::milliseconds idle_timeout{30000};
  /// Limit on the response body (and on the sum of streamed chunks).
  std::size_t max_response_bytes = std::size_t{64} << 20;
};

struct HttpRequest {
  std::string method = "POST";
  /// http:// or https://, with path and query.
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// Case-insensitive lookup of the first header with this name; "" if absent.
  std::string header(std::string_view name) const;
};

/// A transport failure: nothing usable came back. The message names what failed and the
/// host:port, never a header value (API keys travel in headers).
class TransportError : public Error {
 public:
  enum class Kind { connect, tls_verify, timeout, reset, protocol, too_large };
  TransportError(Kind kind, const std::string& what) : Error(what), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

std::string_view to_string(TransportError::Kind kind) noexcept;

/// One client per io_context is enough: connections are pooled per (scheme, host, port) and
/// shared by every coroutine that calls send(). Proxy variables (HTTPS_PROXY, https_proxy,
/// HTTP_PROXY, http_proxy, NO_PROXY, no_proxy) are read once, at construction.
/// Throws ConfigurationError for an unreadable ca_file or an unusable proxy variable.
class HttpClient {
 public:
  explicit HttpClient(asio::any_io_executor executor, HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Sends the request and reads the whole response. Any HTTP status is returned as a response;
  /// only transport failures throw (TransportError), and a malformed URL throws
  /// ConfigurationError. Host, Content-Length and User-Agent are added when absent.
  asio::awaitable<HttpResponse> send(HttpRequest request);

  /// Like send(), but a 2xx body is handed to `on_body_chunk` as it arrives and the returned
  /// response has an empty body. A non-2xx body is small and is returned whole in `body`
  /// instead, so the caller can parse the error. An exception thrown by `on_body_chunk` closes
  /// the connection and propagates.
  asio::awaitable<HttpResponse> send_streaming(
      HttpRequest request, std::function<void(std::string_view chunk)> on_body_chunk);

  /// Number of TCP connections this client opened so far (for tests and metrics).
  std::size_t connections_opened() const noexcept;
  /// Connections open and idle in the pool now (for tests and metrics).
  std::size_t idle_connections() const;

  /// Closes the idle connections and parks none from now on (a connection whose request ends
  /// later closes then), so that nothing of the client's keeps its io_context running: for
  /// the end of a loop that runs until it has no work left (the gateway's shutdown). Call it on
  /// the client's executor.
  void close_idle();

  struct Impl;  // opaque; shared with in-flight requests so they outlive nothing they use

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace llm_caching::providers

// Internal to the HTTP client: one keep-alive connection (plain or TLS, direct or through a
// proxy). No Beast types here, so http_client.cpp compiles without Beast.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "providers/http_client.hpp"

namespace llm_caching::providers::detail {

/// An HTTP proxy to go through (http:// only; https to the proxy itself is not supported).
struct ProxyHop {
  std::string host;
  std::uint16_t port = 0;
  /// "Basic ..." built from the proxy URL's user info, or empty. Never put in a message.
  std::string authorization;
};

/// Where a connection goes: the origin server, possibly through a proxy. For https through a
/// proxy the connection tunnels with CONNECT; for http it talks to the proxy itself.
struct ConnectPlan {
  bool tls = false;
  std::string host;  // without IPv6 brackets
  std::uint16_t port = 0;
  std::optional<ProxyHop> proxy;
  std::string describe() const;  // "host:port" for messages
};

/// The request as it goes on the wire: target is origin-form ("/v1/x?y") or, for plain http
/// through a proxy, absolute-form ("http://host:port/v1/x?y").
struct WireRequest {
  std::string method;
  std::string target;
  std::string host_header;
  const HttpRequest* source = nullptr;  // headers and body
};

struct TlsContext;
/// Throws ConfigurationError when ca_file cannot be loaded.
std::shared_ptr<TlsContext> make_tls_context(const HttpClientOptions& options);

class Connection {
 public:
  /// Opens TCP, tunnels through the proxy when planned, and completes the TLS handshake, all
  /// within options.connect_timeout. Throws TransportError.
  static asio::awaitable<std::unique_ptr<Connection>> open(asio::any_io_executor executor,
                                                           std::shared_ptr<TlsContext> tls,
                                                           ConnectPlan plan,
                                                           HttpClientOptions options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Writes the request and reads the response. `on_chunk` (may be null) receives 2xx bodies.
  /// Throws TransportError; afterwards received_any() tells whether any response byte came.
  asio::awaitable<HttpResponse> exchange(const WireRequest& request,
                                         const std::function<void(std::string_view)>* on_chunk);
  /// True when any response byte arrived during the last exchange.
  bool received_any() const noexcept;
  /// True when the last exchange completed and the server allows another request.
  bool reusable() const noexcept;

  struct State;

 private:
  explicit Connection(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace llm_caching::providers::detail

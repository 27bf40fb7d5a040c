// The Beast side of the HTTP client: connect (direct or through a proxy), TLS handshake with
// peer and host name verification, one request/response exchange with timeouts and limits.
#include "providers/http_connection.hpp"

#include "providers/http_wire.hpp"
#include "providers/write_now.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

namespace llm_caching::providers::detail {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Kind = TransportError::Kind;

struct TlsContext {
  ssl::context context{ssl::context::tls_client};
};

namespace {
std::shared_ptr<TlsContext> build_tls_context(const HttpClientOptions& options) {
  auto tls = std::make_shared<TlsContext>();
  SSL_CTX_set_min_proto_version(tls->context.native_handle(), TLS1_2_VERSION);
  error_code ec;
  // A missing system store is not fatal: ca_file may be all the caller trusts.
  tls->context.set_default_verify_paths(ec);
  if (!options.ca_file.empty()) {
    tls->context.load_verify_file(options.ca_file, ec);
    if (ec) {
      throw ConfigurationError("cannot load CA file '" + options.ca_file + "': " + ec.message());
    }
  }
  tls->context.set_verify_mode(options.verify_peer ? ssl::verify_peer : ssl::verify_none);
  return tls;
}
}  // namespace

// Loading the system CA store takes tens of milliseconds; a configured SSL_CTX is safe to share
// between connections and threads, so each trust configuration is loaded once per process. The
// default store's location follows SSL_CERT_FILE / SSL_CERT_DIR, so they are part of the key.
std::shared_ptr<TlsContext> make_tls_context(const HttpClientOptions& options) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<TlsContext>> contexts;
  const auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  const std::string id = options.ca_file + '\n' + (options.verify_peer ? "1" : "0") + '\n' +
                         env("SSL_CERT_FILE") + '\n' + env("SSL_CERT_DIR");
  std::lock_guard lock(mutex);
  auto& slot = contexts[id];
  if (!slot) slot = build_tls_context(options);
  return slot;
}

struct Connection::State {
  ConnectPlan plan;
  HttpClientOptions options;
  beast::flat_buffer buffer;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  bool received_any = false;
  bool reusable = false;
};

namespace {

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string host_port(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string millis(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

bool is_closed_early(const error_code& ec) {
  return ec == asio::error::eof || ec == http::error::end_of_stream ||
         ec == ssl::error::stream_truncated || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
}

/// Maps a failed write or read to the error a caller can act on.
TransportError io_failure(const char* phase, const Connection::State& state, const error_code& ec,
                          bool body_started) {
  const std::string where = state.plan.describe();
  if (ec == beast::error::timeout) {
    return {Kind::timeout, std::string(phase) + " " + where + " timed out (no data for " +
                               millis(state.options.read_timeout) + ")"};
  }
  if (ec == http::error::body_limit) {
    return {Kind::too_large, "response from " + where + " exceeds the limit of " +
                                 std::to_string(state.options.max_response_bytes) + " bytes"};
  }
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    return {Kind::too_large, "response headers from " + where + " are too large"};
  }
  if (ec == http::error::partial_message || (body_started && is_closed_early(ec))) {
    return {Kind::protocol, "connection to " + where + " closed before the response was complete"};
  }
  if (is_closed_early(ec)) {
    return {Kind::reset,
            std::string(phase) + " " + where + " failed: connection closed (" + ec.message() + ")"};
  }
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
    return {Kind::protocol, "malformed HTTP response from " + where + ": " + ec.message()};
  }
  return {Kind::reset, std::string(phase) + " " + where + " failed: " + ec.message()};
}

asio::awaitable<tcp::resolver::results_type> resolve(asio::any_io_executor executor,
                                                     const std::string& host, std::uint16_t port,
                                                     std::chrono::steady_clock::time_point deadline,
                                                     const HttpClientOptions& options) {
  // The timer cancels the resolver through a weak_ptr: either may finish first.
  auto resolver = std::make_shared<tcp::resolver>(executor);
  asio::steady_timer timer(executor, deadline);
  timer.async_wait([weak = std::weak_ptr<tcp::resolver>(resolver)](error_code ec) {
    if (auto alive = weak.lock(); !ec && alive) alive->cancel();
  });
  error_code ec;
  auto results = co_await resolver->async_resolve(host, std::to_string(port),
                                                  asio::redirect_error(asio::use_awaitable, ec));
  timer.cancel();
  if (ec == asio::error::operation_aborted) {
    throw TransportError(
        Kind::timeout, "resolving " + host + " timed out after " + millis(options.connect_timeout));
  }
  if (ec) {
    throw TransportError(Kind::connect, "cannot resolve " + host + ": " + ec.message());
  }
  co_return results;
}

asio::awaitable<void> connect_through_proxy(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                            const ConnectPlan& plan) {
  const std::string authority = host_port(plan.host, plan.port);
  const std::string proxy = host_port(plan.proxy->host, plan.proxy->port);
  http::request<http::empty_body> request{http::verb::connect, authority, 11};
  request.set(http::field::host, authority);
  if (!plan.proxy->authorization.empty()) {
    request.set(http::field::proxy_authorization, plan.proxy->authorization);
  }
  error_code ec;
  co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // a 2xx answer to CONNECT has no body: the tunnel starts right after
  if (!ec) {
    co_await http::async_read_header(stream, buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec == beast::error::timeout) {
    throw TransportError(Kind::timeout,
                         "CONNECT through proxy " + proxy + " to " + authority + " timed out");
  }
  if (ec) {
    throw TransportError(Kind::connect, "CONNECT through proxy " + proxy + " to " + authority +
                                            " failed: " + ec.message());
  }
  if (parser.get().result_int() / 100 != 2) {
    throw TransportError(Kind::connect, "proxy " + proxy + " refused CONNECT to " + authority +
                                            ": HTTP " + std::to_string(parser.get().result_int()));
  }
}

void expect_peer_name(SSL* ssl, const std::string& host) {
  if (is_ip_literal(host)) {
    // RFC 6066: no SNI for IP addresses; the certificate must list the IP itself.
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
  }
}

asio::awaitable<void> handshake(beast::ssl_stream<beast::tcp_stream>& stream,
                                const ConnectPlan& plan, const HttpClientOptions& options) {
  SSL* ssl = stream.native_handle();
  expect_peer_name(ssl, plan.host);
  error_code ec;
  co_await stream.async_handshake(ssl::stream_base::client,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) co_return;
  const long verify_result = SSL_get_verify_result(ssl);
  if (options.verify_peer && verify_result != X509_V_OK) {
    throw TransportError(Kind::tls_verify, "TLS handshake with " + plan.describe() +
                                               " failed: certificate verify failed (" +
                                               X509_verify_cert_error_string(verify_result) + ")");
  }
  if (ec == beast::error::timeout) {
    throw TransportError(Kind::timeout, "TLS handshake with " + plan.describe() +
                                            " timed out after " + millis(options.connect_timeout));
  }
  throw TransportError(Kind::protocol,
                       "TLS handshake with " + plan.describe() + " failed: " + ec.message());
}

template <class Stream>
asio::awaitable<HttpResponse> exchange_on(Stream& stream, Connection::State& state,
                                          const WireRequest& wire,
                                          const std::function<void(std::string_view)>* on_chunk) {
  auto& lowest = beast::get_lowest_layer(stream);
  state.received_any = false;
  state.reusable = false;
  const std::string& body = wire.source->body;
  const std::string head =
      request_head(wire.method, wire.target, wire.host_header, wire.source->headers, body.size());
  error_code ec;
  lowest.expires_after(state.options.read_timeout);
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    // One gathered write (writev) of head and body.
    const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head), asio::buffer(body)};
    co_await write_now(stream, buffers, state.options.read_timeout, ec);
  } else {
    // TLS writes one buffer per record: one record for the whole request.
    const std::string whole = head + body;
    co_await asio::async_write(stream, asio::buffer(whole),
                               asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) throw io_failure("sending request to", state, ec, false);

  http::response_parser<http::string_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(state.options.max_response_bytes);
  if (wire.method == "HEAD") parser.skip(true);
  // Eager: one read that brings the head and the body parses both, instead of returning after
  // the head and coming back through the event loop for the body (write_now.hpp says why). Not
  // for a relayed stream, whose head is relayed before its body.
  parser.eager(on_chunk == nullptr);
  bool streamed = false;
  while (!parser.is_done()) {
    lowest.expires_after(state.options.read_timeout);  // an idle limit, not a total one
    co_await http::async_read_some(stream, state.buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
    state.received_any = state.received_any || parser.got_some() || state.buffer.size() > 0;
    if (ec) throw io_failure("reading response from", state, ec, parser.is_header_done());
    if (on_chunk && parser.is_header_done() && parser.get().result_int() / 100 == 2) {
      streamed = true;
      auto& body = parser.get().body();
      if (!body.empty()) {
        (*on_chunk)(body);
        body.clear();  // string_body appends at the current size, so clearing is safe
      }
    }
  }
  lowest.expires_never();
  auto& message = parser.get();
  HttpResponse response;
  response.status = static_cast<int>(message.result_int());
  for (const auto& field : message) {
    response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  if (!streamed) response.body = std::move(message.body());
  state.reusable = message.keep_alive() && !parser.need_eof() && state.buffer.size() == 0;
  co_return response;
}

}  // namespace

std::string ConnectPlan::describe() const {
  return host_port(host, port);
}

Connection::Connection(std::unique_ptr<State> state) : state_(std::move(state)) {}
Connection::~Connection() = default;

bool Connection::received_any() const noexcept {
  return state_->received_any;
}
bool Connection::reusable() const noexcept {
  return state_->reusable;
}

asio::awaitable<std::unique_ptr<Connection>> Connection::open(asio::any_io_executor executor,
                                                              std::shared_ptr<TlsContext> tls,
                                                              ConnectPlan plan,
                                                              HttpClientOptions options) {
  const auto deadline = std::chrono::steady_clock::now() + options.connect_timeout;
  const bool via_proxy = plan.proxy.has_value();
  const std::string& dial_host = via_proxy ? plan.proxy->host : plan.host;
  const std::uint16_t dial_port = via_proxy ? plan.proxy->port : plan.port;
  const std::string dialed = (via_proxy ? "proxy " : "") + host_port(dial_host, dial_port);

  auto endpoints = co_await resolve(executor, dial_host, dial_port, deadline, options);
  auto state = std::make_unique<State>();
  state->buffer.reserve(kFirstReadBytes);
  state->plan = plan;
  state->options = options;
  auto stream = std::make_unique<beast::tcp_stream>(executor);
  stream->expires_at(deadline);
  error_code ec;
  co_await stream->async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec == beast::error::timeout) {
    throw TransportError(Kind::timeout, "connecting to " + dialed + " timed out after " +
                                            millis(options.connect_timeout));
  }
  if (ec)
    throw TransportError(Kind::connect, "connecting to " + dialed + " failed: " + ec.message());
  stream->socket().set_option(tcp::no_delay(true), ec);

  if (via_proxy && plan.tls) co_await connect_through_proxy(*stream, state->buffer, plan);
  if (plan.tls) {
    state->secure =
        std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*stream), tls->context);
    beast::get_lowest_layer(*state->secure).expires_at(deadline);
    co_await handshake(*state->secure, plan, options);
    beast::get_lowest_layer(*state->secure).expires_never();
  } else {
    stream->expires_never();
    state->plain = std::move(stream);
  }
  co_return std::unique_ptr<Connection>(new Connection(std::move(state)));
}

asio::awaitable<HttpResponse> Connection::exchange(
    const WireRequest& request, const std::function<void(std::string_view)>* on_chunk) {
  if (state_->secure) co_return co_await exchange_on(*state_->secure, *state_, request, on_chunk);
  co_return co_await exchange_on(*state_->plain, *state_, request, on_chunk);
}

}  // namespace llm_caching::providers::detail

// llm-caching-fake-provider: a wire-compatible fake OpenAI / Anthropic / Gemini server for tests,
// demos and benchmarks. One coroutine per connection, keep-alive, optional TLS.
#include "core/text.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "fake_logic.hpp"
#include "providers/http_wire.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using llm_caching::fake::Provider;
using llm_caching::fake::Reply;
using llm_caching::fake::Request;

namespace {

struct Options {
  std::string host;
  std::uint16_t port = 0;
  std::string tls_cert;
  std::string tls_key;
  std::chrono::milliseconds delay{0};
};

constexpr auto kIdleTimeout = std::chrono::seconds(120);

Request to_request(const http::request<http::string_body>& message) {
  Request request;
  request.method = std::string(message.method_string());
  const std::string_view target = message.target();
  const auto question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) request.query = std::string(target.substr(question + 1));
  for (const auto& field : message) {
    request.headers.emplace_back(llm_caching::core::lowercase(field.name_string()),
                                 std::string(field.value()));
  }
  request.body = message.body();
  return request;
}

template <class Stream>
asio::awaitable<void> write_reply(Stream& stream, const Reply& reply, bool keep_alive,
                                  error_code& ec) {
  auto redirect = asio::redirect_error(asio::use_awaitable, ec);
  if (reply.fault == Reply::Fault::truncated) {
    // Announce more bytes than we send, then close: the client must notice the short body.
    std::string raw = "HTTP/1.1 " + std::to_string(reply.status) +
                      " OK\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(reply.body.size() * 2 + 16) + "\r\n\r\n" + reply.body;
    co_await asio::async_write(stream, asio::buffer(raw), redirect);
    co_return;
  }
  if (reply.streaming) {
    http::response<http::empty_body> head{static_cast<http::status>(reply.status), 11};
    for (const auto& [name, value] : reply.headers) head.insert(name, value);
    head.chunked(true);
    head.keep_alive(keep_alive);
    http::response_serializer<http::empty_body> serializer{head};
    co_await http::async_write_header(stream, serializer, redirect);
    for (const auto& event : reply.events) {
      if (ec) co_return;
      co_await asio::async_write(stream, http::make_chunk(asio::buffer(event)), redirect);
    }
    if (!ec) co_await asio::async_write(stream, http::make_chunk_last(), redirect);
    co_return;
  }
  // The head written as the gateway writes its own and sent with the body in one write, not
  // through Beast's serializer: that was a quarter of the fake's work per request, CPU that a
  // benchmark's gateway shares with it.
  const std::string head = llm_caching::providers::response_head(
      reply.status, http::obsolete_reason(static_cast<http::status>(reply.status)), reply.headers,
      reply.body.size(), keep_alive);
  const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head), asio::buffer(reply.body)};
  co_await asio::async_write(stream, buffers, redirect);
}

template <class Stream>
asio::awaitable<void> serve(Stream& stream, Provider& provider, const Options& options) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    error_code ec;
    beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    beast::get_lowest_layer(stream).expires_never();
    const auto& message = parser.get();
    Reply reply = provider.handle(to_request(message));
    if (const auto delay = reply.delay + options.delay; delay.count() > 0) {
      asio::steady_timer timer(co_await asio::this_coro::executor, delay);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (reply.fault == Reply::Fault::drop) co_return;
    if (reply.fault == Reply::Fault::reset) {  // SO_LINGER 0: the close sends RST, not FIN
      auto& socket = beast::get_lowest_layer(stream).socket();
      socket.set_option(asio::socket_base::linger(true, 0), ec);
      socket.close(ec);
      co_return;
    }
    const bool keep_alive = message.keep_alive() && reply.fault == Reply::Fault::none;
    co_await write_reply(stream, reply, keep_alive, ec);
    if (ec || !keep_alive) co_return;
  }
}

asio::awaitable<void> serve_plain(tcp::socket socket, Provider& provider, const Options& options) {
  beast::tcp_stream stream(std::move(socket));
  co_await serve(stream, provider, options);
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> serve_tls(tcp::socket socket, ssl::context& context, Provider& provider,
                                const Options& options) {
  beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), context);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
  error_code ec;
  co_await stream.async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;  // e.g. the client rejected our certificate: that is the test's point
  co_await serve(stream, provider, options);
  // No close_notify: closing the TCP side is enough for a test server and cannot hang.
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ec);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, ssl::context* tls, Provider& provider,
                                  const Options& options) {
  for (;;) {
    error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;
    provider.on_connection();
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (tls) {
      asio::co_spawn(acceptor.get_executor(), serve_tls(std::move(socket), *tls, provider, options),
                     asio::detached);
    } else {
      asio::co_spawn(acceptor.get_executor(), serve_plain(std::move(socket), provider, options),
                     asio::detached);
    }
  }
}

std::optional<Options> parse_args(int argc, char** argv) {
  Options options;
  bool listen_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    std::optional<std::string> value = next();
    if (!value) return std::nullopt;
    if (arg == "--listen") {
      const auto colon = value->rfind(':');
      if (colon == std::string::npos) return std::nullopt;
      options.host = value->substr(0, colon);
      if (options.host.size() > 1 && options.host.front() == '[') {
        options.host = options.host.substr(1, options.host.size() - 2);
      }
      unsigned port = 0;
      const auto digits = value->substr(colon + 1);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
      if (ec != std::errc() || end != digits.data() + digits.size() || port > 65535) {
        return std::nullopt;
      }
      options.port = static_cast<std::uint16_t>(port);
      listen_given = true;
    } else if (arg == "--tls-cert") {
      options.tls_cert = *value;
    } else if (arg == "--tls-key") {
      options.tls_key = *value;
    } else if (arg == "--delay-ms") {
      options.delay = std::chrono::milliseconds(std::stoll(*value));
    } else {
      return std::nullopt;
    }
  }
  if (!listen_given || options.tls_cert.empty() != options.tls_key.empty()) return std::nullopt;
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Options> options;
  try {
    options = parse_args(argc, argv);
  } catch (const std::exception&) {
  }
  if (!options) {
    std::cerr << "usage: llm-caching-fake-provider --listen HOST:PORT [--tls-cert FILE --tls-key "
                 "FILE] [--delay-ms N]\n";
    return 2;
  }
  try {
    asio::io_context io;
    std::optional<ssl::context> tls;
    if (!options->tls_cert.empty()) {
      tls.emplace(ssl::context::tls_server);
      tls->use_certificate_chain_file(options->tls_cert);
      tls->use_private_key_file(options->tls_key, ssl::context::pem);
    }
    const tcp::endpoint endpoint(asio::ip::make_address(options->host), options->port);
    tcp::acceptor acceptor(io, endpoint);  // sets SO_REUSEADDR
    Provider provider;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](error_code, int) { io.stop(); });
    asio::co_spawn(io, accept_loop(acceptor, tls ? &*tls : nullptr, provider, *options),
                   asio::detached);
    const bool v6 = options->host.find(':') != std::string::npos;
    std::cout << "listening on " << (v6 ? "[" + options->host + "]" : options->host) << ":"
              << acceptor.local_endpoint().port() << std::endl;  // endl flushes: tests wait on it
    io.run();
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "llm-caching-fake-provider: " << error.what() << "\n";
    return 1;
  }
}

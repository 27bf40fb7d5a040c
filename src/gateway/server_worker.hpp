// A worker of the gateway's server: its io_context, acceptor, sessions and what it does with a
// connection. Internal to the server (server*.cpp); Beast stays out of every other header.
#pragma once

#include "gateway/gateway.hpp"
#include "gateway/limits.hpp"
#include "gateway/server.hpp"
#include "gateway/worker_state.hpp"
#include "providers/http_client.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>

namespace llm_caching::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct Session {
  explicit Session(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  bool idle = true;  ///< waiting for a request: shutdown may close it at once
};
using RequestParser = http::request_parser<http::string_body>;

/// A connection over --max-connections: how long its head is waited for, and how many such
/// connections a worker answers at once (more are closed unanswered).
constexpr std::chrono::milliseconds kRefusalReadTime{500};
constexpr std::size_t kMostRefusing = 64;

/// The target of a head that may have failed part way: "/" (OpenAI's error shape) when the
/// request line was not read.
inline std::string target_of(const RequestParser& parser) {
  const std::string_view target = parser.get().target();
  return target.empty() ? std::string("/") : std::string(target);
}

struct Server::Worker {
  Worker(std::size_t index, const ServerOptions& options, Gateway& gateway, std::size_t body_budget)
      : index(index),
        options(options),
        gateway(gateway),
        bodies(body_budget),
        grace(io),
        client(io.get_executor(), options.upstream) {}

  const std::size_t index;  ///< its gauge in Metrics::open_connections
  const ServerOptions& options;
  Gateway& gateway;
  /// Request bodies in memory: this worker's share of --max-body-bytes-in-flight. A share per
  /// worker rather than one shared count: every request takes from it and gives back, and one
  /// counter for all workers bounced its cache line between their CPUs on every hit.
  ByteBudget bodies;
  asio::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  asio::steady_timer grace;
  providers::HttpClient client;
  WorkerState state{client};
  std::unordered_set<Session*> sessions;
  bool draining = false;
  std::thread thread;

  asio::awaitable<void> accept_loop(std::span<const std::unique_ptr<Worker>> workers);
  /// Accepts every connection waiting and hands each to its serving_worker, until `ec` says
  /// none is left (would_block) or worse.
  void accept_waiting(std::span<const std::unique_ptr<Worker>> workers, error_code& ec);
  asio::awaitable<void> serve(tcp::socket socket);
  asio::awaitable<void> serve_requests(Session& session);
  /// Answers one request with an error (in its route's provider format), logged and counted,
  /// and lets the connection close.
  /// (No struct argument: g++ 12 frees a braced temporary twice in a co_await expression.)
  asio::awaitable<void> refuse(Session& session, std::string_view target, int status,
                               Refusal reason, std::string message);
  /// A head that could not be read: 413, 431 or 400, or nothing when the client just left.
  asio::awaitable<void> refuse_unread_head(Session& session, const RequestParser& parser,
                                           const error_code& ec);
  /// Over --max-connections: reads the head for a moment (for the route's error format),
  /// answers 503 with Retry-After and closes.
  asio::awaitable<void> refuse_connection(tcp::socket socket);
  std::size_t refusing = 0;  ///< refuse_connection coroutines running
  void begin_shutdown();
};

}  // namespace llm_caching::gateway

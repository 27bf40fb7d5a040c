#include "gateway/server.hpp"

#include "core/thread_name.hpp"
#include "gateway/controls.hpp"
#include "providers/http_wire.hpp"
#include "providers/write_now.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <sys/socket.h>

#include <array>
#include <iterator>
#include <optional>
#include <span>
#include <thread>
#include <unordered_set>

namespace llm_caching::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::size_t kHeaderLimit = 64 * 1024;

struct Session {
  explicit Session(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  bool idle = true;  ///< waiting for a request: shutdown may close it at once
};

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// ResponseStream over a Beast TCP stream.
class BeastResponse final : public ResponseStream {
 public:
  BeastResponse(beast::tcp_stream& stream, bool request_keep_alive, const bool& draining,
                std::chrono::milliseconds write_timeout)
      : stream_(stream),
        request_keep_alive_(request_keep_alive),
        draining_(draining),
        write_timeout_(write_timeout) {}

  asio::awaitable<bool> send(OutgoingResponse response) override {
    if (broken_) co_return false;
    const std::string head = providers::response_head(
        response.status, http::obsolete_reason(static_cast<http::status>(response.status)),
        response.headers, response.body.size(), keep_alive());
    const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head),
                                                       asio::buffer(response.body)};
    error_code ec;
    co_await providers::write_now(stream_, buffers, write_timeout_, ec);
    co_return finish_write(ec);
  }

  asio::awaitable<bool> send_prepared(std::shared_ptr<const PreparedResponse> prepared) override {
    if (broken_) co_return false;
    static constexpr std::string_view kEndKeepAlive = "\r\n";
    static constexpr std::string_view kEndClose = "connection: close\r\n\r\n";
    const std::array<asio::const_buffer, 3> buffers = {
        asio::buffer(prepared->head), asio::buffer(keep_alive() ? kEndKeepAlive : kEndClose),
        asio::buffer(prepared->response.body)};
    // Not write_now, unlike send: under a saturating hit load (64 connections, ~85 k/s) writing
    // at once gave ~5 % more hits per second but raised their p99 from 4.5 to 5.9 ms (medians
    // of 8 interleaved rounds, docs/PERFORMANCE.md), and the p99 is the target that binds.
    error_code ec;
    stream_.expires_after(write_timeout_);
    co_await asio::async_write(stream_, buffers, asio::redirect_error(asio::use_awaitable, ec));
    co_return finish_write(ec);
  }

  asio::awaitable<bool> begin_chunked(int status, Headers headers) override {
    if (broken_) co_return false;
    head_.emplace(static_cast<http::status>(status), 11);
    for (auto& [name, value] : headers) head_->set(name, value);
    head_->chunked(true);
    head_->keep_alive(keep_alive());
    serializer_.emplace(*head_);
    error_code ec;
    stream_.expires_after(write_timeout_);
    co_await http::async_write_header(stream_, *serializer_,
                                      asio::redirect_error(asio::use_awaitable, ec));
    co_return finish_write(ec);
  }

  asio::awaitable<bool> write_chunk(std::string_view data) override {
    if (broken_ || data.empty()) co_return !broken_;
    error_code ec;
    stream_.expires_after(write_timeout_);
    co_await asio::async_write(stream_, http::make_chunk(asio::buffer(data)),
                               asio::redirect_error(asio::use_awaitable, ec));
    co_return finish_write(ec);
  }

  asio::awaitable<bool> end_chunked(Headers trailers) override {
    if (broken_) co_return false;
    http::fields fields;
    for (auto& [name, value] : trailers) fields.set(name, value);
    error_code ec;
    stream_.expires_after(write_timeout_);
    co_await asio::async_write(stream_, http::make_chunk_last(fields),
                               asio::redirect_error(asio::use_awaitable, ec));
    co_return finish_write(ec);
  }

  void abort() override { broken_ = true; }

  /// Whether the connection can carry another request.
  bool reusable() const noexcept { return !broken_ && keep_alive_sent_; }

 private:
  bool keep_alive() {
    keep_alive_sent_ = request_keep_alive_ && !draining_;
    return keep_alive_sent_;
  }
  bool finish_write(const error_code& ec) {
    stream_.expires_never();
    if (ec) broken_ = true;
    return !broken_;
  }

  beast::tcp_stream& stream_;
  const bool request_keep_alive_;
  const bool& draining_;
  const std::chrono::milliseconds write_timeout_;
  bool broken_ = false;
  bool keep_alive_sent_ = true;
  std::optional<http::response<http::empty_body>> head_;
  std::optional<http::response_serializer<http::empty_body>> serializer_;
};

/// Reads the rest of a request whose head `parser` has. The body has usually come with the head:
/// it is parsed from `buffer` at once, without the trip through the event loop that a finished
/// async_read would take (providers/write_now.hpp says why that matters).
asio::awaitable<void> read_body(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                http::request_parser<http::string_body>& parser, error_code& ec) {
  parser.eager(true);
  if (!parser.is_done() && buffer.size() > 0) {
    buffer.consume(parser.put(buffer.data(), ec));
    if (ec == http::error::need_more) ec = {};
    if (ec) co_return;
  }
  if (parser.is_done()) co_return;
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
}

IncomingRequest to_incoming(http::request<http::string_body>&& message) {
  IncomingRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  request.headers.reserve(static_cast<std::size_t>(std::distance(message.begin(), message.end())));
  for (const auto& field : message) {
    request.headers.emplace_back(lowercase(field.name_string()), std::string(field.value()));
  }
  request.body = std::move(message.body());
  return request;
}

}  // namespace

struct Server::Worker {
  Worker(std::size_t index, const ServerOptions& options, Gateway& gateway)
      : index(index),
        options(options),
        gateway(gateway),
        grace(io),
        client(io.get_executor(), options.upstream) {}

  const std::size_t index;  ///< its gauge in Metrics::open_connections
  const ServerOptions& options;
  Gateway& gateway;
  asio::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  asio::steady_timer grace;
  providers::HttpClient client;
  std::unordered_set<Session*> sessions;
  bool draining = false;
  std::thread thread;

  asio::awaitable<void> accept_loop(std::span<const std::unique_ptr<Worker>> workers);
  /// Accepts every connection waiting and hands each to its serving_worker, until `ec` says
  /// none is left (would_block) or worse.
  void accept_waiting(std::span<const std::unique_ptr<Worker>> workers, error_code& ec);
  asio::awaitable<void> serve(tcp::socket socket);
  asio::awaitable<void> serve_requests(Session& session);
  asio::awaitable<void> refuse(Session& session, std::string_view target, int status,
                               std::string_view message);
  void begin_shutdown();
};

namespace {

/// How far the worker a connection's CPU points to may get ahead of the least busy one.
constexpr std::int64_t kGroupingSlack = 8;

/// The CPU that took the connection's packets (for a local client, the CPU its thread ran on),
/// or -1 when the kernel does not say.
int incoming_cpu(tcp::socket& socket) {
  int cpu = -1;
  socklen_t size = sizeof cpu;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_INCOMING_CPU, &cpu, &size) != 0) {
    return -1;
  }
  return cpu;
}

/// The worker that serves a connection which came in on `cpu`: the same worker for every
/// connection from one CPU, so that a client thread's connections share a worker. Why: with
/// each of wrk's two threads talking to both workers, hits at 64 connections had a p99 of
/// 3.2-7.7 ms; with each talking to one, 1.3-2.5 ms, at the same or higher throughput
/// (docs/PERFORMANCE.md, "Connections grouped by CPU"). But when that worker has more than twice
/// the connections of the least busy one (plus kGroupingSlack), or the CPU is unknown, the least
/// busy one serves it: connections that all come in on one CPU must not all land on one thread.
Server::Worker& serving_worker(std::span<const std::unique_ptr<Server::Worker>> workers,
                               const Metrics& metrics, int cpu) {
  Server::Worker* fewest = workers.front().get();
  for (const auto& candidate : workers) {
    if (metrics.open_connections(candidate->index) < metrics.open_connections(fewest->index)) {
      fewest = candidate.get();
    }
  }
  if (cpu < 0) return *fewest;
  Server::Worker& grouped = *workers[static_cast<std::size_t>(cpu) % workers.size()];
  const std::int64_t limit = 2 * metrics.open_connections(fewest->index) + kGroupingSlack;
  return metrics.open_connections(grouped.index) < limit ? grouped : *fewest;
}

}  // namespace

asio::awaitable<void> Server::Worker::accept_loop(
    std::span<const std::unique_ptr<Worker>> workers) {
  while (!draining) {
    error_code ec;
    accept_waiting(workers, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      co_await acceptor->async_wait(tcp::acceptor::wait_read,
                                    asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted) co_return;
      continue;  // the accepts tell any other error
    }
    // Out of file descriptors and the like: back off instead of spinning.
    asio::steady_timer pause(io, std::chrono::milliseconds(50));
    co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void Server::Worker::accept_waiting(std::span<const std::unique_ptr<Worker>> workers,
                                    error_code& ec) {
  for (;;) {
    tcp::socket socket = acceptor->accept(io, ec);        // the acceptor is non-blocking
    if (ec == asio::error::connection_aborted) continue;  // that client left; others may wait
    if (ec) return;
    Worker* target = &serving_worker(workers, gateway.metrics(), incoming_cpu(socket));
    if (target != this) {
      // The descriptor moves to the other worker's io_context (and its epoll set).
      error_code move_ec;
      const tcp::endpoint local = socket.local_endpoint(move_ec);
      const auto fd = move_ec ? -1 : socket.release(move_ec);
      if (move_ec) {
        target = this;  // still ours, if release failed; a closed socket ends at once
      } else {
        tcp::socket moved(target->io);
        moved.assign(local.protocol(), fd, move_ec);
        if (move_ec) continue;  // `moved` closed the descriptor: the client sees a reset
        socket = std::move(moved);
      }
    }
    gateway.metrics().connection_opened(target->index);
    asio::co_spawn(target->io, target->serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> Server::Worker::serve(tcp::socket socket) {
  error_code nodelay_ec;
  socket.set_option(tcp::no_delay(true), nodelay_ec);
  Session session(std::move(socket));
  sessions.insert(&session);
  try {
    co_await serve_requests(session);
  } catch (const std::exception& e) {
    spdlog::error("gateway: connection ended by an unexpected error: {}", e.what());
  }
  error_code ignored;
  session.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  // Lingering close: read (and drop) what the client is still sending for a moment, so that
  // closing with unread bytes does not reset the connection and destroy our last answer (a 413
  // sent before the body was read) in the client's receive buffer.
  if (!draining) {
    std::array<char, 16384> scratch;
    std::size_t drained = 0;
    session.stream.expires_after(std::chrono::milliseconds(500));
    while (drained < (std::size_t{4} << 20)) {
      error_code ec;
      drained += co_await session.stream.async_read_some(
          asio::buffer(scratch), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
  }
  session.stream.close();
  sessions.erase(&session);
  gateway.metrics().connection_closed(index);
  if (draining && sessions.empty()) grace.cancel();
}

asio::awaitable<void> Server::Worker::refuse(Session& session, std::string_view target, int status,
                                             std::string_view message) {
  const Route route = match_route("POST", target);
  static const bool kNotDraining = false;
  BeastResponse out(session.stream, false, kNotDraining, options.write_timeout);
  OutgoingResponse response{status, {}, error_body(route.provider, status, message)};
  response.headers.emplace_back("content-type", "application/json");
  co_await out.send(std::move(response));
}

asio::awaitable<void> Server::Worker::serve_requests(Session& session) {
  beast::flat_buffer buffer;
  buffer.reserve(providers::kFirstReadBytes);
  while (!draining) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(options.body_limit);
    error_code ec;
    session.idle = true;
    session.stream.expires_after(options.request_timeout);
    co_await http::async_read_header(session.stream, buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
    session.idle = false;
    if (ec == http::error::body_limit) {  // a Content-Length above the limit: refused unread
      co_await refuse(
          session, std::string(parser.get().target()), 413,
          "request body too large (limit " + std::to_string(options.body_limit) + " bytes)");
      co_return;
    }
    if (ec == http::error::header_limit) {
      co_await refuse(session, "/", 431, "request headers too large");
      co_return;
    }
    if (ec) {
      if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
          ec != asio::error::operation_aborted && ec != asio::error::eof &&
          ec != asio::error::connection_reset) {
        co_await refuse(session, "/", 400, "malformed HTTP request");
      }
      co_return;
    }
    const auto& head = parser.get();
    const std::string target(head.target());
    if (const auto length = parser.content_length(); length && *length > options.body_limit) {
      co_await refuse(
          session, target, 413,
          "request body too large (limit " + std::to_string(options.body_limit) + " bytes)");
      co_return;
    }
    if (beast::iequals(head[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(session.stream, asio::buffer(kContinue),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
    co_await read_body(session.stream, buffer, parser, ec);
    if (ec == http::error::body_limit) {
      co_await refuse(
          session, target, 413,
          "request body too large (limit " + std::to_string(options.body_limit) + " bytes)");
      co_return;
    }
    if (ec) {
      if (ec != beast::error::timeout && ec != asio::error::operation_aborted &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        co_await refuse(session, target, 400, "malformed HTTP request body");
      }
      co_return;
    }
    session.stream.expires_never();
    const bool keep_alive = parser.get().keep_alive();
    const IncomingRequest request = to_incoming(parser.release());
    BeastResponse out(session.stream, keep_alive, draining, options.write_timeout);
    co_await gateway.handle(client, request, out);
    if (!out.reusable()) co_return;
  }
}

void Server::Worker::begin_shutdown() {
  if (draining) return;
  draining = true;
  error_code ignored;
  if (acceptor) acceptor->close(ignored);
  for (Session* session : sessions) {
    if (session->idle) session->stream.socket().cancel(ignored);
  }
  if (sessions.empty()) return;
  grace.expires_after(options.shutdown_grace);
  grace.async_wait([this](error_code ec) {
    if (ec) return;  // every connection finished in time
    spdlog::warn("gateway: {} connection(s) still busy after the shutdown grace period; closing",
                 sessions.size());
    io.stop();
  });
}

Server::Server(ServerOptions options, std::shared_ptr<Gateway> gateway)
    : options_(std::move(options)), gateway_(std::move(gateway)) {}

Server::~Server() {
  shutdown();
  wait();
}

std::uint16_t Server::start() {
  unsigned threads = options_.threads ? options_.threads : std::thread::hardware_concurrency();
  if (threads == 0) threads = 1;
  const tcp::endpoint wanted(asio::ip::make_address(options_.host), options_.port);
  gateway_->metrics().set_workers(threads);
  for (unsigned i = 0; i < threads; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, options_, *gateway_));
  }
  std::uint16_t port = options_.port;
  for (auto& worker : workers_) {
    // Every worker listens on the same port and accepts what the kernel gives it, then keeps
    // the connection or hands it to the worker that serves its CPU (serving_worker).
    tcp::acceptor& acceptor = worker->acceptor.emplace(worker->io);
    const tcp::endpoint endpoint(wanted.address(), port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
    acceptor.non_blocking(true);
    // Asks the kernel (Linux 6.1 and later) to give this acceptor the connections that come in
    // on the CPU whose connections serving_worker sends to this worker, so that few move.
    const int cpu = static_cast<int>(worker->index);
    ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof cpu);
    port = acceptor.local_endpoint().port();
    asio::co_spawn(worker->io, worker->accept_loop(workers_), asio::detached);
  }
  port_ = port;
  for (auto& worker : workers_) {
    Worker& w = *worker;
    w.thread = std::thread([&w] {
      core::name_this_thread("llmc-worker");
      try {
        w.io.run();
      } catch (const std::exception& e) {
        spdlog::critical("gateway: worker stopped by an unexpected error: {}", e.what());
      }
    });
  }
  return port_;
}

void Server::shutdown() {
  std::call_once(shutdown_once_, [this] {
    for (auto& worker : workers_) {
      Worker& w = *worker;
      asio::post(w.io, [&w] { w.begin_shutdown(); });
    }
  });
}

void Server::wait() {
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
}

}  // namespace llm_caching::gateway

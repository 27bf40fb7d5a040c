#include "gateway/server.hpp"

#include "core/thread_name.hpp"
#include "gateway/beast_response.hpp"
#include "gateway/controls.hpp"
#include "gateway/server_worker.hpp"
#include "providers/http_wire.hpp"

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
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <sys/socket.h>

#include <array>
#include <iterator>
#include <optional>
#include <span>
#include <thread>
#include <unordered_set>

namespace llm_caching::gateway {

namespace {

/// Reads the rest of a request whose head `parser` has, holding the body's memory in `charge`
/// as it grows; `over_budget` when the shared budget has no room for it. The body has usually
/// come with the head: it is parsed from `buffer` at once, without the trip through the event
/// loop that a finished async_read would take (providers/write_now.hpp says why that matters).
asio::awaitable<void> read_body(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                RequestParser& parser, ByteCharge& charge, bool& over_budget,
                                error_code& ec) {
  parser.eager(true);
  if (!parser.is_done() && buffer.size() > 0) {
    buffer.consume(parser.put(buffer.data(), ec));
    if (ec == http::error::need_more) ec = {};
    if (ec) co_return;
  }
  // A Content-Length body is reserved whole when its head is parsed; a chunked one grows. The
  // bytes inside an empty string's own object are not the budget's.
  static const std::size_t kInlineBytes = std::string().capacity();
  const auto heap_bytes = [&] {
    const std::size_t capacity = parser.get().body().capacity();
    return capacity > kInlineBytes ? capacity : 0;
  };
  while (!(over_budget = !charge.hold(heap_bytes())) && !parser.is_done()) {
    co_await http::async_read_some(stream, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

/// Reads a request head into `parser`: first waits up to `idle` for its first byte (a
/// keep-alive connection between requests), then up to `head_time` for the rest of the head. A
/// timeout in the second wait is `head_late` (a slowloris client), in the first a plain timeout.
asio::awaitable<void> read_head(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                RequestParser& parser, std::chrono::milliseconds idle,
                                std::chrono::milliseconds head_time, bool& head_late,
                                error_code& ec) {
  head_late = false;
  if (buffer.size() == 0) {  // else a pipelined request has begun already
    stream.expires_after(idle);
    const std::size_t n = co_await stream.async_read_some(
        buffer.prepare(providers::kFirstReadBytes), asio::redirect_error(asio::use_awaitable, ec));
    buffer.commit(n);
    if (ec) co_return;
  }
  // A head that came whole (nearly every one) is parsed at once, without arming a timer.
  buffer.consume(parser.put(buffer.data(), ec));
  if (ec == http::error::need_more) ec = {};
  if (ec || parser.is_header_done()) co_return;
  // Not the stream's own timeout, which closes the socket: the client is owed its 408. A timer
  // cancels the read instead; its state is shared, as its handler may run after this returns.
  struct Deadline {
    bool fired = false;
    bool read_done = false;
  };
  const auto deadline = std::make_shared<Deadline>();
  asio::steady_timer timer(stream.get_executor(), head_time);
  timer.async_wait([deadline, &socket = stream.socket()](const error_code& timer_ec) {
    if (timer_ec || deadline->read_done) return;
    deadline->fired = true;
    error_code ignored;
    socket.cancel(ignored);  // the read ends with operation_aborted; the socket stays open
  });
  stream.expires_never();
  co_await http::async_read_header(stream, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
  deadline->read_done = true;
  timer.cancel();
  head_late = deadline->fired && ec == asio::error::operation_aborted;
}

}  // namespace

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
/// each of wrk's two threads talking to both workers the hit p99 at 64 connections was about
/// three times what it is with each talking to one, at the same or higher throughput
/// (docs/perf-log/2026-11-journal.md, "Connections grouped by CPU"). But when that worker has more
/// than twice the connections of the least busy one (plus kGroupingSlack), or the CPU is unknown,
/// the least busy one serves it: connections that all come in on one CPU must not all land on one
/// thread.
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
    if (gateway.metrics().open_connections_total() >=
        static_cast<std::int64_t>(options.max_connections)) {
      // Answered with a 503 while few are being refused; beyond that, closed at once.
      if (refusing < kMostRefusing) {
        asio::co_spawn(io, refuse_connection(std::move(socket)), asio::detached);
      } else {
        gateway.metrics().refused(Refusal::connections);
      }
      continue;
    }
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

asio::awaitable<void> Server::Worker::serve_requests(Session& session) {
  beast::flat_buffer buffer;
  buffer.reserve(providers::kFirstReadBytes);
  const HeadLimits limits{options.max_header_fields, options.body_limit, options.max_request_line};
  while (!draining) {
    RequestParser parser;
    parser.header_limit(options.header_limit);
    parser.body_limit(options.body_limit);
    error_code ec;
    bool head_late = false;
    session.idle = true;
    co_await read_head(session.stream, buffer, parser, options.request_timeout,
                       options.header_timeout, head_late, ec);
    session.idle = false;
    if (head_late && !draining) {
      co_await refuse(session, target_of(parser), 408, Refusal::header_timeout,
                      "request head not complete within " +
                          std::to_string(options.header_timeout.count()) + " ms of its first byte");
      co_return;
    }
    if (ec) {
      co_await refuse_unread_head(session, parser, ec);
      co_return;
    }
    session.stream.expires_after(options.request_timeout);  // for the body
    const std::string target(parser.get().target());
    std::optional<std::uint64_t> content_length;
    if (const auto length = parser.content_length()) content_length = *length;
    if (auto refusal = check_head(parser.get(), content_length, limits)) {
      co_await refuse(session, target, refusal->status, refusal->reason,
                      std::move(refusal->message));
      co_return;
    }
    // Taken now: trailers that a chunked body brings are not headers (head_of).
    IncomingRequest request = head_of(parser.get());
    const bool keep_alive = parser.get().keep_alive();
    if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(session.stream, asio::buffer(kContinue),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
    ByteCharge charge(bodies);  // held until the request is answered: its body lives that long
    bool over_budget = false;
    co_await read_body(session.stream, buffer, parser, charge, over_budget, ec);
    if (over_budget) {
      co_await refuse(session, target, 503, Refusal::body_budget,
                      "the gateway holds too many request bodies at once (limit " +
                          std::to_string(options.max_body_bytes_in_flight) +
                          " bytes in all); retry shortly");
      co_return;
    }
    if (ec) {
      if (ec == http::error::body_limit) {
        co_await refuse(
            session, target, 413, Refusal::body_too_large,
            "request body too large (limit " + std::to_string(options.body_limit) + " bytes)");
      } else if (ec != beast::error::timeout && ec != asio::error::operation_aborted &&
                 ec != http::error::end_of_stream && ec != http::error::partial_message) {
        co_await refuse(session, target, 400, Refusal::framing, "malformed HTTP request body");
      }
      co_return;
    }
    session.stream.expires_never();
    request.body = std::move(parser.get().body());
    BeastResponse out(session.stream, keep_alive, draining, options.write_timeout);
    co_await gateway.handle(state, request, out);
    if (!out.reusable()) co_return;
  }
}

void Server::Worker::begin_shutdown() {
  if (draining) return;
  draining = true;
  // Idle upstream connections (and their timer) would keep the loop running after the last
  // session; a miss still in flight closes its connection when it ends.
  client.close_idle();
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
  if (options_.max_connections == 0) options_.max_connections = default_max_connections();
  unsigned threads = options_.threads ? options_.threads : std::thread::hardware_concurrency();
  if (threads == 0) threads = 1;
  const tcp::endpoint wanted(asio::ip::make_address(options_.host), options_.port);
  gateway_->metrics().set_workers(threads);
  for (unsigned i = 0; i < threads; ++i) {
    const std::size_t share = std::max<std::size_t>(options_.max_body_bytes_in_flight / threads, 1);
    workers_.push_back(std::make_unique<Worker>(i, options_, *gateway_, share));
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

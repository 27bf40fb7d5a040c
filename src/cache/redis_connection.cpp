#include "cache/redis_connection.hpp"
#include "cache/redis_session.hpp"

#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace llm_caching::cache {
namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

/// Boost's system_error::what() appends the source location; users need the reason only.
std::string describe_error(const std::exception& e) {
  if (const auto* system = dynamic_cast<const boost::system::system_error*>(&e)) {
    return system->code().message();
  }
  return e.what();
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

/// The ASKING sent ahead of an ASK-redirected command: its OK (or failure) goes nowhere.
struct DroppedReply final : PendingCommand {
  void complete(std::exception_ptr, RedisReply) override {}
};

}  // namespace

std::string describe_endpoint(const RedisEndpoint& endpoint) {
  return endpoint.host.find(':') != std::string::npos
             ? fmt::format("[{}]:{}", endpoint.host, endpoint.port)
             : fmt::format("{}:{}", endpoint.host, endpoint.port);
}

bool same_endpoint(const RedisEndpoint& a, const RedisEndpoint& b) {
  return a.host == b.host && a.port == b.port;
}

RedisConnection::RedisConnection(asio::any_io_executor executor, asio::ssl::context* tls,
                                 bool verify_peer)
    : executor_(std::move(executor)),
      tls_context_(tls),
      verify_peer_(verify_peer),
      resolver_(executor_),
      plain_(executor_),
      watchdog_(executor_),
      read_buffer_(kReadChunk) {
  if (tls_context_ != nullptr) {
    tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket>>(executor_, *tls_context_);
  }
}

RedisConnection::~RedisConnection() = default;

asio::ip::tcp::socket& RedisConnection::socket() noexcept {
  return tls_ ? tls_->next_layer() : plain_;
}

void RedisConnection::abort_io() noexcept {
  boost::system::error_code ignored;
  resolver_.cancel();
  socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket().close(ignored);
  watchdog_.cancel();
}

asio::awaitable<void> RedisConnection::write_all(const std::string& bytes) {
  if (tls_) {
    co_await asio::async_write(*tls_, asio::buffer(bytes), asio::use_awaitable);
  } else {
    co_await asio::async_write(plain_, asio::buffer(bytes), asio::use_awaitable);
  }
}

asio::awaitable<std::size_t> RedisConnection::read_some() {
  auto buffer = asio::buffer(read_buffer_);
  // Not a ?: with a co_await in each branch: g++ 12 miscompiles that (it ran the TLS branch).
  if (tls_) co_return co_await tls_->async_read_some(buffer, asio::use_awaitable);
  co_return co_await plain_.async_read_some(buffer, asio::use_awaitable);
}

asio::awaitable<std::vector<RedisReply>> RedisConnection::open(const RedisEndpoint& endpoint,
                                                               std::vector<RedisCommand> setup,
                                                               std::chrono::milliseconds timeout) {
  peer_ = describe_endpoint(endpoint);
  auto self = shared_from_this();
  // The deadline closes the socket, which makes whatever step is pending fail at once.
  auto expired = std::make_shared<bool>(false);
  asio::steady_timer deadline(executor_);
  deadline.expires_after(timeout);
  deadline.async_wait([self, expired](boost::system::error_code ec) {
    if (ec) return;
    *expired = true;
    self->abort_io();
  });
  std::string step = "connect to";
  try {
    const auto endpoints = co_await resolver_.async_resolve(
        endpoint.host, std::to_string(endpoint.port), asio::use_awaitable);
    co_await asio::async_connect(socket(), endpoints, asio::use_awaitable);
    socket().set_option(asio::ip::tcp::no_delay(true));
    if (tls_) {
      step = "complete the TLS handshake with";
      if (verify_peer_) tls_->set_verify_callback(asio::ssl::host_name_verification(endpoint.host));
      if (!is_ip_literal(endpoint.host)) {
        SSL_set_tlsext_host_name(tls_->native_handle(), endpoint.host.c_str());
      }
      co_await tls_->async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
    }
    step = "set up the session with";
    std::string request;
    for (const auto& command : setup) append_redis_command(request, command);
    if (!request.empty()) co_await write_all(request);
    std::vector<RedisReply> replies;
    while (replies.size() < setup.size()) {
      const std::size_t n = co_await read_some();
      reader_.feed(read_buffer_.data(), n);
      while (auto reply = reader_.next()) replies.push_back(std::move(*reply));
    }
    deadline.cancel();
    co_return replies;
  } catch (const std::exception& e) {
    abort_io();
    const std::string reason =
        *expired ? fmt::format("no answer within {} ms", timeout.count()) : describe_error(e);
    throw CacheError(fmt::format("cannot {} Redis at {}: {}", step, peer_, reason));
  }
}

void RedisConnection::start(Events events, std::chrono::milliseconds command_timeout, Watch watch,
                            std::shared_ptr<std::atomic<std::int64_t>> deadline_sink) {
  events_ = std::move(events);
  deadline_sink_ = std::move(deadline_sink);
  command_timeout_ = command_timeout;
  watch_ = watch;
  started_ = true;
  if (watch_ == Watch::always) start_reading();
}

void RedisConnection::start_reading() {
  reading_ = true;
  auto on_read = [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
    self->on_read(ec, n);
  };
  auto buffer = asio::buffer(read_buffer_);
  if (tls_) {
    tls_->async_read_some(buffer, std::move(on_read));
  } else {
    plain_.async_read_some(buffer, std::move(on_read));
  }
}

void RedisConnection::on_read(boost::system::error_code ec, std::size_t size) {
  reading_ = false;
  if (dropped_) return;
  try {
    if (ec) throw boost::system::system_error(ec);
    reader_.feed(read_buffer_.data(), size);
    while (auto reply = reader_.next()) {
      if (in_flight_.empty()) throw std::runtime_error("a reply arrived that nobody asked for");
      PendingPtr command = std::move(in_flight_.front());
      in_flight_.pop_front();
      publish_deadline();
      events_.on_reply(std::move(command), std::move(*reply));
      if (dropped_) return;  // on_reply may drop every connection (READONLY)
    }
  } catch (const std::exception& e) {
    drop(fmt::format("connection to Redis at {} lost: {}", peer_, describe_error(e)));
    return;
  }
  if (!reading_ && (watch_ == Watch::always || !in_flight_.empty())) start_reading();
}

void RedisConnection::submit(PendingPtr command) {
  command->deadline = std::chrono::steady_clock::now() + command_timeout_;
  if (command->asking) {
    auto asking = std::make_unique<DroppedReply>();
    asking->args = {"ASKING"};
    asking->attempts = 1;  // never sent again alone: its command carries its own ASKING
    asking->deadline = command->deadline;
    append_redis_command(outgoing_, asking->args);
    in_flight_.push_back(std::move(asking));
  }
  append_redis_command(outgoing_, command->args);
  in_flight_.push_back(std::move(command));
  if (watch_ == Watch::always) {
    arm_watchdog();
  } else if (in_flight_.size() == 1) {
    publish_deadline();
  }
  if (!writing_in_progress_) flush();
  if (!reading_ && !dropped_) start_reading();
}

void RedisConnection::flush() {
  writing_in_progress_ = true;
  writing_.swap(outgoing_);
  outgoing_.clear();
  auto on_written = [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
    self->writing_in_progress_ = false;
    if (self->dropped_) return;
    if (ec) {
      self->drop(fmt::format("connection to Redis at {} lost: {}", self->peer_, ec.message()));
      return;
    }
    self->writing_.clear();
    if (!self->outgoing_.empty()) self->flush();
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(writing_), std::move(on_written));
  } else {
    asio::async_write(plain_, asio::buffer(writing_), std::move(on_written));
  }
}

std::string RedisConnection::timeout_reason() const {
  return fmt::format("Redis at {} did not answer within {} ms", peer_, command_timeout_.count());
}

/// One timer per connection, not per command: it wakes at the oldest command's deadline (replies
/// come in order, so the front is the oldest) and drops the connection if that one is late.
void RedisConnection::arm_watchdog() {
  if (watchdog_armed_ || in_flight_.empty() || dropped_) return;
  watchdog_armed_ = true;
  watchdog_.expires_at(in_flight_.front()->deadline);
  watchdog_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->watchdog_armed_ = false;
    if (ec || self->dropped_ || self->in_flight_.empty()) return;
    if (self->in_flight_.front()->deadline <= std::chrono::steady_clock::now()) {
      self->drop(self->timeout_reason(), false);
      return;
    }
    self->arm_watchdog();
  });
}

void RedisConnection::publish_deadline() noexcept {
  if (!deadline_sink_) return;
  deadline_sink_->store(
      in_flight_.empty() ? 0 : in_flight_.front()->deadline.time_since_epoch().count(),
      std::memory_order_relaxed);
}

void RedisConnection::expire_if_overdue() {
  if (dropped_ || in_flight_.empty()) return;
  if (in_flight_.front()->deadline <= std::chrono::steady_clock::now()) {
    drop(timeout_reason(), false);
  }
}

void RedisConnection::drop(const std::string& reason, bool retryable) {
  if (dropped_) return;
  dropped_ = true;
  abort_io();
  std::deque<PendingPtr> orphans;
  orphans.swap(in_flight_);
  if (deadline_sink_) deadline_sink_->store(0, std::memory_order_relaxed);
  if (started_ && events_.on_dropped) {
    events_.on_dropped(*this, std::move(orphans), reason, retryable);
  } else {
    for (auto& command : orphans) fail_command(*command, reason);
  }
}

}  // namespace llm_caching::cache

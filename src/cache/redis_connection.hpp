// One pipelined RESP connection (TCP or TLS). Internal to the Redis client TUs: it pulls in Asio's
// socket and SSL headers, so nothing else includes it. It lives on one executor: the client's own
// I/O thread (a pool connection) or a strand of a caller's io_context (a lane, see
// redis_client.cpp). Every member function except oldest_deadline() runs on that executor; nothing
// here is locked.
#pragma once

#include "cache/redis_protocol.hpp"
#include "llm_caching/cache_options.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace llm_caching::cache {

namespace asio = boost::asio;

/// A command on its way: the connection sends `args` and hands the reply (or failure) back.
struct PendingCommand {
  virtual ~PendingCommand() = default;
  /// Delivers the outcome to whoever waits (posted to its own executor). Called exactly once
  /// (this or resume()).
  virtual void complete(std::exception_ptr error, RedisReply reply) = 0;
  /// Delivers a reply, resuming the waiter at once when this thread already runs its executor
  /// (a lane's reply on the caller's own io_context): saves a trip through the queue.
  virtual void resume(RedisReply reply) { complete(nullptr, std::move(reply)); }
  RedisCommand args;
  std::chrono::steady_clock::time_point deadline{};
  int attempts = 0;  ///< resubmissions after a lost connection or READONLY
  /// Redis Cluster's ASK redirect: ASKING goes just before the command, on the same connection
  /// (its own reply is dropped), so the node that imports the slot serves this one command.
  bool asking = false;
};
using PendingPtr = std::unique_ptr<PendingCommand>;

struct RedisCredentials {
  std::string username;
  std::string password;
};

/// "host:port", or "[v6]:port" for an IPv6 host: for messages.
std::string describe_endpoint(const RedisEndpoint& endpoint);
bool same_endpoint(const RedisEndpoint& a, const RedisEndpoint& b);

/// Builds the TLS context for `rediss://` (CA, client certificate, verification mode). Throws
/// ConfigurationError naming the file that cannot be loaded.
std::unique_ptr<asio::ssl::context> make_redis_tls_context(const RedisTlsOptions& tls);

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  /// What the connection reports to its pool.
  struct Events {
    std::function<void(PendingPtr, RedisReply)> on_reply;
    /// The connection is unusable; `orphans` are the commands sent but not answered.
    /// `retryable`: lost (the command may be sent again elsewhere), not timed out.
    std::function<void(RedisConnection&, std::deque<PendingPtr> orphans, const std::string& reason,
                       bool retryable)>
        on_dropped;
  };

  /// How a started connection watches its socket and its deadlines.
  enum class Watch {
    /// Always reading (a lost server is noticed while idle) and an own timer for the command
    /// timeout: for the client's I/O thread, where outstanding work costs nothing.
    always,
    /// Reading only while replies are due and no timer: an idle connection holds no outstanding
    /// work, so a caller's run-to-completion io_context can return. Deadlines are published in
    /// oldest_deadline() for someone else to check (expire_if_overdue()).
    while_busy,
  };

  /// `tls` may be null (plain TCP); it must outlive the connection.
  RedisConnection(asio::any_io_executor executor, asio::ssl::context* tls, bool verify_peer);
  ~RedisConnection();

  /// Connects, does the TLS handshake, sends `setup` pipelined (AUTH, SELECT, ...) and returns
  /// their replies, all within `timeout`. Throws CacheError naming host:port.
  asio::awaitable<std::vector<RedisReply>> open(const RedisEndpoint& endpoint,
                                                std::vector<RedisCommand> setup,
                                                std::chrono::milliseconds timeout);
  /// Switches to pipelined mode: commands are then sent with submit().
  /// Watch::while_busy: `deadline_sink` receives the oldest unanswered command's deadline
  /// (steady_clock ticks; 0 when none) for a watcher on another thread.
  void start(Events events, std::chrono::milliseconds command_timeout, Watch watch,
             std::shared_ptr<std::atomic<std::int64_t>> deadline_sink = nullptr);
  void submit(PendingPtr command);
  /// Drops the connection (not retryable) when its oldest command is past its deadline.
  void expire_if_overdue();
  /// Closes the socket; in-flight commands go to on_dropped. Idempotent.
  void drop(const std::string& reason, bool retryable = true);

  bool usable() const noexcept { return started_ && !dropped_; }
  std::size_t in_flight() const noexcept { return in_flight_.size(); }
  const std::string& peer() const noexcept { return peer_; }

 private:
  asio::ip::tcp::socket& socket() noexcept;
  void abort_io() noexcept;
  asio::awaitable<void> write_all(const std::string& bytes);
  asio::awaitable<std::size_t> read_some();
  void start_reading();
  void on_read(boost::system::error_code ec, std::size_t size);
  void flush();
  void arm_watchdog();
  void publish_deadline() noexcept;
  std::string timeout_reason() const;

  asio::any_io_executor executor_;
  asio::ssl::context* tls_context_;
  bool verify_peer_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket plain_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket>> tls_;
  asio::steady_timer watchdog_;
  bool watchdog_armed_ = false;
  std::string peer_;  ///< host:port, for messages

  RedisReplyReader reader_;
  std::vector<char> read_buffer_;
  std::string outgoing_;  ///< formatted, not yet handed to the socket
  std::string writing_;   ///< being written now
  bool writing_in_progress_ = false;
  std::deque<PendingPtr> in_flight_;  ///< sent or queued, awaiting replies in order
  Events events_;
  std::chrono::milliseconds command_timeout_{2000};
  Watch watch_ = Watch::always;
  std::shared_ptr<std::atomic<std::int64_t>> deadline_sink_;
  bool reading_ = false;
  bool started_ = false;
  bool dropped_ = false;
};

}  // namespace llm_caching::cache

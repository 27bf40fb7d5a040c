// The Redis client's home: its own io_context and I/O thread, the pool of always-reading master
// connections, and the supervisor that connects, reconnects with backoff, follows Sentinel
// (redis_sentinel.cpp) and knows when Redis is down. Lanes (redis_lanes.hpp) connect only while
// home is up, to the master it publishes, and send home whatever they cannot carry. See the top
// of redis_client.cpp for the whole design. Internal to the Redis client TUs.
#pragma once

#include "cache/redis_connection.hpp"
#include "cache/redis_session.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace llm_caching::cache {

struct Lane;

/// What home knows of one lane. Guarded by RedisHome::lanes_mutex (the deadline is atomic).
struct LaneEntry {
  std::weak_ptr<Lane> lane;
  /// Reset when the lane's io_context shuts down: a strand must not outlive its context.
  std::optional<asio::strand<asio::io_context::executor_type>> strand;
  /// The oldest unanswered command's deadline on the lane's connection; 0 when none.
  std::shared_ptr<std::atomic<std::int64_t>> deadline =
      std::make_shared<std::atomic<std::int64_t>>(0);
};

/// The client's own I/O thread and everything on it ("home", see the top of redis_client.cpp).
struct RedisHome : std::enable_shared_from_this<RedisHome> {
  enum class State { connecting, up, down };

  RedisHome(RedisOptions o, NodeRole r);

  // Shared with lanes; set before any lane exists, then read-only.
  RedisOptions options;
  const NodeRole role;  ///< what every connection is for (a replica's send READONLY)
  std::unique_ptr<asio::ssl::context> tls;
  const std::uint64_t id;  ///< unique per client in the process (lanes are kept by it)

  // Published by the home thread for lanes.
  std::atomic<bool> up{false};  ///< home has a connection to the master: lanes may connect
  std::atomic<std::uint64_t> generation{0};  ///< bumped when home loses or moves its master
  std::mutex published_mutex;
  std::optional<RedisEndpoint> published_master;  // guarded by published_mutex

  std::mutex lanes_mutex;
  bool closed = false;                                   // guarded by lanes_mutex
  std::vector<std::shared_ptr<LaneEntry>> lane_entries;  // guarded by lanes_mutex

  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;

  // Everything below is touched on the home I/O thread only.
  State state = State::connecting;
  std::string last_error;
  std::vector<std::shared_ptr<RedisConnection>> ready;
  std::set<std::shared_ptr<RedisConnection>> opening;  // aborted on shutdown
  std::deque<PendingPtr> waiting;  // for the first connection, or a reconnect after a loss
  std::optional<RedisEndpoint> master;
  asio::steady_timer wake{io};
  asio::steady_timer lane_tick{io};
  std::size_t next_connection = 0;
  bool stopping = false;

  bool sentinel_mode() const { return !options.sentinel_master.empty(); }
  /// "host:port", or "master 'name' via sentinels h1:p1,h2:p2": for messages.
  std::string target() const;
  std::string unavailable_message() const;

  /// From any thread: hands a command to the home thread (or fails it once the client is shut
  /// down; the lock orders this against the shutdown post, so nothing is posted after it).
  void send_home(PendingPtr command);
  /// From any thread: the master lanes may connect to (none while home is down), and its
  /// generation.
  std::pair<std::optional<RedisEndpoint>, std::uint64_t> published();

  // The home thread only, from here on.

  /// Tells lanes whether and where to connect.
  void publish(bool is_up);
  void submit(PendingPtr command);
  void drain_waiting();
  void fail_waiting(const std::string& reason);
  void resubmit_or_fail(PendingPtr command, const std::string& reason, bool retryable);
  void on_reply(PendingPtr command, RedisReply reply);
  void drop_all(const std::string& reason);
  void on_dropped(RedisConnection& connection, std::deque<PendingPtr> orphans,
                  const std::string& reason, bool retryable);
  RedisConnection::Events events();
  std::shared_ptr<RedisConnection> new_connection(bool use_tls);

  /// Asks the sentinels in turn for the master's address (redis_sentinel.cpp).
  asio::awaitable<RedisEndpoint> discover_master();
  /// Asks the sentinels whether the master moved; if so, drops the pool (it refills itself).
  asio::awaitable<void> check_master();

  asio::awaitable<std::shared_ptr<RedisConnection>> open_master(const RedisEndpoint& endpoint);
  asio::awaitable<void> fill_pool();
  asio::awaitable<void> sleep(std::chrono::milliseconds duration);
  /// Keeps the pool full: connects, reconnects with backoff, follows Sentinel failovers.
  asio::awaitable<void> supervise();
  /// Checks the lanes' command deadlines (a lane holds no timer of its own; redis_lanes.cpp).
  asio::awaitable<void> watch_lanes();
  void shutdown();
};

}  // namespace llm_caching::cache

// Threading design. Two paths, one client.
//
// Lanes (the common path): a command awaited on an io_context is sent over a connection that
// lives on that same io_context (a "lane", one per client and io_context, on a strand of it so
// that an io_context run by several threads is safe too). It is written and its reply read on the
// caller's own thread: no cross-thread wake-up, and every coroutine of that io_context pipelines
// over the one connection (what is queued while a write is out goes in the next write). An idle
// lane holds no outstanding work, so a run-to-completion io_context still returns; a lane's
// command timeouts are checked by the home thread (below), which reads the deadline each lane
// publishes. A lane connects only after its io_context has sent kCommandsBeforeLane commands, so
// a caller that makes a fresh io_context per call (one or two commands each) never pays a
// connect per call. Lanes are kept in an execution_context service of the caller's io_context and
// die with it.
//
// Home (the fallback and the authority): an io_context owned by the client and run by its own
// I/O thread, with a small pool of always-reading connections and a supervisor that connects,
// reconnects with backoff, follows Sentinel (discovery, ROLE, re-discovery on loss, READONLY and
// periodically) and knows when Redis is down. Lanes connect only while home is up, to the master
// home publishes; a generation number tells them when that changed. Whatever a lane cannot do
// (before it is connected, while Redis is down, a command orphaned by a lost connection, a
// READONLY reply) goes home: one hop there and one back, as every command did before lanes.
// Inside the home thread nothing is locked; lanes share with it only atomics and two mutexes.
#include "cache/redis_client.hpp"
#include "core/thread_name.hpp"

#include "cache/redis_connection.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

namespace llm_caching::cache {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kInitialBackoff = 50ms;
constexpr std::chrono::milliseconds kMaxBackoff = 1000ms;
/// How often the sentinels are asked whether the master moved (besides on loss and READONLY).
constexpr std::chrono::milliseconds kSentinelCheckInterval = 2000ms;
/// Commands an io_context sends through home before it gets a lane of its own.
constexpr std::size_t kCommandsBeforeLane = 16;
/// After a lane failed to connect (while home could), its commands go home this long.
constexpr std::chrono::milliseconds kLaneRetryDelay = 1000ms;

/// A command whose outcome resumes an Asio completion handler on the handler's own executor.
template <class Handler>
class HandlerCommand final : public PendingCommand {
 public:
  explicit HandlerCommand(Handler handler)
      : handler_(std::move(handler)),
        work_(asio::make_work_guard(asio::get_associated_executor(handler_))) {}

  void complete(std::exception_ptr error, RedisReply reply) override {
    auto executor = work_.get_executor();
    asio::post(executor,
               [handler = std::move(handler_), error, reply = std::move(reply)]() mutable {
                 std::move(handler)(error, std::move(reply));
               });
    work_.reset();
  }

  void resume(RedisReply reply) override {
    auto executor = work_.get_executor();
    asio::dispatch(executor, [handler = std::move(handler_), reply = std::move(reply)]() mutable {
      std::move(handler)(nullptr, std::move(reply));
    });
    work_.reset();
  }

 private:
  Handler handler_;
  asio::executor_work_guard<asio::associated_executor_t<Handler>> work_;
};

void fail(PendingCommand& command, const std::string& reason) {
  command.complete(std::make_exception_ptr(CacheError(reason)), {});
}

bool same_endpoint(const RedisEndpoint& a, const RedisEndpoint& b) {
  return a.host == b.host && a.port == b.port;
}

std::string describe_endpoint(const RedisEndpoint& e) {
  return e.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", e.host, e.port)
                                               : fmt::format("{}:{}", e.host, e.port);
}

RedisCommand auth_command(const std::string& user, const std::string& password) {
  if (user.empty()) return {"AUTH", password};
  return {"AUTH", user, password};
}

/// Sends the session setup of a master connection (AUTH, CLIENT SETNAME, SELECT, and ROLE in
/// Sentinel mode) and checks the replies. Throws CacheError naming host:port, never the password.
asio::awaitable<void> open_master_session(RedisConnection& connection, const RedisOptions& options,
                                          const RedisEndpoint& endpoint) {
  std::vector<RedisCommand> setup;
  std::vector<std::string> names;
  if (!options.password.empty()) {
    setup.push_back(auth_command(options.username, options.password));
    names.push_back("AUTH");
  }
  if (!options.client_name.empty()) {
    setup.push_back({"CLIENT", "SETNAME", options.client_name});
    names.push_back("CLIENT SETNAME");
  }
  if (options.db != 0) {
    setup.push_back({"SELECT", std::to_string(options.db)});
    names.push_back("SELECT");
  }
  const bool sentinel_mode = !options.sentinel_master.empty();
  if (sentinel_mode) {
    setup.push_back({"ROLE"});
    names.push_back("ROLE");
  }
  const std::vector<RedisReply> replies =
      co_await connection.open(endpoint, std::move(setup), options.connect_timeout);
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const RedisReply& reply = replies[i];
    if (reply.is_error()) {
      connection.drop("setup failed", false);
      if (names[i] == "AUTH") {
        throw CacheError(fmt::format(
            "Redis at {} refused the credentials{}: {}", connection.peer(),
            options.username.empty() ? "" : fmt::format(" of user '{}'", options.username),
            reply.text));
      }
      throw CacheError(
          fmt::format("Redis at {} rejected {}: {}", connection.peer(), names[i], reply.text));
    }
    if (names[i] == "ROLE") {
      const std::string role = reply.elements.empty() ? "?" : reply.elements.front().text;
      if (role != "master") {
        connection.drop("not the master", false);
        throw CacheError(fmt::format("Redis at {} is a {}, not the master '{}'", connection.peer(),
                                     role, options.sentinel_master));
      }
    }
  }
}

std::atomic<std::uint64_t> next_client_id{1};

struct Lane;

/// What home knows of one lane. Guarded by Impl::lanes_mutex (the deadline is atomic).
struct LaneEntry {
  std::weak_ptr<Lane> lane;
  /// Reset when the lane's io_context shuts down: a strand must not outlive its context.
  std::optional<asio::strand<asio::io_context::executor_type>> strand;
  /// The oldest unanswered command's deadline on the lane's connection; 0 when none.
  std::shared_ptr<std::atomic<std::int64_t>> deadline =
      std::make_shared<std::atomic<std::int64_t>>(0);
};

}  // namespace

namespace {

/// The client's own I/O thread and everything on it ("home", see the top of the file).
struct RedisHome : std::enable_shared_from_this<RedisHome> {
  enum class State { connecting, up, down };

  explicit RedisHome(RedisOptions o) : options(std::move(o)) {}

  // Shared with lanes; set before any lane exists, then read-only.
  RedisOptions options;
  std::unique_ptr<asio::ssl::context> tls;
  const std::uint64_t id = next_client_id.fetch_add(1);

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

  std::string target() const {
    if (!sentinel_mode()) return describe_endpoint(options.endpoints.front());
    std::vector<std::string> sentinels;
    for (const auto& e : options.endpoints) sentinels.push_back(describe_endpoint(e));
    return fmt::format("master '{}' via sentinels {}", options.sentinel_master,
                       fmt::join(sentinels, ","));
  }

  std::string unavailable_message() const {
    return fmt::format("Redis {} is unavailable ({}); reconnecting in the background", target(),
                       last_error.empty() ? "not connected yet" : last_error);
  }

  /// From any thread: hands a command to the home thread (or fails it once the client is shut
  /// down; the lock orders this against the shutdown post, so nothing is posted after it).
  void send_home(PendingPtr command) {
    std::lock_guard lock(lanes_mutex);
    if (closed) {
      fail(*command, "Redis client is shut down");
      return;
    }
    asio::post(io, [self = shared_from_this(), command = std::move(command)]() mutable {
      self->submit(std::move(command));
    });
  }

  std::pair<std::optional<RedisEndpoint>, std::uint64_t> published() {
    std::lock_guard lock(published_mutex);
    return {published_master, generation.load()};
  }

  /// Home thread: tells lanes whether and where to connect.
  void publish(bool is_up) {
    {
      std::lock_guard lock(published_mutex);
      const bool moved = !master || !published_master || !same_endpoint(*master, *published_master);
      if (!is_up || moved) generation.fetch_add(1);
      published_master = is_up ? master : std::nullopt;
    }
    up.store(is_up);
  }

  void submit(PendingPtr command) {
    if (stopping) {
      fail(*command, "Redis client is shut down");
      return;
    }
    if (!ready.empty()) {
      ready[next_connection++ % ready.size()]->submit(std::move(command));
      return;
    }
    if (state == State::down) {  // fail fast until the supervisor reconnects
      fail(*command, unavailable_message());
      return;
    }
    waiting.push_back(std::move(command));
    wake.cancel();
  }

  void drain_waiting() {
    while (!waiting.empty() && !ready.empty()) {
      PendingPtr command = std::move(waiting.front());
      waiting.pop_front();
      submit(std::move(command));
    }
  }

  void fail_waiting(const std::string& reason) {
    std::deque<PendingPtr> failed;
    failed.swap(waiting);
    for (auto& command : failed) fail(*command, reason);
  }

  void resubmit_or_fail(PendingPtr command, const std::string& reason, bool retryable) {
    if (retryable && command->attempts == 0 && !stopping) {
      ++command->attempts;
      submit(std::move(command));
      return;
    }
    fail(*command, reason);
  }

  void on_reply(PendingPtr command, RedisReply reply) {
    if (reply.error_code() != "READONLY") {
      command->complete(nullptr, std::move(reply));
      return;
    }
    // The server we write to was demoted (a failover): find the master again, send once more.
    const std::string reason = fmt::format("Redis {} is now a replica (READONLY)",
                                           master ? describe_endpoint(*master) : target());
    if (command->attempts > 0) {
      command->complete(nullptr, std::move(reply));
    } else {
      ++command->attempts;
      waiting.push_back(std::move(command));
    }
    drop_all(reason);
  }

  void drop_all(const std::string& reason) {
    master.reset();
    state = State::connecting;
    publish(false);
    const auto connections = ready;
    for (const auto& connection : connections) connection->drop(reason, true);
    wake.cancel();
  }

  void on_dropped(RedisConnection& connection, std::deque<PendingPtr> orphans,
                  const std::string& reason, bool retryable) {
    std::erase_if(ready, [&](const auto& c) { return c.get() == &connection; });
    last_error = reason;
    if (ready.empty()) {
      if (state == State::up && !stopping) {
        spdlog::info("Redis {}: {}; reconnecting", target(), reason);
        state = State::connecting;
      }
      publish(false);
      if (sentinel_mode()) master.reset();  // ask the sentinels again
    }
    for (auto& command : orphans) resubmit_or_fail(std::move(command), reason, retryable);
    wake.cancel();
  }

  RedisConnection::Events events() {
    std::weak_ptr<RedisHome> weak = weak_from_this();
    return {[weak](PendingPtr command, RedisReply reply) {
              if (auto self = weak.lock()) self->on_reply(std::move(command), std::move(reply));
            },
            [weak](RedisConnection& c, std::deque<PendingPtr> orphans, const std::string& reason,
                   bool retryable) {
              auto self = weak.lock();
              if (self) {
                self->on_dropped(c, std::move(orphans), reason, retryable);
              } else {
                for (auto& o : orphans) fail(*o, reason);
              }
            }};
  }

  std::shared_ptr<RedisConnection> new_connection(bool use_tls) {
    auto connection = std::make_shared<RedisConnection>(
        io.get_executor(), use_tls ? tls.get() : nullptr, options.tls.verify_peer);
    opening.insert(connection);
    return connection;
  }

  asio::awaitable<RedisEndpoint> discover_master() {
    std::vector<std::string> problems;
    for (const auto& sentinel : options.endpoints) {
      std::vector<RedisCommand> setup;
      const bool auth = !options.sentinel_password.empty();
      if (auth) setup.push_back(auth_command(options.sentinel_username, options.sentinel_password));
      setup.push_back({"SENTINEL", "get-master-addr-by-name", options.sentinel_master});
      auto connection = new_connection(false);
      std::vector<RedisReply> replies;
      try {
        replies = co_await connection->open(sentinel, std::move(setup), options.connect_timeout);
      } catch (const std::exception& e) {
        problems.push_back(e.what());
      }
      opening.erase(connection);
      if (replies.empty()) continue;
      connection->drop("done", false);
      const std::string where = describe_endpoint(sentinel);
      if (auth && replies.front().is_error()) {
        problems.push_back(
            fmt::format("sentinel {} refused the credentials: {}", where, replies.front().text));
        continue;
      }
      const RedisReply& address = replies.back();
      if (address.kind == RedisReply::Kind::array && address.elements.size() == 2) {
        const std::string& port = address.elements[1].text;
        const int port_number = std::atoi(port.c_str());
        if (port_number > 0 && port_number < 65536) {
          co_return RedisEndpoint{address.elements[0].text,
                                  static_cast<std::uint16_t>(port_number)};
        }
      }
      problems.push_back(address.is_error()
                             ? fmt::format("sentinel {} answered: {}", where, address.text)
                             : fmt::format("sentinel {} does not know a master named '{}'", where,
                                           options.sentinel_master));
    }
    throw CacheError(fmt::format("no sentinel could name the Redis master '{}': {}",
                                 options.sentinel_master, fmt::join(problems, "; ")));
  }

  asio::awaitable<std::shared_ptr<RedisConnection>> open_master(const RedisEndpoint& endpoint) {
    auto connection = new_connection(tls != nullptr);
    std::exception_ptr error;
    try {
      co_await open_master_session(*connection, options, endpoint);
    } catch (...) {
      error = std::current_exception();
    }
    opening.erase(connection);
    if (error) std::rethrow_exception(error);
    co_return connection;
  }

  asio::awaitable<void> fill_pool() {
    // if/else, not ?: around a co_await: g++ 12 miscompiles the latter.
    if (!master && sentinel_mode()) {
      master = co_await discover_master();
    } else if (!master) {
      master = options.endpoints.front();
    }
    while (ready.size() < options.pool_size && !stopping) {
      auto connection = co_await open_master(*master);
      if (stopping) {
        connection->drop("shutting down", false);
        co_return;
      }
      connection->start(events(), options.command_timeout, RedisConnection::Watch::always);
      ready.push_back(connection);
      if (state != State::up) {
        if (state == State::down) spdlog::info("Redis {}: connected again", target());
        state = State::up;
        publish(true);
      }
      drain_waiting();
    }
  }

  /// Asks the sentinels whether the master moved; if so, drops the pool (it refills itself).
  asio::awaitable<void> check_master() {
    try {
      const RedisEndpoint current = co_await discover_master();
      if (master && !same_endpoint(current, *master) && !stopping) {
        drop_all(fmt::format("the sentinels moved master '{}' to {}", options.sentinel_master,
                             describe_endpoint(current)));
      }
    } catch (const std::exception& e) {
      spdlog::debug("Redis {}: sentinel check failed: {}", target(), e.what());
    }
  }

  asio::awaitable<void> sleep(std::chrono::milliseconds duration) {
    boost::system::error_code ignored;
    wake.expires_after(duration);
    co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }

  /// Keeps the pool full: connects, reconnects with backoff, follows Sentinel failovers.
  asio::awaitable<void> supervise() {
    auto self = shared_from_this();
    auto backoff = kInitialBackoff;
    auto next_sentinel_check = Clock::now() + kSentinelCheckInterval;
    while (!stopping) {
      if (ready.size() < options.pool_size) {
        bool failed = false;
        try {
          co_await fill_pool();
          backoff = kInitialBackoff;
        } catch (const std::exception& e) {
          failed = true;
          last_error = e.what();
        }
        if (stopping) break;
        if (failed) {
          if (ready.empty()) {
            if (state != State::down) spdlog::debug("Redis {}: {}", target(), last_error);
            state = State::down;
            master.reset();
            publish(false);
            fail_waiting(unavailable_message());
          }
          co_await sleep(backoff);
          backoff = std::min(backoff * 2, kMaxBackoff);
          continue;
        }
      }
      if (sentinel_mode() && Clock::now() >= next_sentinel_check) {
        co_await check_master();
        next_sentinel_check = Clock::now() + kSentinelCheckInterval;
        continue;
      }
      if (ready.size() < options.pool_size) continue;
      co_await sleep(sentinel_mode() ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                           next_sentinel_check - Clock::now())
                                     : std::chrono::milliseconds(3'600'000));
    }
  }

  /// Checks the lanes' command deadlines (a lane holds no timer of its own, see the top).
  asio::awaitable<void> watch_lanes();

  void shutdown() {
    stopping = true;
    up.store(false);
    wake.cancel();
    lane_tick.cancel();
    for (const auto& connection : std::set(opening)) connection->drop("shutting down", false);
    const auto connections = ready;
    for (const auto& connection : connections) connection->drop("Redis client shut down", false);
    fail_waiting("Redis client shut down");
  }
};

}  // namespace

struct RedisClient::Impl final : RedisHome {
  using RedisHome::RedisHome;
};

namespace {

using Impl = RedisHome;
using LaneStrand = asio::strand<asio::io_context::executor_type>;

/// The lanes of one io_context, one per client. Destroyed with the io_context; its shutdown
/// releases the lanes (and their strands) before the context's services are destroyed.
class LaneService final : public asio::execution_context::service {
 public:
  using key_type = LaneService;
  inline static asio::execution_context::id id;

  explicit LaneService(asio::execution_context& context) : service(context) {}

  /// The lane of `home` on `io`; null while `io` has sent fewer than kCommandsBeforeLane
  /// commands (they go home; a short-lived io_context costs no lane) or once home is closed.
  std::shared_ptr<Lane> lane_for(const std::shared_ptr<Impl>& home, asio::io_context& io);
  void erase(std::uint64_t client_id, const Lane* lane);

 private:
  void shutdown() override;

  struct Slot {
    std::size_t commands = 0;
    std::shared_ptr<Lane> lane;
  };
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, Slot> slots_;  ///< by client id
};

/// One client's connection on one caller io_context (see the top of the file). Every member
/// function runs on `strand`.
struct Lane : std::enable_shared_from_this<Lane> {
  Lane(std::shared_ptr<Impl> h, asio::io_context& io, LaneService& s)
      : home(std::move(h)), strand(asio::make_strand(io)), service(s) {}

  const std::shared_ptr<Impl> home;
  const LaneStrand strand;
  LaneService& service;  ///< the io_context's; valid while anything runs on it
  std::shared_ptr<LaneEntry> entry = std::make_shared<LaneEntry>();

  std::shared_ptr<RedisConnection> connection;
  std::shared_ptr<RedisConnection> opening;
  std::uint64_t connection_generation = 0;
  std::deque<PendingPtr> waiting;  ///< while the connection is being opened
  Clock::time_point no_connect_before{};
  bool closed = false;

  void submit(PendingPtr command) {
    if (closed) {
      fail(*command, "Redis client is shut down");
      return;
    }
    if (connection && !connection->usable()) connection.reset();
    if (connection && connection_generation != home->generation.load()) {
      // Home lost or moved the master: what this connection still owes goes home.
      connection->drop("the Redis master changed", true);
      connection.reset();
    }
    if (connection) {
      connection->submit(std::move(command));
      return;
    }
    if (opening) {
      waiting.push_back(std::move(command));
      return;
    }
    if (!home->up.load() || Clock::now() < no_connect_before) {
      home->send_home(std::move(command));
      return;
    }
    waiting.push_back(std::move(command));
    asio::co_spawn(strand, connect(), asio::detached);
  }

  asio::awaitable<void> connect() {
    auto self = shared_from_this();
    auto [endpoint, generation] = home->published();
    auto fresh =
        std::make_shared<RedisConnection>(strand, home->tls.get(), home->options.tls.verify_peer);
    opening = fresh;
    std::string failure = "no master known yet";
    if (endpoint) {
      try {
        co_await open_master_session(*fresh, home->options, *endpoint);
        failure.clear();
      } catch (const std::exception& e) {
        failure = e.what();
      }
    }
    opening.reset();
    if (closed) {
      fresh->drop("Redis client shut down", false);
      fail_waiting("Redis client is shut down");
      co_return;
    }
    if (!failure.empty()) {
      // Home may know better (it is up, or was): its path reports or waits as it should.
      spdlog::debug("Redis {}: lane not connected: {}", home->target(), failure);
      no_connect_before = Clock::now() + kLaneRetryDelay;
      std::deque<PendingPtr> pending;
      pending.swap(waiting);
      for (auto& command : pending) home->send_home(std::move(command));
      co_return;
    }
    fresh->start(events(), home->options.command_timeout, RedisConnection::Watch::while_busy,
                 entry->deadline);
    connection = std::move(fresh);
    connection_generation = generation;
    std::deque<PendingPtr> pending;
    pending.swap(waiting);
    for (auto& command : pending) submit(std::move(command));
  }

  void on_reply(PendingPtr command, RedisReply reply) {
    if (reply.error_code() != "READONLY" || command->attempts > 0) {
      command->resume(std::move(reply));  // may run the caller before returning
      return;
    }
    // A failover demoted this server; home finds the new master (READONLY there too) and sends
    // the command once more.
    home->send_home(std::move(command));
    if (connection) connection->drop("the Redis master became a replica (READONLY)", true);
  }

  void on_dropped(RedisConnection& dropped, std::deque<PendingPtr> orphans,
                  const std::string& reason, bool retryable) {
    if (connection.get() == &dropped) connection.reset();
    for (auto& command : orphans) {
      if (retryable && command->attempts == 0 && !closed) {
        ++command->attempts;
        home->send_home(std::move(command));
      } else {
        fail(*command, reason);
      }
    }
  }

  RedisConnection::Events events() {
    std::weak_ptr<Lane> weak = weak_from_this();
    return {[weak](PendingPtr command, RedisReply reply) {
              if (auto self = weak.lock()) {
                self->on_reply(std::move(command), std::move(reply));
              } else {
                command->complete(nullptr, std::move(reply));
              }
            },
            [weak](RedisConnection& c, std::deque<PendingPtr> orphans, const std::string& reason,
                   bool retryable) {
              if (auto self = weak.lock()) {
                self->on_dropped(c, std::move(orphans), reason, retryable);
              } else {
                for (auto& o : orphans) fail(*o, reason);
              }
            }};
  }

  void fail_waiting(const std::string& reason) {
    std::deque<PendingPtr> pending;
    pending.swap(waiting);
    for (auto& command : pending) fail(*command, reason);
  }

  void expire_if_overdue() {
    if (connection) connection->expire_if_overdue();
  }

  /// The client is being destroyed: fail what is pending, close the socket, leave the service.
  void close() {
    if (closed) return;
    closed = true;
    if (opening) opening->drop("Redis client shut down", false);
    if (connection) connection->drop("Redis client shut down", false);
    connection.reset();
    fail_waiting("Redis client is shut down");
    service.erase(home->id, this);
  }

  /// The io_context is going away: nothing is sent home any more. What waits on the lane is
  /// destroyed or failed; either way its resumption dies with the io_context, as Asio's own
  /// pending operations do.
  void abandon() {
    closed = true;
    std::deque<PendingPtr> pending;
    pending.swap(waiting);
    if (opening) opening->drop("io_context shut down", false);
    if (connection) connection->drop("io_context shut down", false);
    connection.reset();
  }
};

std::shared_ptr<Lane> LaneService::lane_for(const std::shared_ptr<Impl>& home,
                                            asio::io_context& io) {
  std::lock_guard lock(mutex_);
  Slot& slot = slots_[home->id];
  if (slot.lane) return slot.lane;
  if (++slot.commands <= kCommandsBeforeLane) return nullptr;
  std::lock_guard home_lock(home->lanes_mutex);
  if (home->closed) return nullptr;
  slot.lane = std::make_shared<Lane>(home, io, *this);
  slot.lane->entry->lane = slot.lane;
  slot.lane->entry->strand = slot.lane->strand;
  std::erase_if(home->lane_entries, [](const auto& e) { return !e->strand; });
  home->lane_entries.push_back(slot.lane->entry);
  return slot.lane;
}

void LaneService::erase(std::uint64_t client_id, const Lane* lane) {
  std::shared_ptr<Lane> erased;  // destroyed after the lock is released
  std::lock_guard lock(mutex_);
  auto it = slots_.find(client_id);
  if (it != slots_.end() && it->second.lane.get() == lane) {
    erased = std::move(it->second.lane);
    slots_.erase(it);
  }
}

void LaneService::shutdown() {
  std::unordered_map<std::uint64_t, Slot> slots;
  {
    std::lock_guard lock(mutex_);
    slots.swap(slots_);
  }
  for (auto& [id, slot] : slots) {
    if (!slot.lane) continue;
    {
      std::lock_guard home_lock(slot.lane->home->lanes_mutex);
      slot.lane->entry->strand.reset();  // home posts nothing here any more
    }
    slot.lane->abandon();
  }
}

asio::awaitable<void> RedisHome::watch_lanes() {
  auto self = shared_from_this();
  const auto tick =
      std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(options.command_timeout / 4),
                 5ms, 250ms);
  while (!stopping) {
    boost::system::error_code ignored;
    lane_tick.expires_after(tick);
    co_await lane_tick.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    if (stopping) break;
    const std::int64_t now = Clock::now().time_since_epoch().count();
    std::lock_guard lock(lanes_mutex);
    for (const auto& entry : lane_entries) {
      const std::int64_t deadline = entry->deadline->load();
      if (!entry->strand || deadline == 0 || deadline > now) continue;
      asio::post(*entry->strand, [weak = entry->lane] {
        if (auto lane = weak.lock()) lane->expire_if_overdue();
      });
    }
  }
}

}  // namespace

RedisClient::RedisClient(RedisOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {
  if (impl_->options.endpoints.empty()) throw ConfigurationError("Redis: no host given");
  if (impl_->options.pool_size == 0) impl_->options.pool_size = 1;
  if (impl_->options.tls.enabled) impl_->tls = make_redis_tls_context(impl_->options.tls);
  asio::co_spawn(impl_->io, impl_->supervise(), asio::detached);
  asio::co_spawn(impl_->io, impl_->watch_lanes(), asio::detached);
  impl_->thread = std::thread([impl = impl_.get()] {
    core::name_this_thread("llmc-redis");
    impl->io.run();
  });
}

RedisClient::~RedisClient() {
  {
    std::lock_guard lock(impl_->lanes_mutex);
    impl_->closed = true;
    for (const auto& entry : impl_->lane_entries) {
      if (!entry->strand) continue;
      asio::post(*entry->strand, [weak = entry->lane] {
        if (auto lane = weak.lock()) lane->close();
      });
    }
    asio::post(impl_->io, [impl = impl_] { impl->shutdown(); });
  }
  impl_->work.reset();
  impl_->thread.join();
}

const RedisOptions& RedisClient::options() const noexcept {
  return impl_->options;
}

namespace {

/// The lane of `home` on the io_context behind `executor`; null when the executor is not an
/// io_context's (then the command goes home).
std::shared_ptr<Lane> lane_of(const std::shared_ptr<Impl>& home,
                              const asio::any_io_executor& executor) {
  asio::io_context* io = nullptr;
  if (const auto* plain = executor.target<asio::io_context::executor_type>()) {
    io = &plain->context();
  } else if (const auto* strand = executor.target<LaneStrand>()) {
    io = &strand->get_inner_executor().context();
  }
  if (io == nullptr || io == &home->io) return nullptr;
  return asio::use_service<LaneService>(static_cast<asio::execution_context&>(*io))
      .lane_for(home, *io);
}

}  // namespace

asio::awaitable<RedisReply> RedisClient::command(RedisCommand args) {
  auto initiate = [impl = impl_, &args](auto handler) {
    auto lane = lane_of(impl, asio::get_associated_executor(handler));
    PendingPtr command = std::make_unique<HandlerCommand<decltype(handler)>>(std::move(handler));
    command->args = std::move(args);
    if (!lane) {
      impl->send_home(std::move(command));
      return;
    }
    asio::dispatch(lane->strand, [lane, command = std::move(command)]() mutable {
      lane->submit(std::move(command));
    });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                          void(std::exception_ptr, RedisReply)>(
      std::move(initiate), asio::use_awaitable);
}

asio::awaitable<RedisReply> RedisClient::blocking_command(RedisCommand args,
                                                          std::chrono::milliseconds reply_within) {
  const std::optional<RedisEndpoint> endpoint = impl_->published().first;
  if (!endpoint) {
    throw CacheError(fmt::format("Redis {}: no master known yet", impl_->target()));
  }
  auto connection = std::make_shared<RedisConnection>(
      co_await asio::this_coro::executor, impl_->tls.get(), impl_->options.tls.verify_peer);
  co_await open_master_session(*connection, impl_->options, *endpoint);
  RedisConnection::Events events{
      [](PendingPtr command, RedisReply reply) { command->complete(nullptr, std::move(reply)); },
      [](RedisConnection&, std::deque<PendingPtr> orphans, const std::string& reason, bool) {
        for (auto& orphan : orphans) fail(*orphan, reason);
      }};
  connection->start(std::move(events), reply_within, RedisConnection::Watch::always);
  auto initiate = [connection, &args](auto handler) {
    PendingPtr command = std::make_unique<HandlerCommand<decltype(handler)>>(std::move(handler));
    command->args = std::move(args);
    connection->submit(std::move(command));
  };
  std::exception_ptr error;
  RedisReply reply;
  try {
    reply = co_await asio::async_initiate<decltype(asio::use_awaitable),
                                          void(std::exception_ptr, RedisReply)>(
        std::move(initiate), asio::use_awaitable);
  } catch (...) {
    error = std::current_exception();
  }
  connection->drop("blocking command done", false);
  if (error) std::rethrow_exception(error);
  co_return reply;
}

}  // namespace llm_caching::cache

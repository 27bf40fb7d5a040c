// Threading design. The pool's sockets live on an io_context owned by the client and run by its
// own I/O thread; command() hops there (one post) and the reply hops back to the caller's
// executor (one post, holding outstanding work on it so a run-to-completion io_context waits).
// Callers' io_contexts may be short-lived (the sync API runs each call on its own), so binding
// sockets to them would leave a pool on a dead context; with the client owning its context, no
// caller can outlive or kill it. The cost is two cross-thread wake-ups per command; bench_redis
// measures it against the raw GET round trip (docs/PERFORMANCE.md). Inside the I/O thread
// nothing is locked: the pool, the connections and the supervisor are single-threaded there.
#include "cache/redis_client.hpp"

#include "cache/redis_connection.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <optional>
#include <set>
#include <thread>

namespace llm_caching::cache {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kInitialBackoff = 50ms;
constexpr std::chrono::milliseconds kMaxBackoff = 1000ms;
/// How often the sentinels are asked whether the master moved (besides on loss and READONLY).
constexpr std::chrono::milliseconds kSentinelCheckInterval = 2000ms;

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

 private:
  Handler handler_;
  asio::executor_work_guard<asio::associated_executor_t<Handler>> work_;
};

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

}  // namespace

struct RedisClient::Impl : std::enable_shared_from_this<Impl> {
  enum class State { connecting, up, down };

  explicit Impl(RedisOptions o) : options(std::move(o)) {}

  RedisOptions options;
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::unique_ptr<asio::ssl::context> tls;
  std::thread thread;

  // Everything below is touched on the I/O thread only.
  State state = State::connecting;
  std::string last_error;
  std::vector<std::shared_ptr<RedisConnection>> ready;
  std::set<std::shared_ptr<RedisConnection>> opening;  // aborted on shutdown
  std::deque<PendingPtr> waiting;  // for the first connection, or a reconnect after a loss
  std::optional<RedisEndpoint> master;
  asio::steady_timer wake{io};
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

  void submit(PendingPtr command) {
    if (stopping) {
      command->complete(std::make_exception_ptr(CacheError("Redis client is shut down")), {});
      return;
    }
    if (!ready.empty()) {
      ready[next_connection++ % ready.size()]->submit(std::move(command));
      return;
    }
    if (state == State::down) {  // fail fast until the supervisor reconnects
      command->complete(std::make_exception_ptr(CacheError(unavailable_message())), {});
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
    for (auto& command : failed) command->complete(std::make_exception_ptr(CacheError(reason)), {});
  }

  void resubmit_or_fail(PendingPtr command, const std::string& reason, bool retryable) {
    if (retryable && command->attempts == 0 && !stopping) {
      ++command->attempts;
      submit(std::move(command));
      return;
    }
    command->complete(std::make_exception_ptr(CacheError(reason)), {});
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
      if (sentinel_mode()) master.reset();  // ask the sentinels again
    }
    for (auto& command : orphans) resubmit_or_fail(std::move(command), reason, retryable);
    wake.cancel();
  }

  RedisConnection::Events events() {
    std::weak_ptr<Impl> weak = weak_from_this();
    return {[weak](PendingPtr command, RedisReply reply) {
              if (auto self = weak.lock()) self->on_reply(std::move(command), std::move(reply));
            },
            [weak](RedisConnection& c, std::deque<PendingPtr> orphans, const std::string& reason,
                   bool retryable) {
              auto self = weak.lock();
              if (self) {
                self->on_dropped(c, std::move(orphans), reason, retryable);
              } else {
                for (auto& o : orphans)
                  o->complete(std::make_exception_ptr(CacheError(reason)), {});
              }
            }};
  }

  /// Opens a connection and runs `setup`; the connection is aborted if shutdown comes first.
  asio::awaitable<std::pair<std::shared_ptr<RedisConnection>, std::vector<RedisReply>>> open(
      const RedisEndpoint& endpoint, std::vector<RedisCommand> setup, bool use_tls) {
    auto connection = std::make_shared<RedisConnection>(io, use_tls ? tls.get() : nullptr,
                                                        options.tls.verify_peer);
    opening.insert(connection);
    std::exception_ptr error;
    std::vector<RedisReply> replies;
    try {
      replies = co_await connection->open(endpoint, std::move(setup), options.connect_timeout);
    } catch (...) {
      error = std::current_exception();
    }
    opening.erase(connection);
    if (error) std::rethrow_exception(error);
    co_return std::make_pair(connection, std::move(replies));
  }

  asio::awaitable<RedisEndpoint> discover_master() {
    std::vector<std::string> problems;
    for (const auto& sentinel : options.endpoints) {
      std::vector<RedisCommand> setup;
      const bool auth = !options.sentinel_password.empty();
      if (auth) setup.push_back(auth_command(options.sentinel_username, options.sentinel_password));
      setup.push_back({"SENTINEL", "get-master-addr-by-name", options.sentinel_master});
      std::shared_ptr<RedisConnection> connection;
      std::vector<RedisReply> replies;
      try {
        std::tie(connection, replies) = co_await open(sentinel, std::move(setup), false);
      } catch (const std::exception& e) {
        problems.push_back(e.what());
        continue;
      }
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
    if (sentinel_mode()) {
      setup.push_back({"ROLE"});
      names.push_back("ROLE");
    }
    auto [connection, replies] = co_await open(endpoint, std::move(setup), tls != nullptr);
    for (std::size_t i = 0; i < replies.size(); ++i) {
      const RedisReply& reply = replies[i];
      if (reply.is_error()) {
        connection->drop("setup failed", false);
        if (names[i] == "AUTH") {
          throw CacheError(fmt::format(
              "Redis at {} refused the credentials{}: {}", connection->peer(),
              options.username.empty() ? "" : fmt::format(" of user '{}'", options.username),
              reply.text));
        }
        throw CacheError(
            fmt::format("Redis at {} rejected {}: {}", connection->peer(), names[i], reply.text));
      }
      if (names[i] == "ROLE") {
        const std::string role = reply.elements.empty() ? "?" : reply.elements.front().text;
        if (role != "master") {
          connection->drop("not the master", false);
          throw CacheError(fmt::format("Redis at {} is a {}, not the master '{}'",
                                       connection->peer(), role, options.sentinel_master));
        }
      }
    }
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
      connection->start(events(), options.command_timeout);
      ready.push_back(connection);
      if (state != State::up) {
        if (state == State::down) spdlog::info("Redis {}: connected again", target());
        state = State::up;
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

  void shutdown() {
    stopping = true;
    wake.cancel();
    for (const auto& connection : std::set(opening)) connection->drop("shutting down", false);
    const auto connections = ready;
    for (const auto& connection : connections) connection->drop("Redis client shut down", false);
    fail_waiting("Redis client shut down");
  }
};

RedisClient::RedisClient(RedisOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {
  if (impl_->options.endpoints.empty()) throw ConfigurationError("Redis: no host given");
  if (impl_->options.pool_size == 0) impl_->options.pool_size = 1;
  if (impl_->options.tls.enabled) impl_->tls = make_redis_tls_context(impl_->options.tls);
  asio::co_spawn(impl_->io, impl_->supervise(), asio::detached);
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

RedisClient::~RedisClient() {
  asio::post(impl_->io, [impl = impl_] { impl->shutdown(); });
  impl_->work.reset();
  impl_->thread.join();
}

const RedisOptions& RedisClient::options() const noexcept {
  return impl_->options;
}

asio::awaitable<RedisReply> RedisClient::command(RedisCommand args) {
  auto initiate = [impl = impl_, &args](auto handler) {
    PendingPtr command = std::make_unique<HandlerCommand<decltype(handler)>>(std::move(handler));
    command->args = std::move(args);
    asio::post(impl->io, [impl, command = std::move(command)]() mutable {
      impl->submit(std::move(command));
    });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                          void(std::exception_ptr, RedisReply)>(
      std::move(initiate), asio::use_awaitable);
}

}  // namespace llm_caching::cache

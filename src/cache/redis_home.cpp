// Home: the pool of master connections and its supervisor (see redis_home.hpp, and the top of
// redis_client.cpp for how home and the lanes share the work).
#include "cache/redis_home.hpp"

#include "cache/redis_session.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace llm_caching::cache {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kInitialBackoff = 50ms;
constexpr std::chrono::milliseconds kMaxBackoff = 1000ms;
/// How often the sentinels are asked whether the master moved (besides on loss and READONLY).
constexpr std::chrono::milliseconds kSentinelCheckInterval = 2000ms;

std::atomic<std::uint64_t> next_client_id{1};

}  // namespace

RedisHome::RedisHome(RedisOptions o, NodeRole r)
    : options(std::move(o)), role(r), id(next_client_id.fetch_add(1)) {}

std::string RedisHome::target() const {
  if (!sentinel_mode()) return describe_endpoint(options.endpoints.front());
  std::vector<std::string> sentinels;
  for (const auto& e : options.endpoints) sentinels.push_back(describe_endpoint(e));
  return fmt::format("master '{}' via sentinels {}", options.sentinel_master,
                     fmt::join(sentinels, ","));
}

std::string RedisHome::unavailable_message() const {
  return fmt::format("Redis {} is unavailable ({}); reconnecting in the background", target(),
                     last_error.empty() ? "not connected yet" : last_error);
}

void RedisHome::send_home(PendingPtr command) {
  std::lock_guard lock(lanes_mutex);
  if (closed) {
    fail_command(*command, "Redis client is shut down");
    return;
  }
  asio::post(io, [self = shared_from_this(), command = std::move(command)]() mutable {
    self->submit(std::move(command));
  });
}

std::pair<std::optional<RedisEndpoint>, std::uint64_t> RedisHome::published() {
  std::lock_guard lock(published_mutex);
  return {published_master, generation.load()};
}

void RedisHome::publish(bool is_up) {
  {
    std::lock_guard lock(published_mutex);
    const bool moved = !master || !published_master || !same_endpoint(*master, *published_master);
    if (!is_up || moved) generation.fetch_add(1);
    published_master = is_up ? master : std::nullopt;
  }
  up.store(is_up);
}

void RedisHome::submit(PendingPtr command) {
  if (stopping) {
    fail_command(*command, "Redis client is shut down");
    return;
  }
  if (!ready.empty()) {
    ready[next_connection++ % ready.size()]->submit(std::move(command));
    return;
  }
  if (state == State::down) {  // fail fast until the supervisor reconnects
    fail_command(*command, unavailable_message());
    return;
  }
  waiting.push_back(std::move(command));
  wake.cancel();
}

void RedisHome::drain_waiting() {
  while (!waiting.empty() && !ready.empty()) {
    PendingPtr command = std::move(waiting.front());
    waiting.pop_front();
    submit(std::move(command));
  }
}

void RedisHome::fail_waiting(const std::string& reason) {
  std::deque<PendingPtr> failed;
  failed.swap(waiting);
  for (auto& command : failed) fail_command(*command, reason);
}

void RedisHome::resubmit_or_fail(PendingPtr command, const std::string& reason, bool retryable) {
  if (retryable && command->attempts == 0 && !stopping) {
    ++command->attempts;
    submit(std::move(command));
    return;
  }
  fail_command(*command, reason);
}

void RedisHome::on_reply(PendingPtr command, RedisReply reply) {
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

void RedisHome::drop_all(const std::string& reason) {
  master.reset();
  state = State::connecting;
  publish(false);
  const auto connections = ready;
  for (const auto& connection : connections) connection->drop(reason, true);
  wake.cancel();
}

void RedisHome::on_dropped(RedisConnection& connection, std::deque<PendingPtr> orphans,
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

RedisConnection::Events RedisHome::events() {
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
              for (auto& o : orphans) fail_command(*o, reason);
            }
          }};
}

std::shared_ptr<RedisConnection> RedisHome::new_connection(bool use_tls) {
  auto connection = std::make_shared<RedisConnection>(
      io.get_executor(), use_tls ? tls.get() : nullptr, options.tls.verify_peer);
  opening.insert(connection);
  return connection;
}

asio::awaitable<std::shared_ptr<RedisConnection>> RedisHome::open_master(
    const RedisEndpoint& endpoint) {
  auto connection = new_connection(tls != nullptr);
  std::exception_ptr error;
  try {
    co_await open_master_session(*connection, options, endpoint, role);
  } catch (...) {
    error = std::current_exception();
  }
  opening.erase(connection);
  if (error) std::rethrow_exception(error);
  co_return connection;
}

asio::awaitable<void> RedisHome::fill_pool() {
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

asio::awaitable<void> RedisHome::sleep(std::chrono::milliseconds duration) {
  boost::system::error_code ignored;
  wake.expires_after(duration);
  co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

asio::awaitable<void> RedisHome::supervise() {
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

void RedisHome::shutdown() {
  stopping = true;
  up.store(false);
  wake.cancel();
  lane_tick.cancel();
  for (const auto& connection : std::set(opening)) connection->drop("shutting down", false);
  const auto connections = ready;
  for (const auto& connection : connections) connection->drop("Redis client shut down", false);
  fail_waiting("Redis client shut down");
}

}  // namespace llm_caching::cache

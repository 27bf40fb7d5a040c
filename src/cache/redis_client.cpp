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
//
// The parts: redis_session.* (what a master connection sends when it opens, and how its replies
// are judged), redis_home.* (home: the pool, reconnection with backoff, knowing Redis is down),
// redis_sentinel.* (asking the sentinels for the master), redis_lanes.* (the lanes), and
// redis_connection.* (one pipelined RESP connection). This file is the client's public face.
#include "cache/redis_client.hpp"
#include "core/thread_name.hpp"

#include "cache/redis_home.hpp"
#include "cache/redis_lanes.hpp"
#include "cache/redis_session.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>
#include <thread>

namespace llm_caching::cache {
namespace {

/// A command whose outcome resumes an Asio completion handler on the handler's own executor.
template <class Handler>
class HandlerCommand final : public PendingCommand {
 public:
  explicit HandlerCommand(Handler handler)
      : handler_(std::move(handler)),
        work_(asio::make_work_guard(asio::get_associated_executor(handler_))) {}

  void complete(std::exception_ptr error, RedisReply reply) override {
    auto executor = work_.get_executor();
    // The error is moved, not copied, into the handler: this thread (home's, often) keeps no
    // reference, so the exception is freed by the handler's thread, the last to read it. Were it
    // freed here after the handler's thread read it, the order between the two would be the
    // exception_ptr's count, kept inside libstdc++, which ThreadSanitizer does not see.
    asio::post(executor, [handler = std::move(handler_), error = std::move(error),
                          reply = std::move(reply)]() mutable {
      std::move(handler)(std::move(error), std::move(reply));
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

}  // namespace

struct RedisClient::Impl final : RedisHome {
  using RedisHome::RedisHome;
};

RedisClient::RedisClient(RedisOptions options, NodeRole role)
    : impl_(std::make_shared<Impl>(std::move(options), role)) {
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
    close_lanes(*impl_);
    asio::post(impl_->io, [impl = impl_] { impl->shutdown(); });
  }
  impl_->work.reset();
  impl_->thread.join();
}

const RedisOptions& RedisClient::options() const noexcept {
  return impl_->options;
}

asio::awaitable<RedisReply> RedisClient::command(RedisCommand args, bool asking) {
  auto initiate = [impl = impl_, &args, asking](auto handler) {
    auto lane = lane_of(impl, asio::get_associated_executor(handler));
    PendingPtr command = std::make_unique<HandlerCommand<decltype(handler)>>(std::move(handler));
    command->args = std::move(args);
    command->asking = asking;
    if (!lane) {
      impl->send_home(std::move(command));
      return;
    }
    submit_to_lane(lane, std::move(command));
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                          void(std::exception_ptr, RedisReply)>(
      std::move(initiate), asio::use_awaitable);
}

asio::awaitable<RedisReply> RedisClient::blocking_command(RedisCommand args,
                                                          std::chrono::milliseconds reply_within,
                                                          bool asking) {
  const std::optional<RedisEndpoint> endpoint = impl_->published().first;
  if (!endpoint) {
    throw CacheError(fmt::format("Redis {}: no master known yet", impl_->target()));
  }
  auto connection = std::make_shared<RedisConnection>(
      co_await asio::this_coro::executor, impl_->tls.get(), impl_->options.tls.verify_peer);
  co_await open_master_session(*connection, impl_->options, *endpoint, impl_->role);
  RedisConnection::Events events{
      [](PendingPtr command, RedisReply reply) { command->complete(nullptr, std::move(reply)); },
      [](RedisConnection&, std::deque<PendingPtr> orphans, const std::string& reason, bool) {
        for (auto& orphan : orphans) fail_command(*orphan, reason);
      }};
  connection->start(std::move(events), reply_within, RedisConnection::Watch::always);
  auto initiate = [connection, &args, asking](auto handler) {
    PendingPtr command = std::make_unique<HandlerCommand<decltype(handler)>>(std::move(handler));
    command->args = std::move(args);
    command->asking = asking;
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

// Lanes (see redis_lanes.hpp and the top of redis_client.cpp).
#include "cache/redis_lanes.hpp"

#include "cache/redis_home.hpp"
#include "cache/redis_session.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <unordered_map>

namespace llm_caching::cache {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using LaneStrand = asio::strand<asio::io_context::executor_type>;

/// Commands an io_context sends through home before it gets a lane of its own.
constexpr std::size_t kCommandsBeforeLane = 16;
/// After a lane failed to connect (while home could), its commands go home this long.
constexpr std::chrono::milliseconds kLaneRetryDelay = 1000ms;

/// The lanes of one io_context, one per client. Destroyed with the io_context; its shutdown
/// releases the lanes (and their strands) before the context's services are destroyed.
class LaneService final : public asio::execution_context::service {
 public:
  using key_type = LaneService;
  inline static asio::execution_context::id id;

  explicit LaneService(asio::execution_context& context) : service(context) {}

  /// The lane of `home` on `io`; null while `io` has sent fewer than kCommandsBeforeLane
  /// commands (they go home; a short-lived io_context costs no lane) or once home is closed.
  std::shared_ptr<Lane> lane_for(const std::shared_ptr<RedisHome>& home, asio::io_context& io);
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

}  // namespace

/// One client's connection on one caller io_context (see the top of redis_client.cpp). Every
/// member function runs on `strand`.
struct Lane : std::enable_shared_from_this<Lane> {
  Lane(std::shared_ptr<RedisHome> h, asio::io_context& io, LaneService& s)
      : home(std::move(h)), strand(asio::make_strand(io)), service(s) {}

  const std::shared_ptr<RedisHome> home;
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
      fail_command(*command, "Redis client is shut down");
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
        co_await open_master_session(*fresh, home->options, *endpoint, home->role);
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
        fail_command(*command, reason);
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
                for (auto& o : orphans) fail_command(*o, reason);
              }
            }};
  }

  void fail_waiting(const std::string& reason) {
    std::deque<PendingPtr> pending;
    pending.swap(waiting);
    for (auto& command : pending) fail_command(*command, reason);
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

namespace {

std::shared_ptr<Lane> LaneService::lane_for(const std::shared_ptr<RedisHome>& home,
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

}  // namespace

std::shared_ptr<Lane> lane_of(const std::shared_ptr<RedisHome>& home,
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

void submit_to_lane(const std::shared_ptr<Lane>& lane, PendingPtr command) {
  asio::dispatch(lane->strand, [lane, command = std::move(command)]() mutable {
    lane->submit(std::move(command));
  });
}

void close_lanes(RedisHome& home) {
  for (const auto& entry : home.lane_entries) {
    if (!entry->strand) continue;
    asio::post(*entry->strand, [weak = entry->lane] {
      if (auto lane = weak.lock()) lane->close();
    });
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

}  // namespace llm_caching::cache

#include "cache/redis_cluster.hpp"

#include "cache/cluster_slots.hpp"
#include "cache/redis_client.hpp"
#include "cache/redis_connection.hpp"
#include "cache/redis_replicas.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <optional>

namespace llm_caching::cache {
namespace {

/// MOVED redirects and unreachable nodes one command may meet before its last reply (or
/// failure) is final: a reshard moves a slot once, a failover needs one new map.
constexpr int kMaxAttempts = 6;
/// ASK redirects and TRYAGAIN/CLUSTERDOWN pauses one command may meet (about 2 s of pauses):
/// a script over a slot being migrated is refused with TRYAGAIN until the slot has moved.
constexpr int kMaxWaits = 80;
/// The slot map is asked again at most this often: a dead master makes every call that
/// reaches it want a new map, and the answer only changes once the cluster has failed over.
constexpr std::chrono::milliseconds kRefreshGap{100};
/// How long TRYAGAIN (a slot half migrated) and CLUSTERDOWN (a failover under way) are waited
/// out before the command is sent again.
constexpr std::chrono::milliseconds kRetryPause{25};
/// With read_from_replicas the map is read again (off the calls' path) once it is this old:
/// CLUSTER SLOTS lists a replica only once it has replicated something (a new cluster, a
/// replica added or resynchronised), and otherwise nothing would ask again.
constexpr std::chrono::milliseconds kReplicaMapAge{2000};

/// The slot map with a client for each of its masters (same index as SlotMap::shards()), and
/// with read_from_replicas the replicas of each.
struct Routing {
  SlotMap map;
  std::vector<std::shared_ptr<RedisClient>> clients;
  std::vector<std::vector<std::shared_ptr<ReplicaNode>>> replicas;
  std::uint64_t generation = 0;
  std::chrono::steady_clock::time_point installed = std::chrono::steady_clock::now();
};

asio::awaitable<void> pause(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace

struct RedisClusterClient::State {
  RedisOptions options;
  std::mutex mutex;
  std::shared_ptr<const Routing> routing;  // guarded by mutex; null until the first map
  std::uint64_t generation = 0;            // guarded by mutex
  std::chrono::steady_clock::time_point last_refresh{};  // guarded by mutex
  std::map<std::pair<std::string, std::uint16_t>, std::shared_ptr<RedisClient>> nodes;  // guarded
  /// The replicas read from (apart from `nodes`: their sessions are READONLY). Guarded.
  std::map<std::pair<std::string, std::uint16_t>, std::shared_ptr<ReplicaNode>> replica_nodes;
  std::atomic<std::uint64_t> next_replica{0};  ///< the slots' replicas take turns
  std::atomic<bool> refreshing{false};         ///< a background map read is under way
  std::string refresh_error;  // guarded by mutex: why the last node asked for the map could not say
  std::atomic<std::uint64_t> moved_count{0};
  std::atomic<std::uint64_t> ask_count{0};
  std::atomic<std::uint64_t> retry_count{0};
  std::atomic<std::uint64_t> refresh_count{0};
  std::atomic<std::uint64_t> replica_read_count{0};
  std::atomic<std::uint64_t> replica_miss_count{0};
  std::atomic<std::uint64_t> replica_fallback_count{0};

  std::shared_ptr<const Routing> current() {
    std::lock_guard lock(mutex);
    return routing;
  }

  /// The pooled client of one node, made on first use (it connects in the background).
  std::shared_ptr<RedisClient> node_locked(const RedisEndpoint& endpoint) {
    auto& client = nodes[{endpoint.host, endpoint.port}];
    if (!client) {
      RedisOptions node = options;
      node.cluster = false;
      node.endpoints = {endpoint};
      node.masked_url = options.masked_url;
      client = std::make_shared<RedisClient>(std::move(node));
    }
    return client;
  }
  std::shared_ptr<RedisClient> node(const RedisEndpoint& endpoint) {
    std::lock_guard lock(mutex);
    return node_locked(endpoint);
  }

  /// A replica's pooled client (READONLY sessions), made on first use.
  std::shared_ptr<ReplicaNode> replica_locked(const RedisEndpoint& endpoint) {
    auto& replica = replica_nodes[{endpoint.host, endpoint.port}];
    if (!replica) {
      RedisOptions node = options;
      node.cluster = false;
      node.endpoints = {endpoint};
      replica = std::make_shared<ReplicaNode>(
          std::make_shared<RedisClient>(std::move(node), NodeRole::replica));
    }
    return replica;
  }

  /// The replica of `shard` whose turn it is, skipping resting ones; null when none can serve.
  std::shared_ptr<ReplicaNode> pick_replica(const Routing& routing, int shard,
                                            std::chrono::steady_clock::time_point now) {
    const auto& replicas = routing.replicas[static_cast<std::size_t>(shard)];
    if (replicas.empty()) return nullptr;
    return cache::pick_replica(replicas, next_replica.fetch_add(1, std::memory_order_relaxed), now);
  }

  /// Installs `map` (with its masters' and, read_from_replicas, replicas' clients) as the
  /// current routing.
  void install(SlotMap map) {
    std::lock_guard lock(mutex);
    auto next = std::make_shared<Routing>();
    for (const auto& shard : map.shards()) {
      next->clients.push_back(node_locked(shard.master));
      auto& replicas = next->replicas.emplace_back();
      if (!options.read_from_replicas) continue;
      for (const auto& replica : shard.replicas) replicas.push_back(replica_locked(replica));
    }
    next->map = std::move(map);
    next->generation = ++generation;
    routing = std::move(next);
  }

  /// A MOVED reply: the slot is patched in a copy of the current map.
  void moved(std::uint16_t slot, const RedisEndpoint& to) {
    auto base = current();
    SlotMap map = base ? base->map : SlotMap();
    map.move_slot(slot, to);
    install(std::move(map));
  }

  /// Nodes to ask for the map: the known masters, their replicas, then the seeds.
  std::vector<RedisEndpoint> candidates() {
    std::vector<RedisEndpoint> out;
    if (auto now = current()) {
      for (const auto& shard : now->map.shards()) out.push_back(shard.master);
      for (const auto& shard : now->map.shards()) {
        out.insert(out.end(), shard.replicas.begin(), shard.replicas.end());
      }
    }
    out.insert(out.end(), options.endpoints.begin(), options.endpoints.end());
    return out;
  }
};

namespace {

using State = RedisClusterClient::State;

/// Asks the nodes in turn for CLUSTER SLOTS and installs the first map that covers every slot
/// (else the best one seen). True when the routing is newer than `seen` afterwards, whether this
/// call or another one installed it; false when nothing could be learned or it was asked just now.
asio::awaitable<bool> refresh(std::shared_ptr<State> state, std::uint64_t seen) {
  {
    std::lock_guard lock(state->mutex);
    if (state->generation != seen) co_return true;
    const auto now = std::chrono::steady_clock::now();
    if (state->routing && now - state->last_refresh < kRefreshGap) co_return false;
    state->last_refresh = now;
  }
  std::optional<SlotMap> partial;
  for (const RedisEndpoint& candidate : state->candidates()) {
    RedisCommand slots{"CLUSTER", "SLOTS"};
    std::optional<SlotMap> map;
    try {
      const RedisReply reply = co_await state->node(candidate)->command(std::move(slots));
      if (reply.is_error()) throw CacheError(describe_endpoint(candidate) + ": " + reply.text);
      map.emplace(parse_cluster_slots(reply, candidate.host));
    } catch (const std::exception& e) {
      // This node is down or not a cluster node: ask the next one.
      std::lock_guard lock(state->mutex);
      state->refresh_error = e.what();
    }
    if (!map) continue;
    ++state->refresh_count;
    if (map->complete()) {
      state->install(std::move(*map));
      co_return true;
    }
    if (!partial) partial = std::move(map);
  }
  if (!partial) co_return false;
  state->install(std::move(*partial));
  co_return true;
}

/// Error replies that pass once the cluster has moved on: a slot half migrated, a failover.
bool transient(const RedisReply& reply) {
  const std::string_view code = reply.error_code();
  return code == "TRYAGAIN" || code == "CLUSTERDOWN";
}

/// Sends `args` to the master of its key's slot, following redirects (see the header).
/// `blocking`: as RedisClient::blocking_command with this reply bound.
asio::awaitable<RedisReply> route(std::shared_ptr<State> state, RedisCommand args,
                                  std::optional<std::chrono::milliseconds> blocking) {
  const auto key = routing_key(args);
  const std::uint16_t slot = key ? key_slot(*key) : 0;
  std::optional<RedisEndpoint> ask;
  int waits = 0;
  for (int attempt = 1;; ++attempt) {
    auto routing = state->current();
    if (!routing) {
      co_await refresh(state, 0);
      routing = state->current();
    }
    const std::uint64_t seen = routing ? routing->generation : 0;
    const int shard = routing ? routing->map.shard_of(slot) : -1;
    std::shared_ptr<RedisClient> client;
    if (ask) {
      client = state->node(*ask);
    } else if (shard >= 0) {
      client = routing->clients[static_cast<std::size_t>(shard)];
    } else {
      if (attempt >= kMaxAttempts) {
        std::lock_guard lock(state->mutex);
        throw CacheError(fmt::format(
            "Redis Cluster {}: no master known for slot {} (are all slots assigned?){}",
            state->options.masked_url, slot,
            state->refresh_error.empty() ? "" : "; last error: " + state->refresh_error));
      }
      const bool changed = co_await refresh(state, seen);
      if (!changed) co_await pause(kRetryPause);
      continue;
    }
    const bool asking = ask.has_value();
    ask.reset();
    RedisReply reply;
    std::exception_ptr failure;
    try {
      if (blocking) {
        reply = co_await client->blocking_command(args, *blocking, asking);
      } else {
        reply = co_await client->command(args, asking);
      }
    } catch (const CacheError&) {
      failure = std::current_exception();
    }
    if (failure) {
      // The node is unreachable: if the cluster failed over, a new map sends this elsewhere.
      if (attempt >= kMaxAttempts) std::rethrow_exception(failure);
      ++state->retry_count;
      const bool changed = co_await refresh(state, seen);
      if (!changed) std::rethrow_exception(failure);
      continue;
    }
    const auto redirect = parse_redirect(reply, client->options().endpoints.front().host);
    const bool ask_reply = redirect && redirect->kind == ClusterRedirect::Kind::ask;
    if (ask_reply || transient(reply)) {
      if (++waits > kMaxWaits) co_return reply;
      --attempt;  // counted as a wait, not as an attempt
    } else if (!redirect || attempt >= kMaxAttempts) {
      co_return reply;
    }
    if (ask_reply) {
      ++state->ask_count;
      ask = redirect->to;
    } else if (redirect) {
      ++state->moved_count;
      state->moved(redirect->slot, redirect->to);
    } else {
      ++state->retry_count;
      if (reply.error_code() == "CLUSTERDOWN") co_await refresh(state, seen);
      co_await pause(kRetryPause);
    }
  }
}

/// refresh(), then another background refresh may start (also when the frame is destroyed
/// unfinished, with its io_context).
asio::awaitable<void> background_refresh(std::shared_ptr<State> state, std::uint64_t seen) {
  struct Done {
    std::atomic<bool>& refreshing;
    ~Done() { refreshing.store(false); }
  } done{state->refreshing};
  co_await refresh(state, seen);
}

/// Reads the map again on the caller's executor, without the caller waiting; one at a time.
asio::awaitable<void> refresh_in_background(std::shared_ptr<State> state, std::uint64_t seen) {
  if (state->refreshing.exchange(true)) co_return;
  const auto executor = co_await asio::this_coro::executor;
  asio::co_spawn(executor, background_refresh(std::move(state), seen), asio::detached);
}

/// RedisClusterClient::read: a replica of the key's slot, else (or after it) the master.
asio::awaitable<RedisReply> read_replica(std::shared_ptr<State> state, RedisCommand args) {
  auto routing = state->current();
  if (!routing) {
    co_await refresh(state, 0);  // the first command: the map first
    routing = state->current();
  }
  std::shared_ptr<ReplicaNode> replica;
  if (routing) {
    const auto now = std::chrono::steady_clock::now();
    if (now - routing->installed > kReplicaMapAge) {
      co_await refresh_in_background(state, routing->generation);
    }
    const auto key = routing_key(args);
    const int shard = routing->map.shard_of(key ? key_slot(*key) : 0);
    if (shard >= 0) replica = state->pick_replica(*routing, shard, now);
  }
  if (!replica) co_return co_await route(state, std::move(args), std::nullopt);
  std::optional<RedisReply> reply;
  try {
    reply = co_await replica->client().command(args);
  } catch (const CacheError&) {
    // Unreachable, or it timed out: the master answers (below).
  }
  const ReplicaAnswer answer = reply ? judge_replica_reply(*reply) : ReplicaAnswer::unavailable;
  if (answer == ReplicaAnswer::served || answer == ReplicaAnswer::absent) replica->answered();
  if (answer == ReplicaAnswer::served) {
    ++state->replica_read_count;
    co_return std::move(*reply);
  }
  if (answer == ReplicaAnswer::absent) {
    ++state->replica_miss_count;
  } else {
    ++state->replica_fallback_count;
    if (answer == ReplicaAnswer::unavailable) replica->failed(std::chrono::steady_clock::now());
    if (answer == ReplicaAnswer::moved || !reply) {
      // The slot moved, or the replica may be gone (failed, promoted): read the map again, off
      // this call's path (at most every kRefreshGap).
      co_await refresh_in_background(state, routing->generation);
    }
  }
  co_return co_await route(state, std::move(args), std::nullopt);
}

}  // namespace

RedisClusterClient::RedisClusterClient(RedisOptions options) : state_(std::make_shared<State>()) {
  if (options.endpoints.empty()) throw ConfigurationError("Redis Cluster: no seed node given");
  if (options.pool_size == 0) options.pool_size = 1;
  // Each node's client loads the TLS files again; loading them here once reports a bad file
  // when the cache is opened rather than on the first command.
  if (options.tls.enabled) make_redis_tls_context(options.tls);
  state_->options = std::move(options);
}

RedisClusterClient::~RedisClusterClient() = default;

const RedisOptions& RedisClusterClient::options() const noexcept {
  return state_->options;
}

RedisClusterClient::Counters RedisClusterClient::counters() const noexcept {
  return {state_->moved_count.load(),           state_->ask_count.load(),
          state_->retry_count.load(),           state_->refresh_count.load(),
          state_->replica_read_count.load(),    state_->replica_miss_count.load(),
          state_->replica_fallback_count.load()};
}

// Not coroutines themselves: one coroutine frame less per command.
asio::awaitable<RedisReply> RedisClusterClient::command(RedisCommand args) {
  return route(state_, std::move(args), std::nullopt);
}

asio::awaitable<RedisReply> RedisClusterClient::read(RedisCommand args) {
  if (!state_->options.read_from_replicas) return route(state_, std::move(args), std::nullopt);
  return read_replica(state_, std::move(args));
}

asio::awaitable<RedisReply> RedisClusterClient::blocking_command(
    RedisCommand args, std::chrono::milliseconds reply_within) {
  return route(state_, std::move(args), reply_within);
}

asio::awaitable<std::vector<RedisEndpoint>> RedisClusterClient::masters() {
  auto routing = state_->current();
  co_await refresh(state_, routing ? routing->generation : 0);
  routing = state_->current();
  if (!routing) {
    std::lock_guard lock(state_->mutex);
    throw CacheError(fmt::format(
        "Redis Cluster {}: no node answered CLUSTER SLOTS{}", state_->options.masked_url,
        state_->refresh_error.empty() ? "" : "; last error: " + state_->refresh_error));
  }
  co_return routing->map.masters();
}

asio::awaitable<RedisReply> RedisClusterClient::command_on(RedisEndpoint node, RedisCommand args) {
  co_return co_await state_->node(node)->command(std::move(args));
}

}  // namespace llm_caching::cache

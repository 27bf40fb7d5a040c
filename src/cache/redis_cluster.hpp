// A Redis Cluster client (`redis+cluster://`, `rediss+cluster://`): one pooled RedisClient per
// master (its lanes, pool and reconnection are those of a single server), a slot map read with
// CLUSTER SLOTS from any node, and each command sent to the master of its key's slot, following
// MOVED (the map is patched) and ASK (ASKING + the command on one connection) and waiting out
// TRYAGAIN and CLUSTERDOWN. A node that cannot be reached makes the client ask the cluster for
// the map again (a failover moved its slots to a promoted replica). With read_from_replicas,
// entry reads (read()) go to a replica of the slot, pooled the same way, and fall back to the
// master. Routing is pure (cluster_slots.hpp); this is the I/O around it.
#pragma once

#include "cache/redis_protocol.hpp"
#include "llm_caching/cache_options.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace llm_caching::cache {

class RedisClusterClient {
 public:
  /// Does not wait for the cluster: the first command asks the seed nodes for the slot map.
  /// Throws ConfigurationError when the TLS files cannot be loaded.
  explicit RedisClusterClient(RedisOptions options);
  ~RedisClusterClient();
  RedisClusterClient(const RedisClusterClient&) = delete;
  RedisClusterClient& operator=(const RedisClusterClient&) = delete;

  /// Sends a command with a key (routing_key) to the master serving its slot and returns the
  /// reply (an error reply is a reply). Throws CacheError when no node can serve it.
  boost::asio::awaitable<RedisReply> command(RedisCommand args);
  /// A read (GET) on a replica of its key's slot, when options().read_from_replicas (else
  /// command()): the slot's replicas take turns, each with a pooled RedisClient whose
  /// connections send READONLY. The master answers instead (command(), with its redirects)
  /// when the replica's reply is nil (it may lag: a miss there is never final), an error
  /// (judge_replica_reply), or it cannot be reached; a replica that failed rests kReplicaRest,
  /// and MOVED or a failure has the slot map read again (off the call's path). A replica never
  /// fails a call: only the master's failure is thrown (CacheError).
  boost::asio::awaitable<RedisReply> read(RedisCommand args);
  /// RedisClient::blocking_command, on the master of the key's slot.
  boost::asio::awaitable<RedisReply> blocking_command(RedisCommand args,
                                                      std::chrono::milliseconds reply_within);
  /// The masters serving slots now (the map asked again first, unless it was just now), sorted
  /// by address: the nodes a keyless command (SCAN, DBSIZE, INFO) is fanned out to.
  boost::asio::awaitable<std::vector<RedisEndpoint>> masters();
  /// Sends a keyless command to one node, as it is (no redirects).
  boost::asio::awaitable<RedisReply> command_on(RedisEndpoint node, RedisCommand args);

  const RedisOptions& options() const noexcept;

  /// What the routing has had to follow so far (for tests and logs).
  struct Counters {
    std::uint64_t moved = 0;              ///< MOVED replies followed (the slot map patched)
    std::uint64_t ask = 0;                ///< ASK replies followed (ASKING + the command)
    std::uint64_t retried = 0;            ///< TRYAGAIN / CLUSTERDOWN waited out, unreachable nodes
    std::uint64_t refreshes = 0;          ///< slot maps read with CLUSTER SLOTS
    std::uint64_t replica_reads = 0;      ///< read() answered by a replica (a value)
    std::uint64_t replica_misses = 0;     ///< a replica's nil, asked again of the master
    std::uint64_t replica_fallbacks = 0;  ///< a replica's error or failure: the master asked
  };
  Counters counters() const noexcept;

  /// The slot map and the nodes' clients (redis_cluster.cpp), shared with running commands.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace llm_caching::cache

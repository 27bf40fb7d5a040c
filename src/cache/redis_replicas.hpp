// The replicas a Redis Cluster client reads entries from (`read_from_replicas`,
// redis_cluster.cpp): each with its pooled client (READONLY sessions) and its rest after
// failures; the replicas of a slot take turns. The choice is pure (tests/unit/
// test_redis_replicas.cpp); the client is only held here.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace llm_caching::cache {

class RedisClient;

/// A replica that failed a read (unreachable, silent, LOADING, MASTERDOWN, ...) gets no reads
/// for this long, doubled for each failure in a row up to kLongestReplicaRest; its slot's reads
/// go to its other replicas or the master meanwhile, and one read tries it again after that.
inline constexpr std::chrono::milliseconds kReplicaRest{1000};
inline constexpr std::chrono::milliseconds kLongestReplicaRest{16000};

/// One replica read from. Safe to share between threads (the rest is atomics).
class ReplicaNode {
 public:
  explicit ReplicaNode(std::shared_ptr<RedisClient> client) : client_(std::move(client)) {}

  RedisClient& client() const noexcept { return *client_; }
  /// It could not serve a read at `now`: it rests (kReplicaRest, doubled per failure in a row).
  void failed(std::chrono::steady_clock::time_point now);
  /// It answered a read (a value or nil): the next failure rests it kReplicaRest again.
  void answered();
  bool resting(std::chrono::steady_clock::time_point now) const;

 private:
  std::shared_ptr<RedisClient> client_;
  std::atomic<std::int64_t> rest_until_{0};  ///< steady_clock ticks; 0: never failed
  std::atomic<int> failures_{0};             ///< in a row
};

/// The replica of `replicas` whose turn `turn` is (turns go round), skipping resting ones; null
/// when every one rests (the master answers then) or there are none.
std::shared_ptr<ReplicaNode> pick_replica(const std::vector<std::shared_ptr<ReplicaNode>>& replicas,
                                          std::uint64_t turn,
                                          std::chrono::steady_clock::time_point now);

}  // namespace llm_caching::cache

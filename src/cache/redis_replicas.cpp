#include "cache/redis_replicas.hpp"

#include <algorithm>

namespace llm_caching::cache {

void ReplicaNode::failed(std::chrono::steady_clock::time_point now) {
  // 1, 2, 4, 8, 16 s: a replica that stays down costs one failed read per rest.
  const int row = std::min(failures_.fetch_add(1, std::memory_order_relaxed), 4);
  const auto rest =
      std::min<std::chrono::steady_clock::duration>(kReplicaRest * (1 << row), kLongestReplicaRest);
  rest_until_.store((now + rest).time_since_epoch().count(), std::memory_order_relaxed);
}

void ReplicaNode::answered() {
  // A load first: a hit writes no shared cache line while the replica is healthy.
  if (failures_.load(std::memory_order_relaxed) != 0) {
    failures_.store(0, std::memory_order_relaxed);
  }
}

bool ReplicaNode::resting(std::chrono::steady_clock::time_point now) const {
  return rest_until_.load(std::memory_order_relaxed) > now.time_since_epoch().count();
}

std::shared_ptr<ReplicaNode> pick_replica(const std::vector<std::shared_ptr<ReplicaNode>>& replicas,
                                          std::uint64_t turn,
                                          std::chrono::steady_clock::time_point now) {
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    const auto& replica = replicas[(turn + i) % replicas.size()];
    if (!replica->resting(now)) return replica;
  }
  return nullptr;
}

}  // namespace llm_caching::cache

// Test helper: a real Redis Cluster on loopback, 6 `redis-server --cluster-enabled yes` (3
// masters, 3 replicas) joined with `redis-cli --cluster create ... --cluster-replicas 1`, stopped
// on destruction. Waits only for the cluster's own steps (joining, replicas in sync, failover).
#pragma once

#include "support/redis_server.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace llmc_test {

class RedisCluster {
 public:
  RedisCluster();
  ~RedisCluster();

  /// redis+cluster://127.0.0.1:<p0>,127.0.0.1:<p1> (two seeds: any subset will do).
  std::string url() const;
  std::size_t size() const { return nodes_.size(); }
  RedisServer& node(std::size_t i) { return *nodes_[i]; }
  /// The index of the node that is a master serving slots now, for `key`'s slot.
  std::size_t master_of(const std::string& key) const;
  /// Indexes of the nodes that are masters with slots now.
  std::vector<std::size_t> masters() const;
  /// redis-cli -c (follows redirects) against a live node.
  std::string cli(const std::vector<std::string>& args) const;
  /// Polls until every live node says cluster_state:ok with every slot served, every live
  /// replica's link to its master is up, and each master's replica has all its writes (its
  /// replication offset reached the master's); throws after 30 s.
  void wait_until_healthy() const;
  /// SIGKILL of node i (a crash); it stays down.
  void kill(std::size_t i);

 private:
  std::size_t live_node() const;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<bool> alive_;
};

}  // namespace llmc_test

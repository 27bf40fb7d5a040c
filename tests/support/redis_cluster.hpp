// Test helper: a real Redis Cluster on loopback, 6 `redis-server --cluster-enabled yes` (3
// masters, 3 replicas) joined with `redis-cli --cluster create ... --cluster-replicas 1`, stopped
// on destruction. Waits only for the cluster's own steps (joining, replicas in sync, failover).
#pragma once

#include "support/redis_server.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llmc_test {

class RedisCluster {
 public:
  /// `tls`: every node TLS-only (clients, replication and the cluster bus), with a node
  /// certificate for client and server use signed by `tls->ca_cert` (its key: ca.key beside it).
  explicit RedisCluster(std::optional<RedisTls> tls = std::nullopt);
  ~RedisCluster();

  /// redis+cluster://127.0.0.1:<p0>,127.0.0.1:<p1> (two seeds: any subset will do); for a TLS
  /// cluster rediss+cluster://...?ssl_ca_certs=<the CA>.
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
  /// Polls until CLUSTER SLOTS, asked of every live node, lists every live node (each replica
  /// beside its master); throws after 30 s. Redis lists a replica there only once it has
  /// replicated something, so write to every master first (reads from replicas need it).
  void wait_until_replicas_listed() const;
  /// SIGKILL of node i (a crash); it stays down.
  void kill(std::size_t i);

 private:
  std::size_t live_node() const;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<bool> alive_;
  std::optional<RedisTls> tls_;
};

}  // namespace llmc_test

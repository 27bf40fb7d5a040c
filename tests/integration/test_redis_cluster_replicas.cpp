// Reads from Redis Cluster replicas (`read_from_replicas=true`) against a real cluster started
// by each test: 6 redis-server processes (3 masters, 3 replicas) on loopback. Entry reads land
// on the replicas (their own INFO commandstats say so), a replica's miss is asked again of the
// master (an entry the replica lacks is found, every time), and a replica killed under reads
// fails none of them: the master answers.
#include "cache/cache_url.hpp"
#include "cache/cluster_slots.hpp"
#include "cache/redis_backend.hpp"
#include "cache/run_blocking.hpp"

#include "support/redis_cluster.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace llmc_test {
namespace {

using namespace llm_caching;
using namespace llm_caching::cache;
using namespace std::chrono_literals;

RedisOptions cluster_options(const std::string& url) {
  return std::get<RedisOptions>(parse_cache_url(url));
}

/// A storage key of namespace `ns` whose digest is made from `i`.
std::string storage_key(const std::string& ns, int i) {
  return fmt::format("llm-caching:v1:{}:{:064x}", ns, i);
}

/// How many GETs the node has run since its counters were last reset (INFO commandstats).
std::uint64_t get_calls(const RedisServer& node) {
  const std::string stats = node.cli({"INFO", "commandstats"});
  constexpr std::string_view kField = "cmdstat_get:calls=";
  const std::size_t at = stats.find(kField);
  return at == std::string::npos ? 0 : std::stoull(stats.substr(at + kField.size()));
}

/// The nodes that are not among `masters` (before any is killed: the replicas).
std::vector<std::size_t> replicas(const RedisCluster& cluster,
                                  const std::vector<std::size_t>& masters) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    if (std::find(masters.begin(), masters.end(), i) == masters.end()) out.push_back(i);
  }
  return out;
}

/// The replica of master `master`.
std::size_t replica_of(RedisCluster& cluster, std::size_t master) {
  const std::string port = "master_port:" + std::to_string(cluster.node(master).port());
  for (std::size_t i : replicas(cluster, cluster.masters())) {
    if (cluster.node(i).cli({"INFO", "replication"}).find(port) != std::string::npos) return i;
  }
  throw std::runtime_error("master " + std::to_string(master) + " has no replica");
}

void reset_stats(RedisCluster& cluster, const std::vector<std::size_t>& nodes) {
  for (std::size_t i : nodes) cluster.node(i).cli({"CONFIG", "RESETSTAT"});
}

/// Writes `count` entries of namespace `ns` (value "value <i>") through a backend of its own,
/// then waits until every replica has them and is listed in the slot map (Redis lists a replica
/// only once it has replicated something): a backend opened afterwards reads from all of them.
void write_and_replicate(RedisCluster& cluster, const std::string& ns, int count) {
  RedisBackend writer(cluster_options(cluster.url()));
  for (int i = 0; i < count; ++i) {
    run_blocking(writer.put(storage_key(ns, i), "value " + std::to_string(i), 0ms));
  }
  cluster.wait_until_healthy();
  cluster.wait_until_replicas_listed();
}

TEST(RedisClusterReplicas, HitsAreReadOnReplicasAndTheirMissesOnTheMaster) {
  RedisCluster cluster;
  constexpr int kEntries = 60;
  write_and_replicate(cluster, "r", kEntries);
  RedisBackend backend(cluster_options(cluster.url() + "?read_from_replicas=true"));
  const auto masters = cluster.masters();
  const auto readers = replicas(cluster, masters);
  ASSERT_EQ(readers.size(), 3u);
  reset_stats(cluster, masters);
  reset_stats(cluster, readers);

  // One long-lived io_context, as a gateway thread has: after 16 commands the replicas' lanes
  // carry the reads, and their sessions are READONLY too (else MOVED would send them home).
  boost::asio::io_context io;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kEntries; ++i) {
      EXPECT_EQ(run_blocking(io, backend.get(storage_key("r", i))), "value " + std::to_string(i));
    }
  }
  std::uint64_t on_replicas = 0;
  for (std::size_t r : readers) {
    EXPECT_GT(get_calls(cluster.node(r)), 0u) << "replica " << r << " served no read";
    on_replicas += get_calls(cluster.node(r));
  }
  EXPECT_EQ(on_replicas, 2u * kEntries);
  for (std::size_t m : masters) EXPECT_EQ(get_calls(cluster.node(m)), 0u) << "master " << m;
  auto counters = backend.cluster_counters();
  EXPECT_EQ(counters.replica_reads, 2u * kEntries);
  EXPECT_EQ(counters.replica_misses, 0u);
  EXPECT_EQ(counters.replica_fallbacks, 0u);

  // A miss on a replica is asked of the master: one GET on each.
  const std::string absent = cluster_key(storage_key("r", kEntries));
  const std::size_t absent_master = cluster.master_of(absent);
  EXPECT_EQ(run_blocking(io, backend.get(storage_key("r", kEntries))), std::nullopt);
  EXPECT_EQ(get_calls(cluster.node(absent_master)), 1u);
  EXPECT_EQ(backend.cluster_counters().replica_misses, 1u);

  // A replica that never gets an entry (written on the master without replication: a replica
  // lagging for ever) never makes it a miss: each read finds it on the master.
  const std::string lagging = cluster_key(storage_key("lag", 1));
  const std::size_t owner = cluster.master_of(lagging);
  const std::size_t behind = replica_of(cluster, owner);
  cluster.node(owner).cli({"EVAL",
                           "redis.set_repl(redis.REPL_NONE) "
                           "return redis.call('set', KEYS[1], ARGV[1])",
                           "1", lagging, "written just now"});
  EXPECT_EQ(std::stoi(cluster.node(owner).cli({"DBSIZE"})),
            std::stoi(cluster.node(behind).cli({"DBSIZE"})) + 1);
  reset_stats(cluster, {owner, behind});
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(run_blocking(io, backend.get(storage_key("lag", 1))), "written just now") << i;
  }
  EXPECT_EQ(get_calls(cluster.node(behind)), 20u);
  EXPECT_EQ(get_calls(cluster.node(owner)), 20u);
  counters = backend.cluster_counters();
  EXPECT_EQ(counters.replica_misses, 21u);
  EXPECT_EQ(counters.replica_fallbacks, 0u);
  EXPECT_EQ(run_blocking(backend.stats()).errors, 0u);
}

TEST(RedisClusterReplicas, AReplicaKilledUnderReadsFailsNoneAndTheMasterServesItsHits) {
  RedisCluster cluster;
  constexpr int kEntries = 200;
  write_and_replicate(cluster, "k", kEntries);
  RedisBackend backend(
      cluster_options(cluster.url() + "?read_from_replicas=true&socket_timeout=0.5"));
  const std::size_t master = cluster.master_of(cluster_key(storage_key("k", 0)));
  const std::size_t victim = replica_of(cluster, master);
  boost::asio::io_context io;
  int failed = 0;
  int missed = 0;
  std::string first_failure;
  for (int i = 0; i < 1000; ++i) {
    if (i == 100) {
      reset_stats(cluster, {master});
      cluster.kill(victim);
    }
    try {
      const auto value = run_blocking(io, backend.get(storage_key("k", i % kEntries)));
      if (value != "value " + std::to_string(i % kEntries)) ++missed;
    } catch (const std::exception& e) {
      if (++failed == 1) first_failure = e.what();
    }
  }
  EXPECT_EQ(failed, 0) << first_failure;
  EXPECT_EQ(missed, 0);
  // The killed replica's slots were read on their master; the other replicas kept serving.
  EXPECT_GT(get_calls(cluster.node(master)), 0u);
  const auto counters = backend.cluster_counters();
  EXPECT_GT(counters.replica_fallbacks, 0u);
  EXPECT_GT(counters.replica_reads, 0u);
  EXPECT_EQ(run_blocking(backend.stats()).errors, 0u);
  // Writes and locks were never the replica's business.
  const std::string lock = "llm-caching:lock:" + storage_key("k", 0);
  EXPECT_TRUE(run_blocking(backend.try_lock(lock, "t", 60'000ms)));
  run_blocking(backend.unlock(lock, "t"));
}

}  // namespace
}  // namespace llmc_test

// The Redis Cluster backend (redis+cluster://) against a real cluster started by each test:
// 6 redis-server processes (3 masters, 3 replicas) on loopback. Entries, locks and release
// signals in one slot, keyless commands over every master, the library and the CLI on a cluster
// URL, a master killed during 1,000 calls, and slots resharded during 1,000 calls.
#include "agent/runtime_impl.hpp"
#include "cache/cache_url.hpp"
#include "cache/cluster_slots.hpp"
#include "cache/redis_backend.hpp"
#include "cache/run_blocking.hpp"
#include "llm_caching/agent.hpp"
#include "llm_caching/errors.hpp"

#include "support/redis_cluster.hpp"
#include "support/scripted_model.hpp"
#include "support/test_env.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <set>
#include <thread>

namespace llmc_test {
namespace {

using namespace llm_caching;
using namespace llm_caching::cache;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

RedisOptions cluster_options(const std::string& url) {
  return std::get<RedisOptions>(parse_cache_url(url));
}

/// A storage key of namespace `ns` whose digest is made from `i`.
std::string storage_key(const std::string& ns, int i) {
  return fmt::format("llm-caching:v1:{}:{:064x}", ns, i);
}

/// Polls `condition` every 20 ms; false after 20 s. Waits for the cluster's own steps.
bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

TEST(RedisCluster, EntriesLocksAndSignalsShareASlotAndKeylessCommandsCoverEveryMaster) {
  RedisCluster cluster;
  RedisBackend backend(cluster_options(cluster.url()));
  RedisBackend other(cluster_options(cluster.url()));  // another pool, as another process has
  constexpr int kEntries = 60;
  for (int i = 0; i < kEntries; ++i) {
    const auto ttl = i % 2 == 0 ? std::chrono::milliseconds(60s) : 0ms;
    run_blocking(backend.put(storage_key("t", i), "value " + std::to_string(i), ttl));
  }
  run_blocking(backend.put(storage_key("other", 0), "kept", 0ms));
  for (int i = 0; i < kEntries; ++i) {
    EXPECT_EQ(run_blocking(other.get(storage_key("t", i))), "value " + std::to_string(i));
  }
  // Spread over every master, each entry on the master of its slot, with its TTL.
  const auto masters = cluster.masters();
  ASSERT_EQ(masters.size(), 3u);
  for (std::size_t m : masters) EXPECT_GT(std::stoi(cluster.node(m).cli({"DBSIZE"})), 0);
  const std::string first = cluster_key(storage_key("t", 0));
  EXPECT_EQ(cluster.node(cluster.master_of(first)).cli({"EXISTS", first}), "1");
  const int pttl = std::stoi(cluster.cli({"PTTL", first}));
  EXPECT_GT(pttl, 50'000);
  EXPECT_LE(pttl, 60'000);
  EXPECT_EQ(cluster.cli({"PTTL", cluster_key(storage_key("t", 1))}), "-1");

  // A lock, its waiter and its release signal: scripts over several keys, no CROSSSLOT.
  const std::string lock = "llm-caching:lock:" + storage_key("t", 1);
  EXPECT_TRUE(run_blocking(backend.try_lock(lock, "holder", 60'000ms)));
  EXPECT_FALSE(run_blocking(other.try_lock(lock, "second", 60'000ms)));
  EXPECT_EQ(cluster.master_of(cluster_key(lock)),
            cluster.master_of(cluster_key(storage_key("t", 1))));
  std::atomic<bool> woken{false};
  std::thread waiter([&] {
    run_blocking(other.wait_for_unlock(lock, 20'000ms));
    woken = true;
  });
  const std::string mark = "llm-caching:waited:" + cluster_key(storage_key("t", 1));
  EXPECT_TRUE(eventually([&] { return cluster.cli({"EXISTS", mark}) == "1"; }));
  run_blocking(backend.unlock(lock, "holder"));
  waiter.join();
  EXPECT_TRUE(woken);
  EXPECT_EQ(cluster.cli({"EXISTS", cluster_key(lock)}), "0");
  EXPECT_TRUE(run_blocking(other.try_lock(lock, "second", 60'000ms)));
  run_blocking(other.unlock(lock, "second"));

  // list_keys walks every master, a page at a time, and gives storage names back.
  std::set<std::string> listed;
  std::string cursor;
  int pages = 0;
  do {
    auto page = run_blocking(backend.list_keys("llm-caching:v1:t:", cursor, 7));
    listed.insert(page.keys.begin(), page.keys.end());
    cursor = page.cursor;
  } while (!cursor.empty() && ++pages < 1000);
  EXPECT_EQ(listed.size(), static_cast<std::size_t>(kEntries));
  EXPECT_TRUE(listed.count(storage_key("t", 7)));

  const BackendStats stats = run_blocking(backend.stats());
  EXPECT_GE(stats.entries, static_cast<std::uint64_t>(kEntries + 1));  // + a release signal
  EXPECT_GT(stats.bytes, 0u);
  EXPECT_EQ(stats.writes, static_cast<std::uint64_t>(kEntries + 1));
  EXPECT_EQ(stats.errors, 0u);
  EXPECT_TRUE(run_blocking(backend.erase(storage_key("t", 0))));
  EXPECT_FALSE(run_blocking(backend.erase(storage_key("t", 0))));
  EXPECT_EQ(run_blocking(backend.clear("llm-caching:v1:t:")),
            static_cast<std::uint64_t>(kEntries - 1));
  EXPECT_EQ(run_blocking(backend.get(storage_key("t", 2))), std::nullopt);
  EXPECT_EQ(run_blocking(backend.get(storage_key("other", 0))), "kept");
}

TEST(RedisCluster, LibraryCallsAreSharedWithOtherProcessesAndTheCliCoversEveryMaster) {
  RedisCluster cluster;
  auto model = std::make_shared<llm_caching::testing::ScriptedModel>();
  const Agent agent{.model = "openai:my-custom-model"};
  RunOptions options;
  options.cache_url = cluster.url();
  options.namespace_ = "lib";
  options.model_client = model;
  options.strict_cache = true;
  options.custom_costs["my-custom-model"] = ModelCosts{1.0, 2.0, 0.5, 0.1};
  std::vector<std::string> keys;
  for (int i = 0; i < 30; ++i) {
    keys.push_back(cached_agent_run_sync(agent, "q" + std::to_string(i), "t", options).cache_key);
  }
  EXPECT_EQ(model->calls(), 30);
  const std::string url = cluster.url();
  // Another process reads them (no L1 of ours there).
  EXPECT_THAT(run_command({LLMC_CLI_PATH, "--cache-url", url, "cache", "get", keys[3]}),
              HasSubstr(llm_caching::testing::ScriptedModel::answer_text("q3")));
  EXPECT_THAT(run_command({LLMC_CLI_PATH, "--cache-url", url, "--json", "cache", "stats"}),
              HasSubstr("\"entries\":30"));
  TempDir dir;
  const std::string copy = "sqlite://" + dir.file("copy.db");
  run_command({LLMC_CLI_PATH, "cache", "export", url, copy});
  EXPECT_THAT(run_command({LLMC_CLI_PATH, "--cache-url", copy, "--json", "cache", "stats"}),
              HasSubstr("\"entries\":30"));
  run_command({LLMC_CLI_PATH, "--cache-url", url, "cache", "prune"});
  run_command({LLMC_CLI_PATH, "--cache-url", url, "cache", "clear", "--namespace", "lib"});
  // No entry is left; the clear mark and the counters (llm-caching:{meta}:*) are.
  for (std::size_t m : cluster.masters()) {
    EXPECT_EQ(cluster.node(m).cli({"EVAL", "return #redis.call('keys', 'llm-caching:v1:*')", "0"}),
              "0");
  }
  EXPECT_EQ(cluster.cli({"EXISTS", "llm-caching:{meta}:cleared"}), "1");
}

TEST(RedisClusterTls, EntriesAndLocksOverTlsOnEveryMaster) {
  const TestCertificates certs = make_test_certificates();
  RedisCluster cluster(RedisTls{certs.ca_cert, certs.server_cert, certs.server_key, false});
  RedisBackend backend(cluster_options(cluster.url()));
  for (int i = 0; i < 30; ++i) {
    run_blocking(backend.put(storage_key("tls", i), "secret " + std::to_string(i), 60'000ms));
  }
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(run_blocking(backend.get(storage_key("tls", i))), "secret " + std::to_string(i));
  }
  for (std::size_t m : cluster.masters()) EXPECT_GT(std::stoi(cluster.node(m).cli({"DBSIZE"})), 0);
  const std::string lock = "llm-caching:lock:" + storage_key("tls", 3);
  EXPECT_TRUE(run_blocking(backend.try_lock(lock, "t", 60'000ms)));
  run_blocking(backend.unlock(lock, "t"));
  EXPECT_EQ(run_blocking(backend.stats()).entries, 30u);
  // The replicas are read over TLS too (their sessions READONLY), once they have the entries
  // and the slot map lists them.
  cluster.wait_until_healthy();
  cluster.wait_until_replicas_listed();
  RedisBackend replica_reader(cluster_options(cluster.url() + "&read_from_replicas=true"));
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(run_blocking(replica_reader.get(storage_key("tls", i))),
              "secret " + std::to_string(i));
  }
  EXPECT_EQ(replica_reader.cluster_counters().replica_reads, 30u);
  EXPECT_EQ(replica_reader.cluster_counters().replica_fallbacks, 0u);
  // Without the CA the nodes' certificates are not trusted: a CacheError saying so.
  RedisBackend untrusted(
      cluster_options("rediss+cluster://127.0.0.1:" + std::to_string(cluster.node(0).port())));
  try {
    run_blocking(untrusted.get(storage_key("tls", 1)));
    ADD_FAILURE() << "an untrusted cluster served a read";
  } catch (const CacheError& e) {
    EXPECT_THAT(e.what(), HasSubstr("certificate verify failed"));
  }
}

TEST(RedisClusterFailover, AMasterKilledDuringAThousandCallsLosesNoReplicatedEntry) {
  RedisCluster cluster;
  auto model = std::make_shared<llm_caching::testing::ScriptedModel>();
  const Agent agent{.model = "openai:my-custom-model"};
  RunOptions options;
  options.cache_url = cluster.url() + "?socket_timeout=0.5";
  options.namespace_ = "failover";
  options.model_client = model;
  options.custom_costs["my-custom-model"] = ModelCosts{1.0, 2.0, 0.5, 0.1};
  std::vector<std::string> before;
  for (int i = 0; i < 200; ++i) {
    before.push_back(
        cached_agent_run_sync(agent, "before " + std::to_string(i), "t", options).cache_key);
  }
  cluster.wait_until_healthy();  // every entry written is on its master's replica too
  const std::size_t victim = cluster.master_of(cluster_key(before[0]));

  for (int i = 0; i < 1000; ++i) {
    if (i == 100) cluster.kill(victim);
    if (i == 500) cluster.wait_until_healthy();  // the replica was promoted
    const std::string prompt = "during " + std::to_string(i);
    const RunResult result = cached_agent_run_sync(agent, prompt, "t", options);
    ASSERT_EQ(result.output, llm_caching::testing::ScriptedModel::answer_text(prompt)) << i;
  }
  EXPECT_EQ(model->calls(), 1200);
  EXPECT_NE(cluster.master_of(cluster_key(before[0])), victim);
  for (const auto& key : before) EXPECT_EQ(cluster.cli({"EXISTS", cluster_key(key)}), "1") << key;
  // Caching resumed without a restart: a new answer reaches the promoted master.
  int next = 0;
  EXPECT_TRUE(eventually([&] {
    const std::string key =
        cached_agent_run_sync(agent, "after " + std::to_string(next++), "t", options).cache_key;
    return cluster.master_of(cluster_key(key)) != victim &&
           cluster.cli({"EXISTS", cluster_key(key)}) == "1";
  }));
  // ... including on the shard that failed over.
  EXPECT_TRUE(eventually([&] {
    const RunResult result =
        cached_agent_run_sync(agent, "after " + std::to_string(next++), "t", options);
    const std::string name = cluster_key(result.cache_key);
    return cluster.master_of(name) == cluster.master_of(cluster_key(before[0])) &&
           cluster.cli({"EXISTS", name}) == "1";
  }));
}

/// The parameter: read_from_replicas (a replica of a moving slot's master answers nil for a key
/// migrated away, then MOVED: the master answers instead).
class RedisClusterReshard : public ::testing::TestWithParam<bool> {};

TEST_P(RedisClusterReshard, SlotsMovedDuringAThousandCallsFailNoneAndNeverCrossSlot) {
  RedisCluster cluster;
  constexpr int kEntries = 400;
  {
    RedisBackend writer(cluster_options(cluster.url()));
    for (int i = 0; i < kEntries; ++i) {
      run_blocking(writer.put(storage_key("r", i), "v" + std::to_string(i), 0ms));
    }
  }
  if (GetParam()) {  // the replicas have the entries, and the slot map lists them
    cluster.wait_until_healthy();
    cluster.wait_until_replicas_listed();
  }
  const std::string query = GetParam() ? "?read_from_replicas=true" : "";
  RedisBackend backend(cluster_options(cluster.url() + query));
  const auto masters = cluster.masters();
  const std::string from = cluster.node(masters[0]).cli({"CLUSTER", "MYID"});
  const std::string to = cluster.node(masters[1]).cli({"CLUSTER", "MYID"});
  const std::string seed = "127.0.0.1:" + std::to_string(cluster.node(masters[0]).port());
  std::atomic<bool> resharded{false};
  std::string reshard_error;
  std::thread reshard([&] {
    try {
      // A thousand slots of the first master move, their keys with them (MIGRATE).
      run_command({"redis-cli", "--cluster", "reshard", seed, "--cluster-from", from,
                   "--cluster-to", to, "--cluster-slots", "1000", "--cluster-yes"});
    } catch (const std::exception& e) {
      reshard_error = e.what();
    }
    resharded = true;
  });
  int failed = 0;
  int calls = 0;
  std::string first_failure;
  // At least 1,000 calls, and on until the reshard is over: each reads an entry, takes the lock
  // of a new one, writes it and releases the lock.
  for (; calls < 1000 || !resharded; ++calls) {
    const int i = calls % kEntries;
    const std::string fresh = storage_key("new", calls);
    try {
      EXPECT_EQ(run_blocking(backend.get(storage_key("r", i))), "v" + std::to_string(i));
      const std::string lock = "llm-caching:lock:" + fresh;
      EXPECT_TRUE(run_blocking(backend.try_lock(lock, "t", 60'000ms)));
      run_blocking(backend.put(fresh, "fresh", 0ms));
      run_blocking(backend.unlock(lock, "t"));
    } catch (const std::exception& e) {
      if (++failed == 1) first_failure = e.what();
    }
  }
  reshard.join();
  EXPECT_EQ(reshard_error, "");
  EXPECT_GE(calls, 1000);
  EXPECT_EQ(failed, 0) << first_failure;
  EXPECT_THAT(first_failure, ::testing::Not(HasSubstr("CROSSSLOT")));
  EXPECT_EQ(run_blocking(backend.stats()).errors, 0u);
  // The calls did meet the moving slots: they were redirected, and followed.
  const auto followed = backend.cluster_counters();
  EXPECT_GT(followed.moved, 0u);
  std::printf(
      "reshard: %d calls, %llu MOVED, %llu ASK, %llu retried, %llu slot maps; replicas: %llu "
      "reads, %llu misses, %llu fallbacks\n",
      calls, static_cast<unsigned long long>(followed.moved),
      static_cast<unsigned long long>(followed.ask),
      static_cast<unsigned long long>(followed.retried),
      static_cast<unsigned long long>(followed.refreshes),
      static_cast<unsigned long long>(followed.replica_reads),
      static_cast<unsigned long long>(followed.replica_misses),
      static_cast<unsigned long long>(followed.replica_fallbacks));
  // The slots moved; every entry is still there.
  EXPECT_EQ(cluster.node(masters[0]).cli({"CLUSTER", "COUNTKEYSINSLOT", "0"}), "0");
  for (int i = 0; i < kEntries; ++i) {
    EXPECT_EQ(run_blocking(backend.get(storage_key("r", i))), "v" + std::to_string(i));
  }
  EXPECT_EQ(run_blocking(backend.get(storage_key("new", calls - 1))), "fresh");
  if (GetParam()) EXPECT_GT(followed.replica_reads, 0u);
}

INSTANTIATE_TEST_SUITE_P(ReadFromReplicas, RedisClusterReshard, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Replicas" : "Masters"; });

TEST(RedisClusterMigration, AHalfMigratedSlotIsServedThroughAskAndItsScriptsWaitForTheMove) {
  RedisCluster cluster;
  RedisBackend backend(cluster_options(cluster.url()));
  const std::string key = storage_key("ask", 1);
  const std::string name = cluster_key(key);
  run_blocking(backend.put(key, "moving", 0ms));
  const std::string slot = cluster.cli({"CLUSTER", "KEYSLOT", name});
  const std::size_t source = cluster.master_of(name);
  std::size_t target = source;
  for (std::size_t m : cluster.masters()) {
    if (m != source) target = m;
  }
  RedisServer& from = cluster.node(source);
  RedisServer& to = cluster.node(target);
  const std::string from_id = from.cli({"CLUSTER", "MYID"});
  const std::string to_id = to.cli({"CLUSTER", "MYID"});
  // What redis-cli --cluster reshard does for one slot, stopped half-way.
  to.cli({"CLUSTER", "SETSLOT", slot, "IMPORTING", from_id});
  from.cli({"CLUSTER", "SETSLOT", slot, "MIGRATING", to_id});
  from.cli({"MIGRATE", "127.0.0.1", std::to_string(to.port()), name, "0", "5000"});

  // The entry is on the importing node now: ASK, then ASKING + GET there.
  EXPECT_EQ(run_blocking(backend.get(key)), "moving");
  EXPECT_GT(backend.cluster_counters().ask, 0u);

  // The lock script names two keys the importing node lacks: TRYAGAIN until the slot has moved.
  const std::string lock = "llm-caching:lock:" + key;
  std::atomic<int> locked{-1};
  std::string lock_error;
  std::thread locker([&] {
    try {
      locked = run_blocking(backend.try_lock(lock, "t", 60'000ms)) ? 1 : 0;
    } catch (const std::exception& e) {
      lock_error = e.what();
      locked = 0;
    }
  });
  EXPECT_TRUE(eventually([&] { return backend.cluster_counters().retried > 0 || locked >= 0; }));
  to.cli({"CLUSTER", "SETSLOT", slot, "NODE", to_id});
  for (std::size_t m : cluster.masters()) {
    if (m != target) cluster.node(m).cli({"CLUSTER", "SETSLOT", slot, "NODE", to_id});
  }
  locker.join();
  EXPECT_EQ(locked, 1) << lock_error;
  EXPECT_EQ(to.cli({"GET", cluster_key(lock)}), "t");
  // The slot map still names the old master: MOVED, and the map is patched.
  EXPECT_EQ(run_blocking(backend.get(key)), "moving");
  EXPECT_GT(backend.cluster_counters().moved, 0u);
}

}  // namespace
}  // namespace llmc_test

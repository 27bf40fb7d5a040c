// Single-flight across processes (docs/SINGLE_FLIGHT.md): several `llm-caching serve` processes
// sharing one Redis, or one SQLite file, make one upstream call for a burst of identical
// requests; a lock holder killed with SIGKILL is replaced after its lock expires (Redis) or at once
// (SQLite: the kernel frees a dead process's file locks).
#include <gtest/gtest.h>

#include "cache/cache_url.hpp"
#include "cache/redis_backend.hpp"
#include "cache/run_blocking.hpp"
#include "integration/gateway_harness.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"

#include <signal.h>

#include <algorithm>
#include <future>
#include <set>
#include <thread>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;
using namespace std::chrono_literals;

using Headers = std::vector<std::pair<std::string, std::string>>;

std::future<HttpResponse> ask_async(const std::string& base_url, const std::string& text,
                                    Headers headers = {}) {
  return std::async(std::launch::async, [base_url, text, headers]() mutable {
    headers.emplace_back("authorization", "Bearer sk-cross-process");
    return send(post(base_url + "/v1/chat/completions", openai_body(text), headers));
  });
}

struct BurstOutcome {
  int ok = 0;
  int misses = 0;
  int coalesced = 0;
  int hits = 0;
  std::set<std::string> bodies;
};

/// Waits for every answer and tallies them; a request that got no answer is a test failure.
BurstOutcome collect(std::vector<std::future<HttpResponse>>& pending) {
  BurstOutcome outcome;
  for (auto& p : pending) {
    HttpResponse r;
    try {
      r = p.get();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "a request got no answer: " << e.what();
      continue;
    }
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) continue;
    ++outcome.ok;
    outcome.bodies.insert(r.body);
    const std::string cache = r.header("x-llm-cache");
    if (cache == "MISS") ++outcome.misses;
    if (cache == "COALESCED") {
      ++outcome.coalesced;
      EXPECT_EQ(r.header("x-llm-cost-usd"), "0");
    }
    if (cache == "HIT") ++outcome.hits;
  }
  return outcome;
}

/// `count` identical requests at once, spread round-robin over the gateways.
BurstOutcome burst(const std::vector<std::unique_ptr<SharedCacheGateway>>& gateways, int count,
                   const std::string& text) {
  std::vector<std::future<HttpResponse>> pending;
  for (int i = 0; i < count; ++i) {
    pending.push_back(ask_async(gateways[i % gateways.size()]->base_url(), text));
  }
  return collect(pending);
}

/// Ten waiters of a holder that was killed mid-call: all answered with one body, one of them
/// (which took the freed or expired lock) by a call of its own, the rest from that call.
void expect_one_call_replaced_the_dead_holders(const BurstOutcome& outcome,
                                               const FakeProvider& fake) {
  EXPECT_EQ(outcome.ok, 10);
  EXPECT_EQ(outcome.bodies.size(), 1u);
  EXPECT_EQ(outcome.misses, 1);
  EXPECT_EQ(outcome.coalesced + outcome.hits, 9);
  EXPECT_EQ(upstream_calls(fake), 2);  // the dead holder's call and exactly one more
}

/// Polls `done` every 20 ms, at most `tries` times; true once it held.
template <class Condition>
bool eventually(Condition done, int tries = 500) {
  for (int i = 0; i < tries; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

TEST(RedisLocks, OneHolderCompareAndDeleteAndExpiry) {
  using llm_caching::cache::run_blocking;
  llmc_test::RedisServer redis;
  const auto options =
      std::get<llm_caching::RedisOptions>(llm_caching::cache::parse_cache_url(redis.url()));
  llm_caching::cache::RedisBackend first(options);
  llm_caching::cache::RedisBackend second(options);  // another pool, as another process has

  EXPECT_TRUE(run_blocking(first.try_lock("llm-caching:lock:k", "token-1", 60'000ms)));
  EXPECT_FALSE(run_blocking(second.try_lock("llm-caching:lock:k", "token-2", 60'000ms)));
  EXPECT_EQ(redis.cli({"GET", "llm-caching:lock:k"}), "token-1");
  // A wrong token never deletes the lock; the holder's does.
  run_blocking(second.unlock("llm-caching:lock:k", "token-2"));
  EXPECT_EQ(redis.cli({"GET", "llm-caching:lock:k"}), "token-1");
  run_blocking(first.unlock("llm-caching:lock:k", "token-1"));
  EXPECT_EQ(redis.cli({"EXISTS", "llm-caching:lock:k"}), "0");

  // Redis expires a dead holder's lock; the late holder cannot delete its successor's.
  EXPECT_TRUE(run_blocking(first.try_lock("llm-caching:lock:k", "late", 100ms)));
  const std::string pttl = redis.cli({"PTTL", "llm-caching:lock:k"});
  EXPECT_GT(std::stoll(pttl), 0);
  EXPECT_LE(std::stoll(pttl), 100);
  EXPECT_TRUE(eventually([&] { return redis.cli({"EXISTS", "llm-caching:lock:k"}) == "0"; }));
  EXPECT_TRUE(run_blocking(second.try_lock("llm-caching:lock:k", "successor", 60'000ms)));
  run_blocking(first.unlock("llm-caching:lock:k", "late"));
  EXPECT_EQ(redis.cli({"GET", "llm-caching:lock:k"}), "successor");
}

// The fast path for waiters in other processes: a waiter blocked on the lock's release signal
// wakes when the holder unlocks, long before its own wait would end.
TEST(RedisLocks, AWaiterWakesWhenTheHolderReleasesTheLock) {
  using llm_caching::cache::run_blocking;
  llmc_test::RedisServer redis;
  const auto options =
      std::get<llm_caching::RedisOptions>(llm_caching::cache::parse_cache_url(redis.url()));
  llm_caching::cache::RedisBackend holder(options);
  llm_caching::cache::RedisBackend waiter(options);  // another pool, as another process has
  ASSERT_TRUE(waiter.notifies_unlock());

  ASSERT_TRUE(run_blocking(holder.try_lock("llm-caching:lock:w", "token-1", 60'000ms)));
  // An hour: only the release can end this wait within the test.
  auto woken = std::async(std::launch::async, [&] {
    run_blocking(waiter.wait_for_unlock("llm-caching:lock:w", std::chrono::hours(1)));
  });
  // The waiter is blocked on the signal (its own connection, seen by the server) ...
  ASSERT_TRUE(eventually([&] {
    return redis.cli({"CLIENT", "LIST"}).find("cmd=brpoplpush") != std::string::npos;
  }));
  EXPECT_EQ(woken.wait_for(0s), std::future_status::timeout);
  // ... and a wrong token's unlock signals nothing.
  run_blocking(waiter.unlock("llm-caching:lock:w", "token-2"));
  EXPECT_EQ(redis.cli({"EXISTS", "llm-caching:released:w"}), "0");
  EXPECT_EQ(woken.wait_for(0s), std::future_status::timeout);

  run_blocking(holder.unlock("llm-caching:lock:w", "token-1"));
  ASSERT_EQ(woken.wait_for(60s), std::future_status::ready);  // a hang guard, not a timing
  woken.get();
  // The signal stays for waiters that come a little later, until the next holder takes the lock.
  EXPECT_EQ(redis.cli({"EXISTS", "llm-caching:released:w"}), "1");
  run_blocking(waiter.wait_for_unlock("llm-caching:lock:w", std::chrono::hours(1)));
  EXPECT_TRUE(run_blocking(waiter.try_lock("llm-caching:lock:w", "token-3", 60'000ms)));
  EXPECT_EQ(redis.cli({"EXISTS", "llm-caching:released:w"}), "0");
  run_blocking(waiter.unlock("llm-caching:lock:w", "token-3"));
}

TEST(CrossProcessFlight, FourGatewaysSharingRedisMakeOneUpstreamCallForAHundredRequests) {
  llmc_test::RedisServer redis;
  // The upstream answers after a second, so the burst arrives while the one call is out.
  FakeProvider fake{{.delay = 1000ms}};
  std::vector<std::unique_ptr<SharedCacheGateway>> gateways;
  for (int i = 0; i < 4; ++i) {
    gateways.push_back(std::make_unique<SharedCacheGateway>(fake, redis.url()));
  }
  const BurstOutcome outcome = burst(gateways, 100, "one call for four processes");
  EXPECT_EQ(outcome.ok, 100);
  EXPECT_EQ(outcome.bodies.size(), 1u);
  EXPECT_EQ(outcome.misses, 1);
  EXPECT_EQ(outcome.misses + outcome.coalesced + outcome.hits, 100);
  EXPECT_EQ(upstream_calls(fake), 1);
  // No lock is left behind once the answer landed.
  EXPECT_EQ(redis.cli({"--scan", "--pattern", "llm-caching:lock:*"}), "");
}

TEST(CrossProcessFlight, FourGatewaysSharingARedisClusterMakeOneUpstreamCallForAHundredRequests) {
  llmc_test::RedisCluster cluster;
  FakeProvider fake{{.delay = 1000ms}};
  std::vector<std::unique_ptr<SharedCacheGateway>> gateways;
  for (int i = 0; i < 4; ++i) {
    gateways.push_back(std::make_unique<SharedCacheGateway>(fake, cluster.url()));
  }
  const BurstOutcome outcome = burst(gateways, 100, "one call for four processes on a cluster");
  EXPECT_EQ(outcome.ok, 100);
  EXPECT_EQ(outcome.bodies.size(), 1u);
  EXPECT_EQ(outcome.misses, 1);
  EXPECT_EQ(outcome.misses + outcome.coalesced + outcome.hits, 100);
  EXPECT_EQ(upstream_calls(fake), 1);
  for (std::size_t m : cluster.masters()) {
    EXPECT_EQ(cluster.node(m).cli({"--scan", "--pattern", "llm-caching:lock:*"}), "");
  }
}

// With reads from replicas, a replica's miss (it may lag the holder's write) is asked again of
// the master before the lock is taken, and the reads under the lock do the same: still one call.
TEST(CrossProcessFlight, FourGatewaysReadingClusterReplicasMakeOneUpstreamCallForAHundredRequests) {
  llmc_test::RedisCluster cluster;
  // A key on each master (slots 3300, 7365, 15495): Redis lists a replica in the slot map only
  // once it has replicated something.
  for (const char* key : {"b", "c", "a"}) cluster.cli({"SET", key, "1"});
  cluster.wait_until_healthy();
  cluster.wait_until_replicas_listed();
  FakeProvider fake{{.delay = 1000ms}};
  std::vector<std::unique_ptr<SharedCacheGateway>> gateways;
  for (int i = 0; i < 4; ++i) {
    gateways.push_back(
        std::make_unique<SharedCacheGateway>(fake, cluster.url() + "?read_from_replicas=true"));
  }
  const auto masters = cluster.masters();
  for (std::size_t i = 0; i < cluster.size(); ++i) cluster.node(i).cli({"CONFIG", "RESETSTAT"});
  const BurstOutcome outcome = burst(gateways, 100, "one call for four processes on replicas");
  EXPECT_EQ(outcome.ok, 100);
  EXPECT_EQ(outcome.bodies.size(), 1u);
  EXPECT_EQ(outcome.misses, 1);
  EXPECT_EQ(outcome.misses + outcome.coalesced + outcome.hits, 100);
  EXPECT_EQ(upstream_calls(fake), 1);
  // The lookups went to the replicas (a GET there for each gateway's first lookup at least).
  std::uint64_t replica_gets = 0;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    if (std::find(masters.begin(), masters.end(), i) != masters.end()) continue;
    const std::string stats = cluster.node(i).cli({"INFO", "commandstats"});
    const std::size_t at = stats.find("cmdstat_get:calls=");
    if (at != std::string::npos) replica_gets += std::stoull(stats.substr(at + 18));
  }
  EXPECT_GE(replica_gets, 4u);
  for (std::size_t m : masters) {
    EXPECT_EQ(cluster.node(m).cli({"--scan", "--pattern", "llm-caching:lock:*"}), "");
  }
}

TEST(CrossProcessFlight, TwoGatewaysSharingOneSqliteFileMakeOneUpstreamCall) {
  llmc_test::TempDir dir;
  const std::string url = "sqlite://" + dir.file("shared.db");
  FakeProvider fake{{.delay = 1000ms}};
  std::vector<std::unique_ptr<SharedCacheGateway>> gateways;
  for (int i = 0; i < 2; ++i) gateways.push_back(std::make_unique<SharedCacheGateway>(fake, url));
  const BurstOutcome outcome = burst(gateways, 40, "one call for one file");
  EXPECT_EQ(outcome.ok, 40);
  EXPECT_EQ(outcome.bodies.size(), 1u);
  EXPECT_EQ(outcome.misses, 1);
  EXPECT_EQ(upstream_calls(fake), 1);
}

TEST(CrossProcessFlight, AHolderKilledMidCallIsReplacedAfterItsLockExpires) {
  // The lock's time to live is what the waiters wait out for the dead holder, and also all the
  // time the waiter that takes the lock next has for its own call, its entry's write and its
  // unlock: should that outrun the lock (a sanitizer build on a loaded machine), another waiter
  // takes the lock and calls too. 5 s: the test takes seconds, and the replacing call has room.
  // The waiters' wait is a hang guard, far beyond the lock's expiry.
  llmc_test::ScopedEnv lock_ttl("LLM_CACHE_LOCK_TTL_MS", "5000");
  llmc_test::ScopedEnv lock_wait("LLM_CACHE_LOCK_WAIT_MS", "60000");
  llmc_test::RedisServer redis;
  FakeProvider fake;
  auto holder = std::make_unique<SharedCacheGateway>(fake, redis.url());
  std::vector<std::unique_ptr<SharedCacheGateway>> waiters;
  for (int i = 0; i < 2; ++i) {
    waiters.push_back(std::make_unique<SharedCacheGateway>(fake, redis.url()));
  }

  // The holder's upstream call is slow (the behaviour header does not change the cache key).
  const std::string text = "the holder dies";
  auto doomed = ask_async(holder->base_url(), text, {{"x-fake-behavior", "delay-60000"}});
  ASSERT_TRUE(eventually(
      [&] {
        return !redis.cli({"--scan", "--pattern", "llm-caching:lock:*"}).empty() &&
               upstream_calls(fake) == 1;
      },
      3000))
      << "the holder never took the lock and called upstream";

  const BurstOutcome outcome = [&] {
    std::vector<std::future<HttpResponse>> pending;
    for (int i = 0; i < 10; ++i) pending.push_back(ask_async(waiters[i % 2]->base_url(), text));
    // SIGKILL: no unlock, no cleanup; only the lock's expiry frees the key.
    EXPECT_EQ(::kill(holder->pid(), SIGKILL), 0);
    return collect(pending);
  }();
  expect_one_call_replaced_the_dead_holders(outcome, fake);
  try {
    doomed.get();  // the killed gateway's connection broke; whatever it says is not checked
  } catch (const std::exception&) {
  }
}

TEST(CrossProcessFlight, ASqliteHolderKilledMidCallFreesTheKeyAtOnce) {
  // A lock time to live far longer than the clients wait (20 s, below): the waiters must not
  // depend on it. The kernel releases the killed holder's file lock when the process dies.
  llmc_test::ScopedEnv lock_ttl("LLM_CACHE_LOCK_TTL_MS", "120000");
  llmc_test::TempDir dir;
  const std::string url = "sqlite://" + dir.file("shared.db");
  FakeProvider fake;
  auto holder = std::make_unique<SharedCacheGateway>(fake, url);
  std::vector<std::unique_ptr<SharedCacheGateway>> waiters;
  for (int i = 0; i < 2; ++i) waiters.push_back(std::make_unique<SharedCacheGateway>(fake, url));

  const std::string text = "the SQLite holder dies";
  auto doomed = ask_async(holder->base_url(), text, {{"x-fake-behavior", "delay-60000"}});
  ASSERT_TRUE(eventually([&] { return upstream_calls(fake) == 1; }))
      << "the holder never called upstream";
  std::vector<std::future<HttpResponse>> pending;
  for (int i = 0; i < 10; ++i) {
    pending.push_back(std::async(std::launch::async, [base = waiters[i % 2]->base_url(), text] {
      boost::asio::io_context io;
      llm_caching::providers::HttpClient client(
          io.get_executor(), llm_caching::providers::HttpClientOptions{.read_timeout = 20s});
      auto request = post(base + "/v1/chat/completions", openai_body(text),
                          {{"authorization", "Bearer sk-cross-process"}});
      return llmc_test::run_sync(io, client.send(std::move(request)));
    }));
  }
  // Let the waiters find the lock held before the holder dies.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(::kill(holder->pid(), SIGKILL), 0);
  const BurstOutcome outcome = collect(pending);
  expect_one_call_replaced_the_dead_holders(outcome, fake);
  try {
    doomed.get();
  } catch (const std::exception&) {
  }
}

}  // namespace

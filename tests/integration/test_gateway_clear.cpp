// What a running gateway does when the shared store changes under it (issue 32): `llm-caching
// cache clear` and `cache rm` reach its memory tier (the store's clear mark, DESIGN §5) on every
// backend; a failing store shows in llmc_gateway_backend_errors_total; Redis keeps the hit, miss
// and write counters of every process; and the CLI's `ask` and the gateway key a call to a
// custom upstream alike (one scope rule, DESIGN §3).
#include "integration/gateway_harness.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"

#include <gtest/gtest.h>

namespace {

using namespace gateway_test;
using namespace std::chrono_literals;
using llmc_test::FakeProvider;

/// `llm-caching --cache-url URL serve` on a free port (log to a file), misses to `fake`.
class Serve {
 public:
  Serve(const FakeProvider& fake, const std::string& cache_url, std::vector<std::string> extra = {})
      : process_(argv(fake, cache_url, std::move(extra))), port_(port_of(process_.ready_line())) {}

  HttpResponse ask(const std::string& text) const {
    return send(post(url("/v1/chat/completions"), openai_body(text),
                     {{"authorization", "Bearer sk-clear"}}));
  }
  std::string metrics() const {
    HttpRequest request;
    request.method = "GET";
    request.url = url("/metrics");
    return send(std::move(request)).body;
  }
  int stop() { return process_.stop(); }

 private:
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<std::string> argv(const FakeProvider& fake, const std::string& cache_url,
                                std::vector<std::string> extra) {
    clear_proxy_environment();
    std::vector<std::string> args = {"/bin/sh", "-c",
                                     "exec \"$@\" 2>'" + dir_.file("stderr.log") + "'", "sh"};
    for (const std::string& arg :
         {std::string(kCliPath), std::string("--cache-url"), cache_url, std::string("serve"),
          std::string("--listen"), std::string("127.0.0.1:0"), std::string("--threads"),
          std::string("2"), std::string("--log-level"), std::string("warn"),
          std::string("--upstream"), "openai=" + fake.base_url() + "/v1"}) {
      args.push_back(arg);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  llmc_test::TempDir dir_;
  llmc_test::ChildProcess process_;
  std::uint16_t port_;
};

llmc_test::ShellResult cli(const std::string& cache_url, const std::string& args) {
  return llmc_test::run_shell(std::string(kCliPath) + " --cache-url " + quoted(cache_url) + " " +
                              args + " 2>&1");
}

/// Asks until the gateway answers MISS; returns how many HITs came first. The 20 s bound only
/// turns a gateway that never drops its memory tier into a failure (the documented bound is
/// the clear-check interval, 250 ms, plus one read of the mark).
int hits_before_a_miss(const Serve& gateway, const std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  int hits = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const HttpResponse answer = gateway.ask(text);
    EXPECT_EQ(answer.status, 200) << answer.body;
    const std::string status = answer.header("x-llm-cache");
    if (status == "MISS") return hits;
    EXPECT_EQ(status, "HIT");
    ++hits;
    std::this_thread::sleep_for(5ms);
  }
  ADD_FAILURE() << "still answered HIT 20 s after the clear";
  return hits;
}

/// The store a test runs against, started on demand.
struct Store {
  std::string name;
  std::function<std::string(llmc_test::TempDir&)> url;
};

class ClearReachesTheGateway : public ::testing::TestWithParam<Store> {
 protected:
  llmc_test::TempDir dir_;
  FakeProvider fake_;
};

TEST_P(ClearReachesTheGateway, ACacheClearTurnsTheNextHitIntoAMiss) {
  const std::string url = GetParam().url(dir_);
  Serve gateway(fake_, url);
  const HttpResponse first = gateway.ask("clear me");
  ASSERT_EQ(first.header("x-llm-cache"), "MISS");
  // Answered from the memory tier (the write to the store may still be under way).
  ASSERT_EQ(gateway.ask("clear me").header("x-llm-cache"), "HIT");
  // The store has the entry before it is cleared: the gateway writes behind, and a write that
  // lands after the clear stores the answer again.
  const std::string key = first.header("x-llm-cache-key");
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (cli(url, "cache get " + key).exit_code != 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }

  const auto cleared = cli(url, "cache clear");
  ASSERT_EQ(cleared.exit_code, 0) << cleared.output;
  EXPECT_NE(cleared.output.find("removed 1 entries"), std::string::npos) << cleared.output;
  const std::int64_t calls_before = upstream_calls(fake_);
  hits_before_a_miss(gateway, "clear me");
  EXPECT_EQ(upstream_calls(fake_), calls_before + 1);
  EXPECT_EQ(gateway.ask("clear me").header("x-llm-cache"), "HIT");  // stored again
}

TEST_P(ClearReachesTheGateway, ACacheRmOfTheKeyTurnsTheNextHitIntoAMiss) {
  const std::string url = GetParam().url(dir_);
  Serve gateway(fake_, url);
  const HttpResponse first = gateway.ask("remove me");
  ASSERT_EQ(first.header("x-llm-cache"), "MISS");
  const std::string key = first.header("x-llm-cache-key");
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  llmc_test::ShellResult removed;
  do {  // until the gateway's write behind has reached the store
    removed = cli(url, "cache rm " + key);
  } while (removed.exit_code != 0 && std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(removed.exit_code, 0) << removed.output;
  hits_before_a_miss(gateway, "remove me");
}

INSTANTIATE_TEST_SUITE_P(
    Backends, ClearReachesTheGateway,
    ::testing::Values(
        Store{"sqlite", [](llmc_test::TempDir& d) { return "sqlite://" + d.file("cache.db"); }},
        Store{"dir", [](llmc_test::TempDir& d) { return "dir://" + d.file("entries"); }},
        Store{"redis",
              [](llmc_test::TempDir&) {
                static llmc_test::RedisServer redis;  // one server for this suite's cases
                redis.cli({"FLUSHALL"});
                return redis.url();
              }},
        Store{"cluster",
              [](llmc_test::TempDir&) {
                static llmc_test::RedisCluster cluster;
                for (const std::size_t i : cluster.masters()) cluster.node(i).cli({"FLUSHALL"});
                return cluster.url();
              }}),
    [](const ::testing::TestParamInfo<Store>& info) { return info.param.name; });

std::uint64_t counter(const std::string& metrics, const std::string& labels) {
  const std::string line = "llmc_gateway_backend_errors_total{" + labels + "} ";
  const auto at = metrics.find(line);
  if (at == std::string::npos) return ~std::uint64_t{0};
  return std::stoull(metrics.substr(at + line.size()));
}

TEST(GatewayBackendErrors, AKilledRedisCountsEachFailedOperation) {
  llmc_test::RedisServer redis;
  FakeProvider fake;
  Serve gateway(fake, redis.url() + "?socket_connect_timeout=0.2&socket_timeout=1",
                {"--l1-mb", "0"});
  ASSERT_EQ(gateway.ask("before").header("x-llm-cache"), "MISS");
  const std::string healthy = gateway.metrics();
  EXPECT_EQ(counter(healthy, R"(backend="redis",op="get")"), 0u) << healthy;
  EXPECT_EQ(counter(healthy, R"(backend="redis",op="put")"), 0u) << healthy;

  redis.kill();
  const HttpResponse degraded = gateway.ask("while down");  // degrades: a miss, answered
  EXPECT_EQ(degraded.status, 200) << degraded.body;
  const std::string down = gateway.metrics();
  EXPECT_GE(counter(down, R"(backend="redis",op="get")"), 1u) << down;
  EXPECT_NE(counter(down, R"(backend="redis",op="lock")"), ~std::uint64_t{0}) << down;
}

TEST(RedisStats, CountsHitsMissesAndWritesOfEveryProcess) {
  llmc_test::RedisServer redis;
  FakeProvider fake;
  {
    Serve gateway(fake, redis.url(), {"--l1-mb", "0"});  // every hit is a read of Redis
    ASSERT_EQ(gateway.ask("counted").header("x-llm-cache"), "MISS");
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (gateway.ask("counted").header("x-llm-cache") != "HIT" &&
           std::chrono::steady_clock::now() < deadline) {
    }
    ASSERT_EQ(gateway.ask("counted").header("x-llm-cache"), "HIT");
    ASSERT_EQ(gateway.stop(), 0);  // its last counts go to Redis as it stops
  }
  const auto stats = cli(redis.url(), "cache stats --json");
  ASSERT_EQ(stats.exit_code, 0) << stats.output;
  const json::object o = json::parse(stats.output).as_object();
  EXPECT_GE(o.at("hits").as_int64(), 1) << stats.output;
  EXPECT_GE(o.at("misses").as_int64(), 1) << stats.output;
  EXPECT_EQ(o.at("writes").as_int64(), 1) << stats.output;
  // Stored in Redis, not in one process: the hash every process adds to.
  EXPECT_EQ(redis.cli({"HGET", "llm-caching:{meta}:counters", "writes"}), "1");
}

TEST(SqliteStats, CountsHitsMissesAndWritesOfEveryProcess) {
  llmc_test::TempDir dir;
  FakeProvider fake;
  const std::string url = "sqlite://" + dir.file("cache.db");
  const std::string ask = "OPENAI_API_KEY=sk-stats " + std::string(kCliPath) + " --cache-url " +
                          quoted(url) + " ask --model openai:gpt-4o-mini --base-url " +
                          quoted(fake.base_url() + "/v1") + " Hello 2>&1";
  for (int i = 0; i < 3; ++i) ASSERT_EQ(llmc_test::run_shell(ask).exit_code, 0);  // miss, 2 hits
  ASSERT_EQ(upstream_calls(fake), 1);
  // Three processes came and went: their counts are in the file, read by a fourth.
  const auto stats = cli(url, "cache stats --json");
  ASSERT_EQ(stats.exit_code, 0) << stats.output;
  const json::object o = json::parse(stats.output).as_object();
  EXPECT_EQ(o.at("hits").as_int64(), 2) << stats.output;
  EXPECT_GE(o.at("misses").as_int64(), 1) << stats.output;
  EXPECT_EQ(o.at("writes").as_int64(), 1) << stats.output;
}

TEST(ScopeRule, AskAndAGatewaySharingItsCacheKeyACustomUpstreamAlike) {
  llmc_test::TempDir dir;
  FakeProvider fake;
  const std::string url = "sqlite://" + dir.file("cache.db");
  const auto asked =
      llmc_test::run_shell("OPENAI_API_KEY=sk-scope " + std::string(kCliPath) + " --cache-url " +
                           quoted(url) + " ask --model openai:gpt-4o-mini --base-url " +
                           quoted(fake.base_url() + "/v1") + " --json Hello 2>&1");
  ASSERT_EQ(asked.exit_code, 0) << asked.output;
  ASSERT_EQ(upstream_calls(fake), 1);

  Serve gateway(fake, url, {"--share-cache-across-keys"});
  const HttpResponse served = gateway.ask("Hello");
  EXPECT_EQ(served.header("x-llm-cache"), "HIT") << served.header("x-llm-cache-key");
  EXPECT_EQ(upstream_calls(fake), 1);
  // The key names the endpoint (the fake provider is not OpenAI's public service).
  const std::string body = dir.file("body.json");
  std::ofstream(body, std::ios::binary) << openai_body("Hello");
  const auto key = cli(url, "cache key --provider openai --base-url " +
                                quoted(fake.base_url() + "/v1") + " " + quoted(body));
  EXPECT_EQ(key.output, served.header("x-llm-cache-key") + "\n");
}

}  // namespace

// Budgets end to end (docs/COSTS.md): two gateway processes on one Redis, or on one SQLite file,
// under a budget worth 10 calls; 100 concurrent requests of one size, all different: at most 10
// reach the upstream, every other one is refused with 429 budget_exceeded. The library throws
// BudgetExceededError, and a hit never spends.
#include <gtest/gtest.h>

#include "core/budget.hpp"
#include "core/ledger.hpp"
#include "integration/gateway_harness.hpp"
#include "llm_caching/agent.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/runtime.hpp"
#include "support/redis_server.hpp"

#include <cstdio>
#include <future>
#include <thread>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;
using namespace std::chrono_literals;

/// `llm-caching serve` over `cache_url` with `extra` flags (the budget).
class BudgetGateway {
 public:
  BudgetGateway(const FakeProvider& fake, const std::string& cache_url,
                const std::vector<std::string>& extra)
      : process_(argv(fake, cache_url, extra)), port_(port_of(process_.ready_line())) {}
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  /// llmc_gateway_budget_exceeded_total{kind}, once it reads `expected` (bounded).
  std::int64_t budget_metric(const std::string& kind, std::int64_t expected) const {
    return settled_metric(url(""), "llmc_gateway_budget_exceeded_total{kind=\"" + kind + "\"}",
                          expected);
  }

 private:
  static std::vector<std::string> argv(const FakeProvider& fake, const std::string& cache_url,
                                       const std::vector<std::string>& extra) {
    std::vector<std::string> args = {
        kCliPath,      "--cache-url", cache_url,    "serve",
        "--listen",    "127.0.0.1:0", "--threads",  "2",
        "--log-level", "error",       "--upstream", "openai=" + fake.base_url() + "/v1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  llmc_test::ChildProcess process_;
  std::uint16_t port_;
};

/// Request i: one size for all (a three-digit number), a different text each.
std::string body_of(int i) {
  char text[32];
  std::snprintf(text, sizeof text, "budget request %03d", i);
  return json::serialize(
      json::object{{"model", "gpt-4o-mini"},
                   {"max_tokens", 8},
                   {"messages", json::array{json::object{{"role", "user"}, {"content", text}}}}});
}

/// What one call costs (all calls of body_of's size cost the same), from a gateway of its own.
std::int64_t cost_of_one_call(const FakeProvider& fake) {
  llmc_test::TempDir dir;
  BudgetGateway probe(fake, "sqlite://" + dir.file("probe.db"), {"--no-ledger"});
  const HttpResponse r = send(post(probe.url("/v1/chat/completions"), body_of(999),
                                   {{"authorization", "Bearer sk-budget"}}));
  EXPECT_EQ(r.status, 200) << r.body;
  return nano_usd_of(r.header("x-llm-cost-usd"));
}

void hundred_requests_under_a_budget_of_ten(const std::string& cache_url) {
  FakeProvider fake;
  const std::int64_t one_call = cost_of_one_call(fake);
  ASSERT_GT(one_call, 0);
  fake.reset();
  const std::string budget =
      "--budget=task=nightly:" + llm_caching::core::dollars_text(10 * one_call) + "usd/day";
  BudgetGateway first(fake, cache_url, {budget});
  BudgetGateway second(fake, cache_url, {budget});
  std::vector<std::future<HttpResponse>> pending;
  for (int i = 0; i < 100; ++i) {
    const BudgetGateway& gateway = i % 2 == 0 ? first : second;
    pending.push_back(std::async(std::launch::async, [&gateway, i] {
      return send(post(gateway.url("/v1/chat/completions"), body_of(i),
                       {{"authorization", "Bearer sk-budget"}, {"x-llm-task", "nightly"}}));
    }));
  }
  int ok = 0;
  int refused = 0;
  std::int64_t spent = 0;
  for (auto& p : pending) {
    const HttpResponse r = p.get();
    if (r.status == 200) {
      ++ok;
      spent += nano_usd_of(r.header("x-llm-cost-usd"));
      continue;
    }
    ASSERT_EQ(r.status, 429) << r.body;
    const json::value error = json::parse(r.body).at("error");
    EXPECT_EQ(error.at("type").as_string(), "budget_exceeded");
    EXPECT_FALSE(r.header("x-llm-budget-remaining-usd").empty());
    ++refused;
  }
  std::printf("budget of 10 calls: %d upstream calls, %d refused\n", ok, refused);
  EXPECT_GE(ok, 1);
  EXPECT_LE(ok, 10);
  EXPECT_EQ(ok + refused, 100);
  EXPECT_LE(spent, 10 * one_call);
  EXPECT_EQ(upstream_calls(fake), ok);
  // Each gateway counts the refusals it answered; the two sum to all of them.
  std::int64_t hard = 0;
  for (int attempt = 0; attempt < 200 && hard != refused; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(10ms);
    hard = metric_sample(first.url(""), R"(llmc_gateway_budget_exceeded_total{kind="hard"})") +
           metric_sample(second.url(""), R"(llmc_gateway_budget_exceeded_total{kind="hard"})");
  }
  EXPECT_EQ(hard, refused);
  EXPECT_EQ(first.budget_metric("soft", 0) + second.budget_metric("soft", 0), 0);
  // Another task is not under this budget.
  const HttpResponse other =
      send(post(first.url("/v1/chat/completions"), body_of(500),
                {{"authorization", "Bearer sk-budget"}, {"x-llm-task", "interactive"}}));
  EXPECT_EQ(other.status, 200) << other.body;
}

TEST(Budget, TwoGatewaysOnOneRedisLetAtMostTenCallsThrough) {
  llmc_test::RedisServer redis;
  hundred_requests_under_a_budget_of_ten(redis.url());
}

TEST(Budget, TwoGatewaysOnOneSqliteFileLetAtMostTenCallsThrough) {
  llmc_test::TempDir dir;
  hundred_requests_under_a_budget_of_ten("sqlite://" + dir.file("cache.db"));
}

TEST(Budget, ASoftBudgetOnlyWarnsAndIsCountedInTheMetrics) {
  FakeProvider fake;
  llmc_test::TempDir dir;
  // Soft: $0 a day, so every call that reaches the upstream goes past it; a hard budget of
  // another task is never touched.
  BudgetGateway gateway(fake, "sqlite://" + dir.file("cache.db"),
                        {"--soft-budget=task=soft:0usd/day", "--budget=task=other:1usd/day"});
  for (int i = 0; i < 5; ++i) {
    const HttpResponse r =
        send(post(gateway.url("/v1/chat/completions"), body_of(i),
                  {{"authorization", "Bearer sk-budget"}, {"x-llm-task", "soft"}}));
    EXPECT_EQ(r.status, 200) << r.body;
  }
  // A hit reserves nothing, so it goes past no budget.
  const HttpResponse hit =
      send(post(gateway.url("/v1/chat/completions"), body_of(0),
                {{"authorization", "Bearer sk-budget"}, {"x-llm-task", "soft"}}));
  EXPECT_EQ(hit.header("x-llm-cache"), "HIT");
  EXPECT_EQ(upstream_calls(fake), 5);
  EXPECT_EQ(gateway.budget_metric("soft", 5), 5);
  EXPECT_EQ(gateway.budget_metric("hard", 0), 0);
}

TEST(Budget, TheLibraryThrowsBudgetExceededErrorAndHitsNeverSpend) {
  FakeProvider fake;
  llmc_test::TempDir dir;
  llm_caching::Runtime runtime;
  llm_caching::RunOptions options;
  options.cache_url = "sqlite://" + dir.file("cache.db");
  options.runtime = &runtime;
  options.max_wait = 0ms;
  const llm_caching::Agent agent{
      .model = "openai:gpt-4o-mini", .base_url = fake.base_url() + "/v1", .api_key = "sk-lib"};
  options.budgets = {llm_caching::Budget::parse("task=lib:1usd/total")};
  const auto first = llm_caching::cached_agent_run_sync(agent, "budgeted one", "lib", options);
  EXPECT_GT(first.cost_nano_usd, 0);
  // Room for less than the worst case (default output limit 16384 tokens at $0.60/M).
  options.budgets = {llm_caching::Budget::parse("task=lib:0.005usd/total")};
  EXPECT_THROW(llm_caching::cached_agent_run_sync(agent, "budgeted two", "lib", options),
               llm_caching::BudgetExceededError);
  // A hit spends nothing, so it is served whatever the budget has left.
  options.budgets = {llm_caching::Budget::parse("task=lib:0usd/total")};
  const auto again = llm_caching::cached_agent_run_sync(agent, "budgeted one", "lib", options);
  EXPECT_TRUE(again.cache_hit);
  try {
    llm_caching::cached_agent_run_sync(agent, "budgeted three", "lib", options);
    ADD_FAILURE() << "no BudgetExceededError";
  } catch (const llm_caching::Error& e) {  // an Error, for callers that catch the base
    EXPECT_NE(std::string(e.what()).find("task=lib:0.00usd/total"), std::string::npos) << e.what();
  }
  EXPECT_EQ(upstream_calls(fake), 1);
}

}  // namespace

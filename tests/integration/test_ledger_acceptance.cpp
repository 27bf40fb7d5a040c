// The ledger's acceptance run (issue 24, docs/COSTS.md): 10,000 mixed calls on one Redis — two
// gateway processes and the library, three providers; misses, hits, coalesced bursts, stale
// answers and failures — and `llm-caching costs --json` sums them to the nano-dollar of the costs
// each call reported. The stale answers' background refreshes spend too, and are recorded with
// outcome `refresh`: each costs what its entry's first miss did (the fake provider's replies are
// deterministic).
#include <gtest/gtest.h>

#include "integration/ledger_harness.hpp"
#include "llm_caching/agent.hpp"
#include "llm_caching/runtime.hpp"
#include "support/redis_server.hpp"

#include <array>
#include <thread>

namespace {

using namespace ledger_test;
using namespace std::chrono_literals;

constexpr int kGatewayClients = 4;
constexpr int kCallsPerClient = 2000;
constexpr int kBursts = 10;
constexpr int kBurstSize = 20;
constexpr int kStaleEntries = 50;
constexpr int kLibraryCalls = 1700;
constexpr int kCalls =
    kGatewayClients * kCallsPerClient + kBursts * kBurstSize + 2 * kStaleEntries + kLibraryCalls;
static_assert(kCalls == 10'000);

/// 8,000 calls: four clients, two on each gateway, 500 distinct texts, every 97th failing.
Sent gateway_mix(const LedgerGateway& a, const LedgerGateway& b) {
  std::vector<std::future<Sent>> clients;
  for (int c = 0; c < kGatewayClients; ++c) {
    clients.push_back(std::async(std::launch::async, [&, c] {
      return send_mixed(c % 2 == 0 ? a : b, c * kCallsPerClient, (c + 1) * kCallsPerClient,
                        "acceptance", {.distinct_texts = 500, .fail_every = 97});
    }));
  }
  Sent sent;
  for (auto& client : clients) sent += client.get();
  return sent;
}

/// Entries stored with a 1 s TTL through `a`, asked again through `b` once expired: STALE, each
/// refreshed in the background. Adds what the refreshes will spend to `refresh_spend`.
Sent stale_round(const LedgerGateway& a, const LedgerGateway& b, std::int64_t& refresh_spend) {
  const Mix short_lived{
      .distinct_texts = kStaleEntries,
      .fail_every = 0,
      .extra = {{"x-llm-cache-ttl", "1"}, {"cache-control", "stale-while-revalidate=3600"}}};
  Sent sent;
  std::array<std::int64_t, kStaleEntries> first_cost{};
  for (int i = 0; i < kStaleEntries; ++i) {
    const HttpResponse r = send_one(a, i, "stale", short_lived);
    EXPECT_EQ(r.header("x-llm-cache"), "MISS") << r.body;
    tally(sent, r);
    first_cost[static_cast<std::size_t>(i)] = nano_usd_of(r.header("x-llm-cost-usd"));
  }
  std::this_thread::sleep_for(1100ms);  // the TTL runs out; the grace window keeps the entries
  for (int i = 0; i < kStaleEntries; ++i) {
    const HttpResponse r = send_one(b, i, "stale", short_lived);
    EXPECT_EQ(r.header("x-llm-cache"), "STALE") << r.body;
    tally(sent, r);
    refresh_spend += first_cost[static_cast<std::size_t>(i)];
  }
  return sent;
}

/// 1,700 library calls with the ledger on: three providers, 300 distinct prompts, every 100th
/// failing upstream.
Sent library_mix(const FakeProvider& fake, const std::string& cache_url,
                 const std::string& spill_dir) {
  llm_caching::RuntimeOptions runtime_options;
  runtime_options.ledger_spill_dir = spill_dir;
  llm_caching::Runtime runtime(runtime_options);
  llm_caching::RunOptions options;
  options.cache_url = cache_url;
  options.runtime = &runtime;
  options.ledger = true;
  options.tenant = "library";
  options.max_wait = 0ms;
  options.custom_costs["gpt-4o-mini+500"] = llm_caching::CostTable::defaults().at("gpt-4o-mini");
  const std::array<llm_caching::Agent, 3> agents = {
      llm_caching::Agent{
          .model = "openai:gpt-4o-mini", .base_url = fake.base_url() + "/v1", .api_key = "sk-lib"},
      llm_caching::Agent{.model = "anthropic:claude-3-5-haiku-latest",
                         .base_url = fake.base_url(),
                         .api_key = "sk-ant-lib"},
      llm_caching::Agent{
          .model = "google-gla:gemini-2.0-flash", .base_url = fake.base_url(), .api_key = "g-lib"}};
  const llm_caching::Agent failing{
      .model = "openai:gpt-4o-mini+500", .base_url = fake.base_url() + "/v1", .api_key = "sk-lib"};
  Sent sent;
  for (int i = 0; i < kLibraryCalls; ++i) {
    ++sent.calls;
    if (i % 100 == 99) {
      EXPECT_THROW(llm_caching::cached_agent_run_sync(failing, "fails " + std::to_string(i),
                                                      "library", options),
                   llm_caching::ProviderError);
      ++sent.failed;
      continue;
    }
    const auto result = llm_caching::cached_agent_run_sync(
        agents[static_cast<std::size_t>(i % 3)], "library prompt " + std::to_string(i % 300),
        "library", options);
    sent.cost_nano_usd += result.cost_nano_usd;
    if (result.cache_hit) ++sent.hits;
  }
  return sent;  // the runtime's end flushes its ledger
}

std::int64_t row_value(const json::object& report, std::string_view key, std::string_view field) {
  for (const json::value& row : report.at("rows").as_array()) {
    if (row.at("key").as_string() == key) return row.at(field).as_int64();
  }
  return 0;
}

TEST(LedgerAcceptance, TenThousandMixedCallsSumToTheNanoDollarOfWhatEachReported) {
  const std::int64_t started_ms = now_ms();
  llmc_test::RedisServer redis;
  FakeProvider fake;
  llmc_test::TempDir spill;
  Sent sent;
  std::int64_t refresh_spend = 0;
  {
    LedgerGateway a(fake, redis.url(), spill.file("a"));
    LedgerGateway b(fake, redis.url(), spill.file("b"));
    sent += gateway_mix(a, b);
    for (int k = 0; k < kBursts; ++k) {
      sent += send_burst(k % 2 == 0 ? a : b, kBurstSize, "burst " + std::to_string(k));
    }
    sent += stale_round(a, b, refresh_spend);
    sent += library_mix(fake, redis.url(), spill.file("library"));
    ASSERT_EQ(sent.calls, kCalls);
    // The refreshes run in the background: ask until their records are in (bounded).
    total_once_calls_reach(a, kCalls + kStaleEntries, 600);
    EXPECT_EQ(a.stop(), 0);
    EXPECT_EQ(b.stop(), 0);
  }
  EXPECT_GE(sent.coalesced, kBursts);  // each burst shares its one call at least once
  EXPECT_EQ(sent.stale, kStaleEntries);
  std::printf("acceptance: %lld calls, %lld hits (%lld coalesced, %lld stale), %lld failed\n",
              static_cast<long long>(sent.calls), static_cast<long long>(sent.hits),
              static_cast<long long>(sent.coalesced), static_cast<long long>(sent.stale),
              static_cast<long long>(sent.failed));

  const json::object by_outcome = cli_costs(redis.url(), "outcome");
  const json::object& total = by_outcome.at("total").as_object();
  EXPECT_EQ(total.at("calls").as_int64(), kCalls + kStaleEntries);
  EXPECT_EQ(total.at("hits").as_int64(), sent.hits);
  EXPECT_EQ(total.at("failed").as_int64(), sent.failed);
  EXPECT_EQ(row_value(by_outcome, "refresh", "calls"), kStaleEntries);
  EXPECT_EQ(row_value(by_outcome, "refresh", "spent_nano_usd"), refresh_spend);
  EXPECT_EQ(row_value(by_outcome, "stale", "calls"), kStaleEntries);
  EXPECT_EQ(total.at("spent_nano_usd").as_int64(), sent.cost_nano_usd + refresh_spend);
  // Every way of cutting the same records sums to the same money.
  for (const char* by : {"provider", "task", "tenant", "day"}) {
    std::int64_t spent = 0;
    const json::object report = cli_costs(redis.url(), by);  // kept: the loop reads into it
    for (const json::value& row : report.at("rows").as_array()) {
      spent += row.at("spent_nano_usd").as_int64();
    }
    EXPECT_EQ(spent, sent.cost_nano_usd + refresh_spend) << "--by " << by;
  }
  EXPECT_EQ(day_counter(redis, "total::spent_nano_usd", started_ms),
            sent.cost_nano_usd + refresh_spend);
}

}  // namespace

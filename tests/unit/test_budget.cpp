// Budgets (docs/COSTS.md): specs, which counters a call charges, its worst case, and the
// reservation in the backends (memory, and SQLite shared by two connections as two processes
// would share it).
#include "cache/memory_backend.hpp"
#include "cache/run_blocking.hpp"
#include "cache/sqlite_backend.hpp"
#include "core/budget.hpp"
#include "exchange/budget_hold.hpp"
#include "llm_caching/errors.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <limits>

namespace {

using namespace llm_caching;
using Charge = cache::Backend::BudgetCharge;

constexpr std::int64_t kDec6 = 1'796'515'200'000;  // 2026-12-06T00:00:00Z

TEST(BudgetSpec, ParsesScopesAmountsPeriodsAndSoft) {
  const Budget daily = Budget::parse("task=nightly-eval:20usd/day");
  EXPECT_EQ(daily.scope, Budget::Scope::task);
  EXPECT_EQ(daily.value, "nightly-eval");
  EXPECT_EQ(daily.period, Budget::Period::day);
  EXPECT_EQ(daily.limit_nano_usd, 20'000'000'000);
  EXPECT_FALSE(daily.soft);
  const Budget soft = Budget::parse("tag=batch:0.5usd,soft");
  EXPECT_EQ(soft.scope, Budget::Scope::tag);
  EXPECT_EQ(soft.period, Budget::Period::total);
  EXPECT_EQ(soft.limit_nano_usd, 500'000'000);
  EXPECT_TRUE(soft.soft);
  EXPECT_EQ(Budget::parse("all:$100/month").scope, Budget::Scope::all);
  EXPECT_EQ(Budget::parse("tenant=a:b:1usd").value, "a:b");  // the last ':' starts the amount
  EXPECT_EQ(Budget::parse(daily.describe()).limit_nano_usd, daily.limit_nano_usd);
  EXPECT_EQ(daily.describe(), "task=nightly-eval:20.00usd/day");
}

TEST(BudgetSpec, RefusesWhatItCannotRead) {
  for (const char* bad : {"task=x", "task=x:20", "task=x:20usd/week", "colour=x:1usd", "task=:1usd",
                          "task=x:-1usd", "x:1usd", "task=x:nanusd"}) {
    EXPECT_THROW(Budget::parse(bad), ConfigurationError) << bad;
  }
}

TEST(BudgetLines, MatchTheSubjectAndNameThePeriod) {
  const std::vector<Budget> budgets = {
      Budget::parse("task=nightly:1usd/day"), Budget::parse("tenant=team-a:2usd/month"),
      Budget::parse("tag=batch:3usd"),        Budget::parse("namespace=tests:4usd"),
      Budget::parse("all:5usd/day,soft"),     Budget::parse("task=other:6usd")};
  const core::BudgetSubject subject{"nightly", "team-a", "x,batch", "tests"};
  const auto lines = core::budget_lines(budgets, subject, kDec6 + 1000);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0].key, "llm-caching:{budget}:task=nightly:1.00usd/day:2026-12-06");
  EXPECT_EQ(lines[0].ttl, std::chrono::hours(48));
  EXPECT_EQ(lines[1].key, "llm-caching:{budget}:tenant=team-a:2.00usd/month:2026-12");
  EXPECT_EQ(lines[2].key, "llm-caching:{budget}:tag=batch:3.00usd/total:total");
  EXPECT_EQ(lines[2].ttl.count(), 0);
  EXPECT_TRUE(lines[4].soft);
  EXPECT_TRUE(core::budget_lines(budgets, {"t", "u", "batchy", ""}, kDec6).size() == 1u);
}

TEST(BudgetWorstCase, IsEveryByteAnInputTokenPlusTheOutputLimit) {
  const auto body = [](const char* text) { return boost::json::parse(text).as_object(); };
  EXPECT_EQ(core::output_limit(Provider::openai, body(R"({"max_tokens":10})")), 10);
  EXPECT_EQ(core::output_limit(Provider::openai, body(R"({"max_completion_tokens":7})")), 7);
  EXPECT_EQ(core::output_limit(Provider::anthropic, body(R"({})")), core::kDefaultOutputLimit);
  EXPECT_EQ(
      core::output_limit(Provider::gemini, body(R"({"generationConfig":{"maxOutputTokens":99}})")),
      99);
  const ModelCosts& mini = CostTable::defaults().at("gpt-4o-mini");  // 0.15 / 0.60 per M
  EXPECT_EQ(core::worst_case_nano_usd(mini, 1000, 100), 150'000 + 60'000);
}

std::vector<Charge> charges(std::int64_t limit) {
  return {{"llm-caching:{budget}:a", limit, {}}, {"llm-caching:{budget}:b", 1'000'000, {}}};
}

TEST(BudgetReserve, AllOrNothingInMemory) {
  cache::MemoryBackend backend(MemoryOptions{});
  auto verdict = cache::run_blocking(backend.budget_reserve(charges(100), 60));
  ASSERT_TRUE(verdict.granted);
  EXPECT_EQ(verdict.used, (std::vector<std::int64_t>{60, 60}));
  verdict = cache::run_blocking(backend.budget_reserve(charges(100), 60));
  EXPECT_FALSE(verdict.granted);
  EXPECT_EQ(verdict.refused, 0u);
  EXPECT_EQ(verdict.used, (std::vector<std::int64_t>{60}));
  cache::run_blocking(backend.budget_adjust(charges(100), -50));  // settled at 10
  EXPECT_TRUE(cache::run_blocking(backend.budget_reserve(charges(100), 90)).granted);
}

TEST(BudgetReserve, TwoConnectionsToOneSqliteFileNeverOverspend) {
  llmc_test::TempDir dir;
  SqliteOptions options;
  options.path = dir.file("cache.db");
  cache::SqliteBackend first(options);
  cache::SqliteBackend second(options);
  int granted = 0;
  for (int i = 0; i < 10; ++i) {
    cache::SqliteBackend& backend = i % 2 == 0 ? first : second;
    if (backend.budget_reserve_now(charges(250), 60).granted) ++granted;
  }
  EXPECT_EQ(granted, 4);  // 4 x 60 = 240 <= 250
  const auto verdict = second.budget_reserve_now(charges(250), 10);
  ASSERT_TRUE(verdict.granted);
  EXPECT_EQ(verdict.used.front(), 250);
}

TEST(BudgetHold, RefusesWithWhatIsLeftAndSettlesToTheRealCost) {
  cache::MemoryBackend backend(MemoryOptions{});
  const auto lines =
      core::budget_lines({Budget::parse("all:0.000001usd")}, {}, kDec6);  // 1000 nano
  exchange::BudgetHold hold =
      cache::run_blocking(exchange::reserve_budget(backend, lines, 700, false));
  EXPECT_EQ(hold.reserved_nano_usd, 700);
  try {
    cache::run_blocking(exchange::reserve_budget(backend, lines, 700, false));
    ADD_FAILURE() << "no BudgetExceededError";
  } catch (const BudgetExceededError& e) {
    EXPECT_EQ(e.remaining_nano_usd(), 300);
    EXPECT_EQ(e.budget(), "all:0.000001usd/total");
  }
  cache::run_blocking(exchange::settle_budget(backend, std::move(hold), 200));
  EXPECT_NO_THROW(cache::run_blocking(exchange::reserve_budget(backend, lines, 700, false)));
  // A soft budget charges but never refuses.
  const auto soft = core::budget_lines({Budget::parse("all:0.000001usd,soft")}, {}, kDec6);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NO_THROW(cache::run_blocking(exchange::reserve_budget(backend, soft, 700, false)));
  }
}

}  // namespace

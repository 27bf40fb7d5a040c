// The library API over the exchange, with a scripted model (no sockets).
#include "llm_caching/agent.hpp"
#include "llm_caching/errors.hpp"

#include "cache/run_blocking.hpp"
#include "cache/tiered_cache.hpp"
#include "core/entry.hpp"
#include "support/scripted_model.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/describe.hpp>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

namespace llm_caching {
namespace {

using testing::ScriptedModel;
using namespace std::chrono_literals;

// Each test (and each repetition of it, with --gtest_repeat) gets its own namespace in one
// shared in-memory cache.
std::string fresh_namespace() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name() + "." +
         std::to_string(++counter);
}

struct AgentRunTest : ::testing::Test {
  const std::string namespace_ = fresh_namespace();
  std::shared_ptr<ScriptedModel> model = std::make_shared<ScriptedModel>();
  Agent agent{.model = "openai:my-custom-model", .system_prompt = "Be brief."};

  RunOptions options() {
    RunOptions o;
    o.redis_url = "memory://";
    o.namespace_ = namespace_;
    o.model_client = model;
    // The seed README's custom costs: $1 / $2 / $0.5 / $0.1 per million tokens.
    o.custom_costs["my-custom-model"] = ModelCosts{1.0, 2.0, 0.5, 0.1};
    o.initial_wait = 1ms;
    o.max_wait = 200ms;
    return o;
  }
};

// ScriptedModel usage: 1000 prompt tokens of which 400 cached, 200 completion tokens.
// input 600 x 1000 + output 200 x 2000 + cache read 400 x 100 = 1,040,000 nano-USD.
constexpr std::int64_t kCallNano = 1'040'000;

TEST_F(AgentRunTest, MissThenHitCallsTheModelOnce) {
  RunResult first = cached_agent_run_sync(agent, "Hello", "chat", options());
  EXPECT_FALSE(first.cache_hit);
  EXPECT_EQ(first.output, ScriptedModel::answer_text("Hello"));
  EXPECT_EQ(first.cost_nano_usd, kCallNano);
  EXPECT_DOUBLE_EQ(first.cost, 0.00104);
  EXPECT_EQ(first.usage.input_tokens, 600);
  EXPECT_EQ(first.usage.cache_read_tokens, 400);
  EXPECT_EQ(first.usage.output_tokens, 200);
  EXPECT_EQ(first.usage.requests, 1);

  RunResult second = cached_agent_run_sync(agent, "Hello", "chat", options());
  EXPECT_TRUE(second.cache_hit);
  EXPECT_EQ(second.output, first.output);
  EXPECT_EQ(second.cost_nano_usd, 0);
  EXPECT_EQ(second.avoided_cost_nano_usd, kCallNano);
  EXPECT_EQ(second.usage.requests, 0);
  EXPECT_EQ(second.cache_key, first.cache_key);
  EXPECT_TRUE(second.cache_key.starts_with("llm-caching:v1:" + namespace_ + ":"));
  EXPECT_EQ(model->calls(), 1);
}

TEST_F(AgentRunTest, MessagesHoldTheConversationWithTheAnswerLast) {
  RunOptions o = options();
  o.transcript_history = {boost::json::object{{"role", "assistant"}, {"content", "Earlier."}},
                          std::string("plain text turn")};
  RunResult r = cached_agent_run_sync(agent, "Now?", "chat", o);
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0], (ModelMessage{"assistant", "Earlier."}));
  EXPECT_EQ(r.messages[1], (ModelMessage{"user", "plain text turn"}));
  EXPECT_EQ(r.messages[2], (ModelMessage{"user", "Now?"}));
  EXPECT_EQ(r.messages[3], (ModelMessage{"assistant", ScriptedModel::answer_text("Now?")}));
}

TEST_F(AgentRunTest, RefreshCallsAgainAndStores) {
  cached_agent_run_sync(agent, "Hi", "t", options());
  RunOptions refresh = options();
  refresh.mode = CacheMode::refresh;
  EXPECT_FALSE(cached_agent_run_sync(agent, "Hi", "t", refresh).cache_hit);
  EXPECT_EQ(model->calls(), 2);
  EXPECT_TRUE(cached_agent_run_sync(agent, "Hi", "t", options()).cache_hit);
  EXPECT_EQ(model->calls(), 2);
}

TEST_F(AgentRunTest, BypassNeitherReadsNorWrites) {
  RunOptions bypass = options();
  bypass.mode = CacheMode::bypass;
  EXPECT_FALSE(cached_agent_run_sync(agent, "Hi", "t", bypass).cache_hit);
  EXPECT_FALSE(cached_agent_run_sync(agent, "Hi", "t", bypass).cache_hit);
  EXPECT_EQ(model->calls(), 2);
  EXPECT_FALSE(cached_agent_run_sync(agent, "Hi", "t", options()).cache_hit);  // nothing stored
  EXPECT_EQ(model->calls(), 3);
}

TEST_F(AgentRunTest, ReadOnlyReadsButNeverWrites) {
  RunOptions read_only = options();
  read_only.mode = CacheMode::read_only;
  EXPECT_FALSE(cached_agent_run_sync(agent, "Hi", "t", read_only).cache_hit);
  EXPECT_FALSE(cached_agent_run_sync(agent, "Hi", "t", read_only).cache_hit);
  EXPECT_EQ(model->calls(), 2);
  cached_agent_run_sync(agent, "Hi", "t", options());
  EXPECT_TRUE(cached_agent_run_sync(agent, "Hi", "t", read_only).cache_hit);
  EXPECT_EQ(model->calls(), 3);
}

TEST_F(AgentRunTest, ReplayOnlyMissRaisesWithoutCallingTheModel) {
  RunOptions replay = options();
  replay.mode = CacheMode::replay_only;
  try {
    cached_agent_run_sync(agent, "Hi", "t", replay);
    FAIL() << "expected CacheMissError";
  } catch (const CacheMissError& e) {
    EXPECT_NE(std::string(e.what()).find("replay_only"), std::string::npos) << e.what();
  }
  EXPECT_EQ(model->calls(), 0);
  cached_agent_run_sync(agent, "Hi", "t", options());
  EXPECT_TRUE(cached_agent_run_sync(agent, "Hi", "t", replay).cache_hit);
}

TEST_F(AgentRunTest, ExpiredEntryIsAMiss) {
  RunOptions short_ttl = options();
  short_ttl.ttl = 20ms;
  cached_agent_run_sync(agent, "Hi", "t", short_ttl);
  std::this_thread::sleep_for(60ms);
  EXPECT_FALSE(cached_agent_run_sync(agent, "Hi", "t", short_ttl).cache_hit);
  EXPECT_EQ(model->calls(), 2);
}

TEST_F(AgentRunTest, CorruptEntryIsAMissAndIsReplaced) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("llmc-corrupt-" + std::to_string(::getpid()) + "-" + namespace_ + ".db");
  std::filesystem::remove(path);
  RunOptions o = options();
  o.redis_url = "sqlite://" + path.string();
  RunOptions bypass = o;
  bypass.mode = CacheMode::bypass;
  const std::string key = cached_agent_run_sync(agent, "Hi", "t", bypass).cache_key;

  // Another writer leaves garbage under the key (in the shared file, not in our L1).
  auto other = cache::open_backend(cache::parse_cache_url(o.redis_url));
  cache::run_blocking(other->put(key, "not an entry", std::chrono::hours(1)));

  RunResult r = cached_agent_run_sync(agent, "Hi", "t", o);
  EXPECT_FALSE(r.cache_hit);
  EXPECT_EQ(r.output, ScriptedModel::answer_text("Hi"));
  EXPECT_EQ(model->calls(), 2);
  // The good answer replaced the garbage.
  const auto stored = cache::run_blocking(other->get(key));
  ASSERT_TRUE(stored.has_value());
  EXPECT_TRUE(std::holds_alternative<core::CacheEntry>(core::decode_entry(*stored)));
  std::filesystem::remove(path);
}

TEST_F(AgentRunTest, SettingsAndSystemPromptArePartOfTheKey) {
  RunResult a = cached_agent_run_sync(agent, "Hi", "t", options());
  Agent warmer = agent;
  warmer.settings.temperature = 0.7;
  RunResult b = cached_agent_run_sync(warmer, "Hi", "t", options());
  Agent other_system = agent;
  other_system.system_prompt = "Be verbose.";
  RunResult c = cached_agent_run_sync(other_system, "Hi", "t", options());
  EXPECT_NE(a.cache_key, b.cache_key);
  EXPECT_NE(a.cache_key, c.cache_key);
  EXPECT_EQ(model->calls(), 3);
}

TEST_F(AgentRunTest, RecorderGetsCostOnMissAndZeroOnHit) {
  struct Call {
    std::string model, task;
    double cost;
  };
  std::vector<Call> calls;
  RunOptions o = options();
  o.expense_recorder = [&calls](std::string model, std::string task,
                                double cost) -> boost::asio::awaitable<void> {
    calls.push_back({model, task, cost});
    co_return;
  };
  cached_agent_run_sync(agent, "Hi", "summarise", o);
  cached_agent_run_sync(agent, "Hi", "summarise", o);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].model, "openai:my-custom-model");
  EXPECT_EQ(calls[0].task, "summarise");
  EXPECT_DOUBLE_EQ(calls[0].cost, 0.00104);
  EXPECT_DOUBLE_EQ(calls[1].cost, 0.0);
}

TEST_F(AgentRunTest, ExpenseRecordOverloadSeesHitAndAvoidedCost) {
  std::vector<Expense> seen;
  RunOptions o = options();
  o.expense_recorder = [&seen](const Expense& e) { seen.push_back(e); };  // a plain callback
  RunResult miss = cached_agent_run_sync(agent, "Hi", "t", o);
  cached_agent_run_sync(agent, "Hi", "t", o);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen[0].cache_hit);
  EXPECT_EQ(seen[0].cost_nano_usd, kCallNano);
  EXPECT_EQ(seen[0].cache_key, miss.cache_key);
  EXPECT_EQ(seen[0].usage.requests, 1);
  EXPECT_TRUE(seen[1].cache_hit);
  EXPECT_EQ(seen[1].cost_nano_usd, 0);
  EXPECT_EQ(seen[1].avoided_cost_nano_usd, kCallNano);
}

TEST_F(AgentRunTest, ThrowingRecorderDoesNotLoseTheResult) {
  RunOptions o = options();
  o.expense_recorder = [](std::string, std::string, double) {
    throw std::runtime_error("ledger is down");
  };
  RunResult r = cached_agent_run_sync(agent, "Hi", "t", o);
  EXPECT_EQ(r.output, ScriptedModel::answer_text("Hi"));
  EXPECT_TRUE(cached_agent_run_sync(agent, "Hi", "t", options()).cache_hit);
}

TEST_F(AgentRunTest, RateLimitedTwiceThenSucceeds) {
  model->script(
      {429, R"({"error":{"message":"slow down","type":"rate_limit_exceeded"}})", false, 5ms});
  model->script(
      {429, R"({"error":{"message":"slow down","type":"rate_limit_exceeded"}})", false, 5ms});
  RunResult r = cached_agent_run_sync(agent, "Hi", "t", options());
  EXPECT_EQ(r.output, ScriptedModel::answer_text("Hi"));
  EXPECT_EQ(model->calls(), 3);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(cached_agent_run_sync(agent, "Hi", "t", options()).attempts, 0);  // a hit
}

TEST_F(AgentRunTest, RateLimitBeyondMaxWaitRaisesWithAttemptsAndWaited) {
  for (int i = 0; i < 10; ++i) {
    model->script(
        {429, R"({"error":{"message":"slow down","type":"rate_limit_exceeded"}})", false, 40ms});
  }
  RunOptions o = options();
  o.max_wait = 100ms;
  try {
    cached_agent_run_sync(agent, "Hi", "t", o);
    FAIL() << "expected RateLimitError";
  } catch (const RateLimitError& e) {
    EXPECT_EQ(e.attempts(), 3);  // waits of 40 + 40 ms fit in 100 ms, a third would not
    EXPECT_EQ(e.waited(), 80ms);
    EXPECT_EQ(e.last_retry_after(), 40ms);
  }
  EXPECT_EQ(model->calls(), 3);
}

TEST_F(AgentRunTest, ClientErrorIsAProviderErrorAndNotRetried) {
  model->script({400, R"({"error":{"message":"bad temperature","type":"invalid_request_error"}})"});
  try {
    cached_agent_run_sync(agent, "Hi", "t", options());
    FAIL() << "expected ProviderError";
  } catch (const ProviderError& e) {
    EXPECT_EQ(e.http_status(), 400);
    EXPECT_EQ(e.error_type(), "invalid_request_error");
    EXPECT_NE(std::string(e.what()).find("bad temperature"), std::string::npos);
  }
  EXPECT_EQ(model->calls(), 1);
}

TEST_F(AgentRunTest, GarbageAnswerIsAProviderErrorAndIsNotCached) {
  model->script({200, "this is not json"});
  EXPECT_THROW(cached_agent_run_sync(agent, "Hi", "t", options()), ProviderError);
  EXPECT_FALSE(cached_agent_run_sync(agent, "Hi", "t", options()).cache_hit);
  EXPECT_EQ(model->calls(), 2);
}

TEST_F(AgentRunTest, UnpricedModelIsAConfigurationErrorBeforeAnyCall) {
  Agent unknown{.model = "openai:no-such-model-2031"};
  try {
    cached_agent_run_sync(unknown, "Hi", "t", options());
    FAIL() << "expected ConfigurationError";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-model-2031"), std::string::npos) << e.what();
  }
  EXPECT_EQ(model->calls(), 0);
}

TEST_F(AgentRunTest, MalformedModelSpecNamesTheForm) {
  Agent bad{.model = "gpt-4o-mini"};
  try {
    cached_agent_run_sync(bad, "Hi", "t", options());
    FAIL();
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("provider:model"), std::string::npos) << e.what();
  }
}

TEST_F(AgentRunTest, HundredConcurrentRunsShareOneCallAndOneAnswer) {
  model->set_delay(30ms);
  boost::asio::io_context context;
  std::vector<std::future<RunResult>> results;
  const RunOptions o = options();
  for (int i = 0; i < 100; ++i) {
    results.push_back(boost::asio::co_spawn(context, cached_agent_run(agent, "Same", "t", o),
                                            boost::asio::use_future));
  }
  context.run();
  int billed = 0;
  int coalesced = 0;
  for (auto& f : results) {
    RunResult r = f.get();
    EXPECT_EQ(r.output, ScriptedModel::answer_text("Same"));
    if (r.cost_nano_usd > 0) ++billed;
    if (r.coalesced) ++coalesced;
  }
  EXPECT_EQ(model->calls(), 1);
  EXPECT_EQ(billed, 1);  // the others were coalesced and billed 0
  EXPECT_EQ(coalesced, 99);
}

// Runs `count` identical calls concurrently on one io_context and returns their futures.
std::vector<std::future<RunResult>> spawn_same(boost::asio::io_context& context, const Agent& agent,
                                               const RunOptions& o, int count) {
  std::vector<std::future<RunResult>> results;
  for (int i = 0; i < count; ++i) {
    results.push_back(boost::asio::co_spawn(context, cached_agent_run(agent, "Same", "t", o),
                                            boost::asio::use_future));
  }
  return results;
}

TEST_F(AgentRunTest, CoalesceOffMakesEveryConcurrentCallItsOwn) {
  model->set_delay(30ms);
  boost::asio::io_context context;
  RunOptions o = options();
  o.coalesce = false;
  auto results = spawn_same(context, agent, o, 5);
  context.run();
  for (auto& f : results) {
    const RunResult r = f.get();
    EXPECT_FALSE(r.coalesced);
    EXPECT_EQ(r.cost_nano_usd, kCallNano);
  }
  EXPECT_EQ(model->calls(), 5);
}

// The leader's retry loop is the flight's budget: once it gives up, every waiter gets its error
// rather than a new round of calls against a provider that just refused.
TEST_F(AgentRunTest, LeaderFailureReachesEveryWaiterWithOneCall) {
  model->set_delay(30ms);
  model->script(
      NativeResponse{400, R"({"error":{"message":"bad prompt","type":"invalid_request_error"}})"});
  boost::asio::io_context context;
  auto results = spawn_same(context, agent, options(), 10);
  context.run();
  for (auto& f : results) EXPECT_THROW(f.get(), ProviderError);
  EXPECT_EQ(model->calls(), 1);
  // Nothing was cached: the next call asks again and succeeds.
  EXPECT_FALSE(cached_agent_run_sync(agent, "Same", "t", options()).cache_hit);
  EXPECT_EQ(model->calls(), 2);
}

// Spawns a run that the returned signal can cancel.
std::future<RunResult> spawn_cancellable(boost::asio::io_context& context, const Agent& agent,
                                         const RunOptions& o,
                                         boost::asio::cancellation_signal& signal) {
  return boost::asio::co_spawn(
      context, cached_agent_run(agent, "Same", "t", o),
      boost::asio::bind_cancellation_slot(signal.slot(), boost::asio::use_future));
}

// Emits terminal cancellation on `signal` once the others are under way (the model answers
// after 300 ms, the cancel comes after 50 ms).
void cancel_soon(boost::asio::io_context& context, boost::asio::cancellation_signal& signal) {
  auto timer = std::make_shared<boost::asio::steady_timer>(context, 50ms);
  timer->async_wait([timer, &signal](boost::system::error_code) {
    signal.emit(boost::asio::cancellation_type::terminal);
  });
}

TEST_F(AgentRunTest, CancellingAWaiterNeverCancelsTheLeadersCall) {
  model->set_delay(300ms);
  boost::asio::io_context context;
  const RunOptions o = options();
  auto leader = boost::asio::co_spawn(context, cached_agent_run(agent, "Same", "t", o),
                                      boost::asio::use_future);
  boost::asio::cancellation_signal waiter_signal;
  auto waiter = spawn_cancellable(context, agent, o, waiter_signal);
  auto other = boost::asio::co_spawn(context, cached_agent_run(agent, "Same", "t", o),
                                     boost::asio::use_future);
  cancel_soon(context, waiter_signal);
  context.run();
  EXPECT_THROW(waiter.get(), boost::system::system_error);
  const RunResult led = leader.get();
  EXPECT_EQ(led.output, ScriptedModel::answer_text("Same"));
  EXPECT_EQ(led.cost_nano_usd, kCallNano);
  EXPECT_TRUE(other.get().coalesced);
  EXPECT_EQ(model->calls(), 1);
}

TEST_F(AgentRunTest, CancellingTheLeaderHandsTheCallToAWaiter) {
  model->set_delay(300ms);
  boost::asio::io_context context;
  const RunOptions o = options();
  boost::asio::cancellation_signal leader_signal;
  auto leader = spawn_cancellable(context, agent, o, leader_signal);
  auto waiters = spawn_same(context, agent, o, 3);
  cancel_soon(context, leader_signal);
  context.run();
  EXPECT_THROW(leader.get(), boost::system::system_error);
  int billed = 0;
  int coalesced = 0;
  for (auto& f : waiters) {
    const RunResult r = f.get();
    EXPECT_EQ(r.output, ScriptedModel::answer_text("Same"));
    if (r.cost_nano_usd > 0) ++billed;
    if (r.coalesced) ++coalesced;
  }
  EXPECT_EQ(billed, 1);  // one waiter took the call over, the other two shared its answer
  EXPECT_EQ(coalesced, 2);
  EXPECT_EQ(model->calls(), 2);
}

// Stale policies, with a 50 ms TTL: the test sleeps past it (no timing is asserted).
struct StalePolicyTest : AgentRunTest {
  RunOptions short_lived() {
    RunOptions o = options();
    o.ttl = 50ms;
    return o;
  }
  static void outlive_ttl() { std::this_thread::sleep_for(120ms); }
};

TEST_F(StalePolicyTest, StaleWhileRevalidateServesAtOnceAndRefreshesOnce) {
  RunOptions o = short_lived();
  o.stale_while_revalidate = 60s;
  ASSERT_FALSE(cached_agent_run_sync(agent, "Swr", "t", o).cache_hit);
  outlive_ttl();
  model->set_delay(300ms);  // the refresh is still out while the stale reads below happen
  for (int i = 0; i < 5; ++i) {
    const RunResult stale = cached_agent_run_sync(agent, "Swr", "t", o);
    EXPECT_TRUE(stale.stale);
    EXPECT_TRUE(stale.cache_hit);
    EXPECT_EQ(stale.cost_nano_usd, 0);
    EXPECT_EQ(stale.output, ScriptedModel::answer_text("Swr"));
  }
  // Wait (bounded) for the background refresh to land; then reads are fresh hits again.
  RunResult fresh;
  for (int i = 0; i < 500; ++i) {
    fresh = cached_agent_run_sync(agent, "Swr", "t", o);
    if (!fresh.stale) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(fresh.stale);
  EXPECT_TRUE(fresh.cache_hit);
  EXPECT_EQ(model->calls(), 2);  // the first call and one refresh, whatever the stale reads
}

TEST_F(StalePolicyTest, WithoutAPolicyAnExpiredEntryIsAMiss) {
  const RunOptions o = short_lived();
  cached_agent_run_sync(agent, "Plain", "t", o);
  outlive_ttl();
  const RunResult again = cached_agent_run_sync(agent, "Plain", "t", o);
  EXPECT_FALSE(again.stale);
  EXPECT_FALSE(again.cache_hit);
  EXPECT_EQ(model->calls(), 2);
}

TEST_F(StalePolicyTest, StaleIfErrorServesTheExpiredAnswerWhenTheProviderFails) {
  RunOptions o = short_lived();
  o.stale_if_error = 60s;
  o.max_wait = 0ms;  // one attempt, then the failure
  cached_agent_run_sync(agent, "Sie", "t", o);
  outlive_ttl();
  model->script(NativeResponse{503, R"({"error":{"message":"down","type":"server_error"}})"});
  const RunResult stale = cached_agent_run_sync(agent, "Sie", "t", o);
  EXPECT_TRUE(stale.stale);
  EXPECT_TRUE(stale.cache_hit);
  EXPECT_EQ(stale.cost_nano_usd, 0);
  EXPECT_EQ(stale.output, ScriptedModel::answer_text("Sie"));
  EXPECT_EQ(model->calls(), 2);
  // The provider is back: the next call replaces the expired entry.
  const RunResult renewed = cached_agent_run_sync(agent, "Sie", "t", o);
  EXPECT_FALSE(renewed.stale);
  EXPECT_FALSE(renewed.cache_hit);
  EXPECT_EQ(model->calls(), 3);
}

TEST_F(StalePolicyTest, StaleIfErrorServesThroughRateLimitsToo) {
  RunOptions o = short_lived();
  o.stale_if_error = 60s;
  o.max_wait = 0ms;
  cached_agent_run_sync(agent, "Sie429", "t", o);
  outlive_ttl();
  model->script(NativeResponse{429, R"({"error":{"message":"slow down","type":"rate_limit"}})"});
  EXPECT_TRUE(cached_agent_run_sync(agent, "Sie429", "t", o).stale);
}

TEST_F(StalePolicyTest, StaleIfErrorNeverHidesARequestError) {
  RunOptions o = short_lived();
  o.stale_if_error = 60s;
  cached_agent_run_sync(agent, "Sie400", "t", o);
  outlive_ttl();
  model->script(
      NativeResponse{400, R"({"error":{"message":"bad","type":"invalid_request_error"}})"});
  EXPECT_THROW(cached_agent_run_sync(agent, "Sie400", "t", o), ProviderError);
}

TEST_F(StalePolicyTest, StaleIfErrorEndsWithTheGraceWindow) {
  RunOptions o = short_lived();
  o.stale_if_error = 20ms;  // expired 120 ms ago: past the grace
  o.max_wait = 0ms;
  cached_agent_run_sync(agent, "SieOld", "t", o);
  outlive_ttl();
  model->script(NativeResponse{503, R"({"error":{"message":"down","type":"server_error"}})"});
  EXPECT_THROW(cached_agent_run_sync(agent, "SieOld", "t", o), ProviderError);
}

// g++ 12 destroys braced temporaries inside co_await twice; the API must not create one itself
// (no `= {}` default) and must take options returned by value from a function.
TEST_F(AgentRunTest, AwaitableApiTakesOptionsByValueInsideACoroutine) {
  boost::asio::io_context context;
  std::string output;
  bool hit = false;
  boost::asio::co_spawn(
      context,
      [&]() -> boost::asio::awaitable<void> {
        RunResult miss = co_await cached_agent_run(agent, "Temp", "t", options());
        RunResult again = co_await cached_agent_run(agent, std::string("Temp"), "t", options());
        output = miss.output;
        hit = again.cache_hit;
      },
      boost::asio::detached);
  context.run();
  EXPECT_EQ(output, ScriptedModel::answer_text("Temp"));
  EXPECT_TRUE(hit);
}

TEST_F(AgentRunTest, AwaitableApiWithDefaultOptionsInsideACoroutine) {
  // Default options: the embedded cache and HTTPS to OpenAI; with no key that is a
  // ConfigurationError raised before any I/O, and the frame must unwind cleanly.
  llmc_test::ScopedEnv key("OPENAI_API_KEY", std::nullopt);
  llmc_test::ScopedEnv base("OPENAI_BASE_URL", std::nullopt);
  boost::asio::io_context context;
  std::string error;
  boost::asio::co_spawn(
      context,
      [&]() -> boost::asio::awaitable<void> {
        try {
          co_await cached_agent_run(agent, "Hi", "t");
        } catch (const ConfigurationError& e) {
          error = e.what();
        }
      },
      boost::asio::detached);
  context.run();
  EXPECT_NE(error.find("OPENAI_API_KEY"), std::string::npos) << error;
}

TEST_F(AgentRunTest, SyncApiFromEightThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const std::string prompt = "p" + std::to_string(i % 5);
        RunResult r = cached_agent_run_sync(agent, prompt, "t", options());
        if (r.output == ScriptedModel::answer_text(prompt)) ++ok;
      }
      (void)t;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 160);
  EXPECT_GE(model->calls(), 5);
  EXPECT_LE(model->calls(), 8 * 5);  // never more than one call per prompt per thread
}

// Typed output, as the seed's pydantic models.
enum class Mood { happy, sad };
BOOST_DESCRIBE_ENUM(Mood, happy, sad)
struct UserProfile {
  std::string name;
  int age = 0;
  std::vector<std::string> interests;
  Mood mood = Mood::happy;
};
BOOST_DESCRIBE_STRUCT(UserProfile, (), (name, age, interests, mood))

TEST_F(AgentRunTest, TypedOutputRoundTrip) {
  model->set_structured_answer(
      R"({"name":"John Doe","age":30,"interests":["AI","C++"],"mood":"sad"})");
  auto r = cached_agent_run_sync<UserProfile>(agent, "Make a profile", "profile", options());
  EXPECT_EQ(r.data.name, "John Doe");
  EXPECT_EQ(r.data.age, 30);
  EXPECT_EQ(r.data.interests, (std::vector<std::string>{"AI", "C++"}));
  EXPECT_EQ(r.data.mood, Mood::sad);
  auto again = cached_agent_run_sync<UserProfile>(agent, "Make a profile", "profile", options());
  EXPECT_TRUE(again.cache_hit);
  EXPECT_EQ(again.data.name, "John Doe");
  EXPECT_EQ(model->calls(), 1);
  // The schema is part of the key: the same prompt as plain text is another entry.
  EXPECT_NE(cached_agent_run_sync(agent, "Make a profile", "profile", options()).cache_key,
            r.cache_key);
}

TEST_F(AgentRunTest, TypedOutputThatDoesNotFitIsAnErrorAndNotCached) {
  model->set_structured_answer(R"({"name":"John","age":"thirty","interests":[],"mood":"happy"})");
  try {
    cached_agent_run_sync<UserProfile>(agent, "Make a profile", "profile", options());
    FAIL() << "expected ProviderError";
  } catch (const ProviderError& e) {
    EXPECT_NE(std::string(e.what()).find("age"), std::string::npos) << e.what();
  }
  model->set_structured_answer(R"({"name":"John","age":31,"interests":[],"mood":"happy"})");
  auto r = cached_agent_run_sync<UserProfile>(agent, "Make a profile", "profile", options());
  EXPECT_FALSE(r.cache_hit);
  EXPECT_EQ(r.data.age, 31);
  EXPECT_EQ(model->calls(), 2);
}

TEST_F(AgentRunTest, DescribedStructInHistoryIsSentAsJson) {
  UserProfile profile{"John Doe", 30, {"AI", "Python", "Machine Learning"}, Mood::happy};
  RunOptions o = options();
  o.transcript_history = {profile};
  RunResult r = cached_agent_run_sync(agent, "Analyze this profile", "profile_analysis", o);
  ASSERT_GE(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(
      r.messages[0].content,
      R"({"name":"John Doe","age":30,"interests":["AI","Python","Machine Learning"],"mood":"happy"})");
}

TEST_F(AgentRunTest, CustomMessageConverterIsUsed) {
  RunOptions o = options();
  o.transcript_history = {std::string("a"), std::string("b")};
  o.message_converter = [](const std::vector<HistoryItem>& items) {
    std::vector<ModelMessage> out;
    for (const auto& item : items) {
      out.push_back({"assistant", "converted " + std::string(item.value().as_string())});
    }
    return out;
  };
  RunResult r = cached_agent_run_sync(agent, "Q", "t", o);
  EXPECT_EQ(r.messages[0], (ModelMessage{"assistant", "converted a"}));
  EXPECT_EQ(r.messages[1], (ModelMessage{"assistant", "converted b"}));
}

}  // namespace
}  // namespace llm_caching

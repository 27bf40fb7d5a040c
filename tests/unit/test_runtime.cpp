// An explicit Runtime (llm_caching/runtime.hpp): calls that name one get its settings and its
// caches; calls that name none get the default runtime's.
#include "llm_caching/agent.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/runtime.hpp"
#include "support/scripted_model.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace {

using namespace llm_caching;
using Scripted = llm_caching::testing::ScriptedModel;

Agent agent() {
  return Agent{.model = "openai:gpt-4o-mini"};
}

RunOptions options_on(Runtime& runtime, std::shared_ptr<Scripted> model) {
  RunOptions options;
  options.cache_url = "memory://";
  options.runtime = &runtime;
  options.model_client = std::move(model);
  return options;
}

TEST(Runtime, ItsModeAppliesToCallsThatSetNone) {
  Runtime replaying(RuntimeOptions{.mode = CacheMode::replay_only});
  auto model = std::make_shared<Scripted>();
  EXPECT_THROW(cached_agent_run_sync(agent(), "runtime mode", "t", options_on(replaying, model)),
               CacheMissError);
  EXPECT_EQ(model->calls(), 0);

  RunOptions recording = options_on(replaying, model);
  recording.mode = CacheMode::use;  // the call's own mode wins
  EXPECT_FALSE(cached_agent_run_sync(agent(), "runtime mode", "t", recording).cache_hit);
  EXPECT_EQ(model->calls(), 1);
  EXPECT_TRUE(
      cached_agent_run_sync(agent(), "runtime mode", "t", options_on(replaying, model)).cache_hit);
  EXPECT_EQ(model->calls(), 1);
}

TEST(Runtime, EachRuntimeHasItsOwnCaches) {
  // memory:// lives in its runtime: another runtime starts empty.
  Runtime first;
  Runtime second;
  auto model = std::make_shared<Scripted>();
  EXPECT_FALSE(
      cached_agent_run_sync(agent(), "two runtimes", "t", options_on(first, model)).cache_hit);
  EXPECT_TRUE(
      cached_agent_run_sync(agent(), "two runtimes", "t", options_on(first, model)).cache_hit);
  EXPECT_FALSE(
      cached_agent_run_sync(agent(), "two runtimes", "t", options_on(second, model)).cache_hit);
  EXPECT_EQ(model->calls(), 2);
}

TEST(Runtime, CacheUrlWinsOverTheSeedsRedisUrlAlias) {
  Runtime runtime;
  auto model = std::make_shared<Scripted>();
  RunOptions a = options_on(runtime, model);
  a.cache_url = "memory://?max_bytes=1000000";
  a.redis_url = "sqlite://relative-and-therefore-invalid.db";  // not used: cache_url wins
  EXPECT_FALSE(cached_agent_run_sync(agent(), "alias", "t", a).cache_hit);
  RunOptions b = options_on(runtime, model);
  b.cache_url.clear();
  b.redis_url = "memory://?max_bytes=1000000";  // the alias alone names the same cache
  EXPECT_TRUE(cached_agent_run_sync(agent(), "alias", "t", b).cache_hit);
}

}  // namespace

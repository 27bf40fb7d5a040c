// The library's provider connections are pooled for the whole process (providers/client_pool):
// sequential misses over HTTPS reuse one connection instead of a handshake each, and calls from
// many threads share the pool safely.
#include "llm_caching/agent.hpp"
#include "llm_caching/errors.hpp"

#include "support/fake_provider.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace llm_caching;
using llmc_test::ScopedEnv;

class ClientPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fakes().reset();
    for (const char* name : {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
                             "no_proxy", "LLM_CACHE_REDIS_URL", "SSL_CERT_FILE"}) {
      env_.push_back(std::make_unique<ScopedEnv>(name, std::nullopt));
    }
    env_.push_back(std::make_unique<ScopedEnv>("OPENAI_BASE_URL", fakes().tls.base_url() + "/v1"));
    env_.push_back(std::make_unique<ScopedEnv>("OPENAI_API_KEY", "sk-pool-test"));
    env_.push_back(std::make_unique<ScopedEnv>("LLM_CACHING_CA_FILE", fakes().certs.ca_cert));
  }
  static llmc_test::FakeProviderPair& fakes() { return llmc_test::shared_fake_providers(); }
  static RunOptions options() {
    RunOptions o;
    o.redis_url = "memory://";
    o.namespace_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    return o;
  }
  /// Connections the fake accepted, less the one this question itself opens.
  static std::int64_t connections() { return fakes().tls.stats().at("connections").as_int64() - 1; }
  std::vector<std::unique_ptr<ScopedEnv>> env_;
};

TEST_F(ClientPoolTest, SequentialMissesOverHttpsShareOneConnection) {
  const Agent agent{.model = "openai:gpt-4o-mini"};
  const std::int64_t before = connections();
  for (int i = 0; i < 100; ++i) {
    const RunResult r =
        cached_agent_run_sync(agent, "question " + std::to_string(i), "pool", options());
    ASSERT_FALSE(r.cache_hit);
    ASSERT_TRUE(r.output.starts_with("echo: question " + std::to_string(i))) << r.output;
  }
  // One connection, or two if the fake closed an idle one in between: never one per call.
  const std::int64_t opened = connections() - before - 1;  // the `before` question's own
  EXPECT_GE(opened, 1);
  EXPECT_LE(opened, 2);
  EXPECT_EQ(fakes().tls.stats().at("total").as_int64(), 100);
}

TEST_F(ClientPoolTest, EightThreadsShareThePool) {
  const Agent agent{.model = "openai:gpt-4o-mini"};
  const std::int64_t before = connections();
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const std::string prompt = "thread " + std::to_string(t) + " call " + std::to_string(i);
        const RunResult r = cached_agent_run_sync(agent, prompt, "pool", options());
        if (r.output.starts_with("echo: " + prompt)) ++answered;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(answered.load(), 200);
  // At most one connection per concurrent caller (the pool keeps 8 idle per host), then reused.
  const std::int64_t opened = connections() - before - 1;
  EXPECT_LE(opened, 8 + 2);
  EXPECT_EQ(fakes().tls.stats().at("total").as_int64(), 200);
}

}  // namespace

// "Why did this replay miss?" end to end (docs/TESTING.md): record with the fake provider, stop
// it, then a changed request in replay_only names the nearest recorded entry and the fields that
// differ, in the library's CacheMissError (dir:// and SQLite), the CLI's error and the gateway's
// 504 body; the recorded files show each request, redacted, and hold no key.
#include "llm_caching/agent.hpp"
#include "llm_caching/errors.hpp"

#include "support/child_process.hpp"
#include "support/fake_provider.hpp"
#include "support/files.hpp"
#include "support/redis_server.hpp"
#include "support/test_env.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace llm_caching {
namespace {

using llmc_test::quote;

namespace fs = std::filesystem;
using llmc_test::ScopedEnv;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kSecret = "sk-replay-secret-4242";

std::string all_text(const fs::path& root) {
  std::string text;
  for (const auto& f : fs::recursive_directory_iterator(root)) {
    if (!f.is_regular_file()) continue;
    std::ifstream in(f.path(), std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    text += s.str();
  }
  return text;
}

class ReplayMiss : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name :
         {"OPENAI_API_KEY", "LLM_CACHE_REDIS_URL", "LLM_CACHE_USAGE_LOG", "LLM_CACHE_MODE",
          "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"}) {
      env_.push_back(std::make_unique<ScopedEnv>(name, std::nullopt));
    }
    env_.push_back(std::make_unique<ScopedEnv>("OPENAI_BASE_URL", fake_->base_url() + "/v1"));
    env_.push_back(std::make_unique<ScopedEnv>("LLM_CACHE_REDACT", "tok-[0-9]+"));
    env_.push_back(std::make_unique<ScopedEnv>("OPENAI_API_KEY", kSecret));
  }
  /// The provider is gone and the key unset: what CI sees.
  void stop_provider() {
    fake_.reset();
    env_.push_back(std::make_unique<ScopedEnv>("OPENAI_API_KEY", std::nullopt));
  }
  RunResult run(const std::string& url, const std::string& prompt, CacheMode mode,
                std::optional<double> temperature = std::nullopt) {
    RunOptions options;
    options.cache_url = url;
    options.namespace_ = "suite";
    options.mode = mode;
    Agent agent{.model = "openai:gpt-4o-mini"};
    agent.settings.temperature = temperature;
    return cached_agent_run_sync(agent, prompt, "jokes", options);
  }
  /// The CacheMissError's message of a replay of `prompt`.
  std::string miss_of(const std::string& url, const std::string& prompt,
                      std::optional<double> temperature = std::nullopt) {
    try {
      run(url, prompt, CacheMode::replay_only, temperature);
    } catch (const CacheMissError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no CacheMissError for " << prompt;
    return {};
  }

  llmc_test::TempDir work_;
  fs::path root_ = work_.path() / "llm-cache";
  std::unique_ptr<llmc_test::FakeProvider> fake_ = std::make_unique<llmc_test::FakeProvider>();
  std::string fake_base_url_ = fake_->base_url();
  std::vector<std::unique_ptr<ScopedEnv>> env_;
};

TEST_F(ReplayMiss, TheLibraryNamesTheNearestDirEntryAndTheFieldsThatDiffer) {
  const std::string url = "dir://" + root_.string();
  run(url, "Tell me a joke about cats", CacheMode::use);
  run(url, "Summarise this week's news in three short bullet points", CacheMode::use);
  run(url, "my token is tok-98765, keep it", CacheMode::use);
  stop_provider();

  const std::string miss = miss_of(url, "Tell me a joke about dogs", 0.2);
  EXPECT_THAT(miss, HasSubstr("task 'jokes'"));
  EXPECT_THAT(miss, HasSubstr("nearest recorded entry: llm-caching:v1:suite:"));
  EXPECT_THAT(miss, HasSubstr(" in " + (root_ / "suite").string() + "/")) << "its file";
  EXPECT_THAT(miss, HasSubstr("nearest of 3 openai chat entries of namespace 'suite'"));
  EXPECT_THAT(miss, HasSubstr("2 fields differ from it:"));
  EXPECT_THAT(miss,
              HasSubstr(R"(].content: "Tell me a joke about cats" → "Tell me a joke about dogs")"));
  EXPECT_THAT(miss, HasSubstr("\n    temperature: added 0.2"));

  // The files show each request for review, scrubbed, and hold no key.
  const std::string files = all_text(root_);
  EXPECT_THAT(files, HasSubstr(R"("format": "llm-caching-dir-entry/3")"));
  EXPECT_THAT(files, HasSubstr(R"("task": "jokes")"));
  EXPECT_THAT(files, HasSubstr("  \"request\": {\n"));
  EXPECT_THAT(files, HasSubstr(R"("content": "Tell me a joke about cats")"));
  EXPECT_THAT(files, HasSubstr("my token is [REDACTED], keep it"));
  EXPECT_THAT(files, Not(HasSubstr("tok-98765")));
  EXPECT_THAT(files, Not(HasSubstr(kSecret)));

  // Another secret in the same place: the stored request matches once scrubbed, and the diff
  // never shows the live secret.
  const std::string scrubbed = miss_of(url, "my token is tok-11111, keep it");
  EXPECT_THAT(scrubbed, HasSubstr("the same once LLM_CACHE_REDACT's matches are scrubbed"));
  EXPECT_THAT(scrubbed.substr(scrubbed.find("nearest recorded entry")), Not(HasSubstr("tok-1")));
}

TEST_F(ReplayMiss, TheLibraryNamesTheNearestSqliteEntry) {
  const std::string url = "sqlite://" + (work_.path() / "c.db").string();
  run(url, "What is the capital of France?", CacheMode::use);
  run(url, "Name three primary colours", CacheMode::use);
  stop_provider();
  const std::string miss = miss_of(url, "What is the capital of Spain?");
  EXPECT_THAT(miss, HasSubstr("nearest of 2 openai chat entries of namespace 'suite'"));
  EXPECT_THAT(miss, HasSubstr("1 field differs from it:"));
  EXPECT_THAT(miss,
              HasSubstr(R"("What is the capital of France?" → "What is the capital of Spain?")"));
}

TEST_F(ReplayMiss, TheLibraryNamesTheNearestRedisEntryFoundBySCAN) {
  llmc_test::RedisServer server;
  // Other namespaces' keys around the suite's: the walk's SCAN MATCHes the namespace only.
  for (int i = 0; i < 50; ++i) {
    server.cli({"SET", "llm-caching:v1:other:" + std::to_string(i), "x"});
  }
  run(server.url(), "Translate 'good morning' into French", CacheMode::use);
  run(server.url(), "Translate 'good night' into German", CacheMode::use);
  stop_provider();
  const std::string miss = miss_of(server.url(), "Translate 'good morning' into Italian");
  EXPECT_THAT(miss, HasSubstr("nearest of 2 openai chat entries of namespace 'suite'"));
  EXPECT_THAT(miss, HasSubstr(R"("Translate 'good morning' into French" → )"
                              R"("Translate 'good morning' into Italian")"));
}

TEST_F(ReplayMiss, TheCliAndTheGateway504BodyNameItToo) {
  const std::string url = "dir://" + root_.string();
  const std::vector<std::string> serve{LLMC_CLI_PATH,
                                       "--cache-url",
                                       url,
                                       "serve",
                                       "--listen",
                                       "127.0.0.1:0",
                                       "--threads",
                                       "1",
                                       "--log-level",
                                       "warn",
                                       "--share-cache-across-keys",
                                       "--upstream",
                                       "openai=" + fake_base_url_ + "/v1"};
  const auto post = [](const llmc_test::ChildProcess& gateway, const std::string& body,
                       const std::string& headers) {
    const std::string port = gateway.ready_line().substr(gateway.ready_line().rfind(':') + 1);
    return llmc_test::run_shell("curl -sS --noproxy '*' -w '\\n%{http_code}' " + headers +
                                " -H 'content-type: application/json' --data " + quote(body) +
                                " http://127.0.0.1:" + port + "/v1/chat/completions 2>&1")
        .output;
  };
  {
    llmc_test::ChildProcess gateway(serve);
    const std::string recorded =
        post(gateway,
             R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},)"
             R"({"role":"user","content":"from the gateway"}]})",
             std::string("-H 'authorization: Bearer ") + kSecret + "'");
    ASSERT_TRUE(recorded.ends_with("\n200")) << recorded;
    EXPECT_EQ(gateway.stop(), 0);
  }
  const std::string ask = std::string(LLMC_CLI_PATH) + " --cache-url " + quote(url) +
                          " ask --namespace cli --model openai:gpt-4o-mini ";
  const auto cli_recorded = llmc_test::run_shell(ask + "'Count to three' 2>&1");
  ASSERT_EQ(cli_recorded.exit_code, 0) << cli_recorded.output;
  stop_provider();
  llmc_test::ChildProcess replay(serve);
  const std::string out =
      post(replay,
           R"({"model":"gpt-4o-mini","temperature":0.2,"messages":[{"role":"system","content":)"
           R"("Be brief."},{"role":"user","content":"from the gateway, changed"}]})",
           "-H 'cache-control: only-if-cached'");
  ASSERT_TRUE(out.ends_with("\n504")) << out;
  const auto body = boost::json::parse(out.substr(0, out.rfind('\n'))).as_object();
  const std::string message(body.at("error").at("message").as_string());
  EXPECT_THAT(message, HasSubstr("nearest recorded entry: llm-caching:v1:"));
  EXPECT_THAT(
      message,
      HasSubstr(R"(messages[1].content: "from the gateway" → "from the gateway, changed")"));
  EXPECT_THAT(message, HasSubstr("temperature: added 0.2"));
  EXPECT_EQ(replay.stop(), 0);

  // The CLI: exit 3, the same explanation on stderr.
  const auto cli = llmc_test::run_shell(ask + "--mode replay_only 'Count to four' 2>&1");
  EXPECT_EQ(cli.exit_code, 3) << cli.output;
  EXPECT_THAT(cli.output, HasSubstr("nearest recorded entry: llm-caching:v1:cli:"));
  EXPECT_THAT(cli.output, HasSubstr(R"(messages[0].content: "Count to three" → "Count to four")"));
}

}  // namespace
}  // namespace llm_caching

// The library's stale defaults from the environment (issue 29): LLM_CACHE_STALE_IF_ERROR makes a
// call that sets no stale option keep what it stores past its TTL and answer from it while the
// provider is down. In this process (cached_agent_run_sync) and in two `llm-caching ask`
// processes that share a SQLite file, against the fake provider, which the tests stop.
#include "llm_caching/agent.hpp"
#include "llm_caching/errors.hpp"

#include "support/fake_provider.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace llm_caching;
using namespace std::chrono_literals;
using llmc_test::FakeProvider;
using llmc_test::ScopedEnv;

constexpr auto kPastTheTtl = 1100ms;  // the entries below live 1 s

/// The environment of one test: the provider at `fake`, a key, and the stale variables.
struct Environment {
  std::vector<std::unique_ptr<ScopedEnv>> vars;
  Environment(const FakeProvider& fake, std::optional<std::string> stale_if_error) {
    for (const char* name :
         {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
          "ALL_PROXY", "all_proxy", "LLM_CACHE_REDIS_URL", "LLM_CACHE_STALE_WHILE_REVALIDATE"}) {
      vars.push_back(std::make_unique<ScopedEnv>(name, std::nullopt));
    }
    vars.push_back(std::make_unique<ScopedEnv>("OPENAI_API_KEY", "sk-stale-library"));
    vars.push_back(std::make_unique<ScopedEnv>("OPENAI_BASE_URL", fake.base_url() + "/v1"));
    vars.push_back(std::make_unique<ScopedEnv>("LLM_CACHE_STALE_IF_ERROR", stale_if_error));
  }
};

/// A call that sets no stale option, with a 1 s TTL and a short retry budget (an unreachable
/// provider is retried until it runs out). Each test has its own cache file: the variables are
/// read on a cache's first call.
RunOptions short_lived(const llmc_test::TempDir& dir) {
  RunOptions options;
  options.redis_url = "sqlite://" + dir.file("cache.db");
  options.ttl = 1s;
  options.max_wait = 300ms;
  options.initial_wait = 20ms;
  return options;
}

const Agent kAgent{.model = "openai:gpt-4o-mini"};

TEST(LibraryStaleDefaults, StaleIfErrorFromTheEnvironmentAnswersWhileTheProviderIsDown) {
  FakeProvider fake;
  Environment env(fake, "3600");
  llmc_test::TempDir dir;
  const RunResult first = cached_agent_run_sync(kAgent, "down", "t", short_lived(dir));
  ASSERT_FALSE(first.cache_hit);

  std::this_thread::sleep_for(kPastTheTtl);
  ASSERT_EQ(fake.stop(), 0);
  const RunResult stale = cached_agent_run_sync(kAgent, "down", "t", short_lived(dir));
  EXPECT_TRUE(stale.stale);
  EXPECT_TRUE(stale.cache_hit);
  EXPECT_EQ(stale.output, first.output);
  EXPECT_EQ(stale.cost_nano_usd, 0);

  // A call's own option wins over the default: 0 turns it off.
  RunOptions off = short_lived(dir);
  off.stale_if_error = 0ms;
  EXPECT_THROW(cached_agent_run_sync(kAgent, "down", "t", off), ProviderError);
}

TEST(LibraryStaleDefaults, WithoutTheVariableTheFailureReachesTheCaller) {
  FakeProvider fake;
  Environment env(fake, std::nullopt);
  llmc_test::TempDir dir;
  ASSERT_FALSE(cached_agent_run_sync(kAgent, "down", "t", short_lived(dir)).cache_hit);
  std::this_thread::sleep_for(kPastTheTtl);
  ASSERT_EQ(fake.stop(), 0);
  // Even a call that asks for stale-if-error: the writer did not keep the entry past its TTL.
  RunOptions asks = short_lived(dir);
  asks.stale_if_error = 60s;
  EXPECT_THROW(cached_agent_run_sync(kAgent, "down", "t", asks), ProviderError);
}

TEST(LibraryStaleDefaults, ABadValueIsAConfigurationErrorNamingTheVariable) {
  FakeProvider fake;
  Environment env(fake, "1h");
  llmc_test::TempDir dir;
  try {
    cached_agent_run_sync(kAgent, "bad", "t", short_lived(dir));
    ADD_FAILURE() << "LLM_CACHE_STALE_IF_ERROR=1h was accepted";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("LLM_CACHE_STALE_IF_ERROR"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(fake.stats().at("total").as_int64(), 0);
}

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// `llm-caching ask ... PROMPT`, a process of its own, in this process's environment.
CliResult ask(const llmc_test::TempDir& dir, const std::string& prompt) {
  const std::string out = dir.file("out"), err = dir.file("err");
  const std::string command = std::string(LLMC_CLI_PATH) + " --cache-url sqlite://" +
                              dir.file("cache.db") +
                              " ask --model openai:gpt-4o-mini --ttl 1s --max-wait 300ms "
                              "--initial-wait 20ms -v '" +
                              prompt + "' >" + out + " 2>" + err + " </dev/null";
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

TEST(LibraryStaleDefaults, TheCliAnswersFromTheEntryAnotherProcessKept) {
  FakeProvider fake;
  Environment env(fake, "3600");
  llmc_test::TempDir dir;
  const CliResult first = ask(dir, "across processes");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(first.err.starts_with("MISS ")) << first.err;

  std::this_thread::sleep_for(kPastTheTtl);
  ASSERT_EQ(fake.stop(), 0);
  const CliResult stale = ask(dir, "across processes");
  ASSERT_EQ(stale.exit_code, 0) << stale.err;
  EXPECT_EQ(stale.out, first.out);
  EXPECT_TRUE(stale.err.find("STALE ") != std::string::npos) << stale.err;
}

}  // namespace

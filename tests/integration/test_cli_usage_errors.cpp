// Usage errors as a user meets them (issue 32): the real binary, each mistake exits 2 with an
// `llm-caching:` line naming the bad flag or command, a "did you mean" for a typo, and the
// library's hints put in the CLI's terms.
#include "support/test_env.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using CliResult = llmc_test::ShellResult;  // output: stdout and stderr together

struct CliUsageErrors : ::testing::Test {
  llmc_test::TempDir dir;
  std::string url = "sqlite://" + dir.file("cache.db");

  /// Runs the CLI with `env` (NAME=VALUE words, or empty) in front and `args` quoted.
  CliResult run(const std::vector<std::string>& args, const std::string& env = "") const {
    std::string command = "env -u OPENAI_API_KEY -u LLM_CACHE_REDIS_URL -u LLM_CACHING_CA_FILE " +
                          env + " " + LLMC_CLI_PATH;
    for (const auto& a : args) command += " '" + a + "'";
    return llmc_test::run_shell(command + " 2>&1 </dev/null");
  }
};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_F(CliUsageErrors, AMistypedOptionIsNamedWithTheNearestOne) {
  const CliResult r = run({"--cache-url", url, "ask", "--modle", "openai:gpt-4o-mini", "Hi"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(r.output.starts_with("llm-caching: ")) << r.output;
  EXPECT_TRUE(contains(r.output, "unknown option '--modle'")) << r.output;
  EXPECT_TRUE(contains(r.output, "did you mean '--model'?")) << r.output;
  // CLI11's wording, which names neither, is gone.
  EXPECT_FALSE(contains(r.output, "is required")) << r.output;
}

TEST_F(CliUsageErrors, AMistypedOptionWithAValueAttachedIsNamedAlone) {
  const CliResult r = run({"cache", "stats", "--jsno", "--cache-url=" + url});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "unknown option '--jsno'")) << r.output;
  EXPECT_TRUE(contains(r.output, "did you mean '--json'?")) << r.output;
  const CliResult attached = run({"serve", "--listne=127.0.0.1:0"});
  EXPECT_EQ(attached.exit_code, 2) << attached.output;
  EXPECT_TRUE(contains(attached.output, "unknown option '--listne' for llm-caching serve"))
      << attached.output;
  EXPECT_TRUE(contains(attached.output, "did you mean '--listen'?")) << attached.output;
}

TEST_F(CliUsageErrors, AMistypedCommandIsNamedWithTheNearestOne) {
  const CliResult r = run({"cahce", "stats"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "llm-caching: unknown command 'cahce'")) << r.output;
  EXPECT_TRUE(contains(r.output, "did you mean 'cache'?")) << r.output;

  const CliResult sub = run({"cache", "stast"});
  EXPECT_EQ(sub.exit_code, 2) << sub.output;
  EXPECT_TRUE(contains(sub.output, "unknown command 'stast' for llm-caching cache")) << sub.output;
  EXPECT_TRUE(contains(sub.output, "did you mean 'stats'?")) << sub.output;
}

TEST_F(CliUsageErrors, AWordFarFromEveryNameListsTheCommands) {
  const CliResult r = run({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "unknown command 'frobnicate'")) << r.output;
  EXPECT_FALSE(contains(r.output, "did you mean")) << r.output;
  EXPECT_TRUE(contains(r.output, "cache, ask, serve")) << r.output;
}

TEST_F(CliUsageErrors, MissingAndMalformedValuesExitTwoNamingTheFlag) {
  const CliResult no_model = run({"--cache-url", url, "ask", "Hi"});
  EXPECT_EQ(no_model.exit_code, 2) << no_model.output;
  EXPECT_TRUE(contains(no_model.output, "llm-caching: ask: --model is required"))
      << no_model.output;

  const CliResult threads = run({"serve", "--threads", "many"});
  EXPECT_EQ(threads.exit_code, 2) << threads.output;
  EXPECT_TRUE(contains(threads.output, "--threads")) << threads.output;

  const CliResult no_command = run({"cache"});
  EXPECT_EQ(no_command.exit_code, 2) << no_command.output;
  EXPECT_TRUE(contains(no_command.output, "llm-caching cache needs a command"))
      << no_command.output;
  EXPECT_TRUE(contains(no_command.output, "stats")) << no_command.output;
}

TEST_F(CliUsageErrors, AMissingConfigFileExitsTwoNamingIt) {
  const std::string missing = dir.file("missing.json");
  const CliResult r = run({"serve", "--config", missing});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(r.output.starts_with("llm-caching: ")) << r.output;
  EXPECT_TRUE(contains(r.output, missing)) << r.output;
}

TEST_F(CliUsageErrors, HelpAndVersionAreNotErrors) {
  const CliResult help = run({"--help"});
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_TRUE(contains(help.output, "2 configuration or usage error")) << help.output;
  EXPECT_EQ(run({"cache", "--help"}).exit_code, 0);
  EXPECT_EQ(run({"--version"}).exit_code, 0);
}

TEST_F(CliUsageErrors, LibraryHintsNameTheCliFlagOrVariable) {
  // An https endpoint without a key: the library's hint names Agent::api_key, the CLI's does not.
  const CliResult no_key = run({"--cache-url", url, "ask", "--model", "openai:gpt-4o-mini", "Hi"},
                               "OPENAI_BASE_URL=https://127.0.0.1:9/v1");
  EXPECT_EQ(no_key.exit_code, 2) << no_key.output;
  EXPECT_TRUE(contains(no_key.output, "set OPENAI_API_KEY")) << no_key.output;
  EXPECT_FALSE(contains(no_key.output, "Agent::")) << no_key.output;

  // A model the price table lacks: the CLI names --price, not the library's custom_costs. The
  // price is checked before any call, so nothing listens at the URL.
  const CliResult unpriced =
      run({"--cache-url", url, "ask", "--model", "openai:no-such-model-32", "Hi"},
          "OPENAI_BASE_URL=http://127.0.0.1:9/v1 OPENAI_API_KEY=sk-test");
  EXPECT_EQ(unpriced.exit_code, 2) << unpriced.output;
  EXPECT_TRUE(contains(unpriced.output, "no price for model 'no-such-model-32'"))
      << unpriced.output;
  EXPECT_TRUE(contains(unpriced.output, "--price IN,OUT")) << unpriced.output;
  EXPECT_FALSE(contains(unpriced.output, "custom_costs")) << unpriced.output;

  const CliResult base_url = run({"--cache-url", url, "ask", "--model", "openai:gpt-4o-mini", "Hi"},
                                 "OPENAI_BASE_URL=127.0.0.1:9/v1 OPENAI_API_KEY=sk-test");
  EXPECT_EQ(base_url.exit_code, 2) << base_url.output;
  EXPECT_TRUE(contains(base_url.output, "OPENAI_BASE_URL or --base-url")) << base_url.output;
  EXPECT_FALSE(contains(base_url.output, "Agent::")) << base_url.output;
}

}  // namespace

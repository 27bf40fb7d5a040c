// The CLI's global options (--cache-url, --json) before or after the command (issue 29), run as
// a user would: the real binary, a real SQLite file, a gateway started with its cache URL after
// `serve`.
#include "support/child_process.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using CliResult = llmc_test::ShellResult;  // output: stdout and stderr together

CliResult run_cli(const std::vector<std::string>& args) {
  std::string command = LLMC_CLI_PATH;
  for (const auto& a : args) command += " '" + a + "'";
  return llmc_test::run_shell(command + " 2>&1 </dev/null");
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

struct CliGlobalOptions : ::testing::Test {
  llmc_test::TempDir dir;
  std::string file = dir.file("cache.db");
  std::string url = "sqlite://" + file;
};

TEST_F(CliGlobalOptions, CacheStatsTakesThemOnEitherSide) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--cache-url", url, "--json", "cache", "stats"},
           {"cache", "stats", "--json", "--cache-url", url},
           {"cache", "stats", "--cache-url", url, "--json"},
           {"--json", "cache", "stats", "--cache-url", url},
           {"cache", "--cache-url", url, "stats", "--json"},
       }) {
    const CliResult r = run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // --json was taken (the output is JSON) and so was --cache-url (the backend is the file).
    const auto stats = boost::json::parse(r.output).as_object();
    EXPECT_TRUE(contains(std::string(stats.at("backend").as_string()), file)) << r.output;
  }
}

TEST_F(CliGlobalOptions, AskTakesTheCacheUrlAfterTheCommand) {
  // replay_only never calls a provider: a miss exits 3, having opened the cache it was given.
  const CliResult r = run_cli({"ask", "--model", "openai:gpt-4o-mini", "--mode", "replay_only",
                               "--cache-url", url, "Hello"});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_TRUE(std::filesystem::exists(file)) << r.output;
}

TEST_F(CliGlobalOptions, ServeTakesTheCacheUrlAfterTheCommand) {
  llmc_test::ChildProcess gateway({LLMC_CLI_PATH, "serve", "--cache-url", url, "--listen",
                                   "127.0.0.1:0", "--threads", "1", "--log-level", "warn"});
  EXPECT_TRUE(contains(gateway.ready_line(), "listening on 127.0.0.1:")) << gateway.ready_line();
  EXPECT_TRUE(std::filesystem::exists(file));  // the gateway opened the cache it was given
  EXPECT_EQ(gateway.stop(), 0);
}

TEST_F(CliGlobalOptions, UnknownOptionsAreStillRefused) {
  const CliResult r = run_cli({"cache", "stats", "--cache-url", url, "--no-such-option"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "--no-such-option")) << r.output;
  EXPECT_FALSE(std::filesystem::exists(file)) << "nothing ran";
}

TEST_F(CliGlobalOptions, EachCommandsHelpSaysSo) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"serve", "--help"}, {"cache", "stats", "--help"}, {"ask", "--help"}}) {
    const CliResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "Global options, before or after the command: --cache-url"))
        << args.front() << ":\n"
        << r.output;
  }
  const CliResult serve = run_cli({"serve", "--help"});
  EXPECT_TRUE(contains(serve.output, "--stale-while-revalidate")) << serve.output;
  EXPECT_TRUE(contains(serve.output, "--stale-if-error")) << serve.output;
}

}  // namespace

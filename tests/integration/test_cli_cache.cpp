// The `llm-caching cache ...` commands, run as a user would: the real binary on a real SQLite
// file, filled through the library.
#include "llm_caching/agent.hpp"
#include "llm_caching/cache_key.hpp"

#include "support/scripted_model.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <regex>

namespace llm_caching {
namespace {

using namespace std::chrono_literals;

using CliResult = llmc_test::ShellResult;  // output: stdout and stderr together

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

CliResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text = {}) {
  std::string command;
  if (!stdin_text.empty()) command = "printf '%s' " + shell_quote(stdin_text) + " | ";
  command += LLMC_CLI_PATH;
  for (const auto& a : args) command += " " + shell_quote(a);
  return llmc_test::run_shell(command + " 2>&1");
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

struct CliCacheTest : ::testing::Test {
  llmc_test::TempDir dir;
  std::string url = "sqlite://" + dir.file("cache.db");
  std::shared_ptr<testing::ScriptedModel> model = std::make_shared<testing::ScriptedModel>();

  RunResult fill(const std::string& prompt, const std::string& ns = "",
                 std::chrono::milliseconds ttl = std::chrono::hours(1)) {
    RunOptions o;
    o.redis_url = url;
    o.namespace_ = ns;
    o.model_client = model;
    o.ttl = ttl;
    o.custom_costs["my-custom-model"] = ModelCosts{1.0, 2.0, 0.5, 0.1};
    return cached_agent_run_sync(Agent{.model = "openai:my-custom-model"}, prompt, "cli", o);
  }
  CliResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--cache-url", url});
    return run_cli(args);
  }
};

TEST(CliTest, VersionAndHelp) {
  CliResult v = run_cli({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_TRUE(contains(v.output, "llm-caching 0.")) << v.output;
  // A release build runs on jemalloc (asked of the allocator itself); a sanitizer build on its own.
  EXPECT_TRUE(contains(v.output, std::string("(allocator: ") + LLMC_CLI_ALLOCATOR)) << v.output;
  // It names the commit it was built from (this test runs from a git checkout).
  EXPECT_TRUE(std::regex_search(v.output, std::regex(", commit [0-9a-f]{12}(-dirty)?\n")))
      << v.output;

  CliResult help = run_cli({"cache", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* cmd : {"stats", "get", "rm", "clear", "prune", "key"}) {
    EXPECT_TRUE(contains(help.output, std::string("llm-caching cache ") + cmd)) << cmd;
  }
  CliResult key_help = run_cli({"cache", "key", "--help"});
  EXPECT_TRUE(contains(key_help.output, "Example:")) << key_help.output;
}

TEST(CliTest, NoCommandIsAnErrorThatShowsUsage) {
  CliResult r = run_cli({});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "cache")) << r.output;
}

TEST(CliTest, KeyOfARequestMatchesTheLibraryAndIgnoresVolatileFields) {
  const std::string request =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"temperature":0.0})";
  const std::string same_but_streamed =
      R"({"stream":true,"temperature":0,"messages":[{"content":"Hi","role":"user"}],"model":"gpt-4o-mini","user":"u1"})";
  const std::string expected =
      storage_key("", derive_key(Provider::openai, "gpt-4o-mini", boost::json::parse(request)).hex);

  CliResult a = run_cli({"cache", "key", "--provider", "openai", "-"}, request);
  CliResult b = run_cli({"cache", "key", "--provider", "openai", "-"}, same_but_streamed);
  EXPECT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, expected + "\n");
  EXPECT_EQ(b.output, expected + "\n");

  CliResult explained =
      run_cli({"cache", "key", "--provider", "openai", "--explain", "-"}, same_but_streamed);
  EXPECT_TRUE(contains(explained.output, "/stream")) << explained.output;
  EXPECT_TRUE(contains(explained.output, "/user")) << explained.output;
  EXPECT_TRUE(contains(explained.output, R"("temperature":0)")) << explained.output;
}

TEST(CliTest, KeyReadsAFileAndTakesNamespaceAndScope) {
  llmc_test::TempDir dir;
  const std::string path = dir.file("req.json");
  std::ofstream(path) << R"({"contents":[{"role":"user","parts":[{"text":"Hi"}]}]})";
  CliResult r = run_cli({"cache", "key", "--provider", "gemini", "--model", "gemini-2.0-flash",
                         "--namespace", "tests", "--scope", "tenant-a", path});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const auto request =
      boost::json::parse(R"({"contents":[{"role":"user","parts":[{"text":"Hi"}]}]})");
  EXPECT_EQ(r.output,
            storage_key("tests",
                        derive_key(Provider::gemini, "gemini-2.0-flash", request, "tenant-a").hex) +
                "\n");
}

TEST(CliTest, KeyErrorsSayWhatToFix) {
  CliResult no_model = run_cli({"cache", "key", "--provider", "gemini", "-"}, R"({"contents":[]})");
  EXPECT_EQ(no_model.exit_code, 2);
  EXPECT_TRUE(contains(no_model.output, "--model")) << no_model.output;

  CliResult bad_json = run_cli({"cache", "key", "--provider", "openai", "-"}, "{not json");
  EXPECT_EQ(bad_json.exit_code, 2);
  EXPECT_TRUE(contains(bad_json.output, "not valid JSON")) << bad_json.output;

  CliResult bad_provider = run_cli({"cache", "key", "--provider", "bard", "-"}, "{}");
  EXPECT_EQ(bad_provider.exit_code, 2);
  EXPECT_TRUE(contains(bad_provider.output, "openai")) << bad_provider.output;

  CliResult missing_file = run_cli({"cache", "key", "--provider", "openai", "/nonexistent.json"});
  EXPECT_NE(missing_file.exit_code, 0);
  EXPECT_TRUE(contains(missing_file.output, "/nonexistent.json")) << missing_file.output;
}

TEST_F(CliCacheTest, StatsCountsEntries) {
  CliResult empty = cli({"--json", "cache", "stats"});
  ASSERT_EQ(empty.exit_code, 0) << empty.output;
  EXPECT_EQ(boost::json::parse(empty.output).at("entries").as_int64(), 0);
  fill("one");
  fill("two");
  CliResult two = cli({"--json", "cache", "stats"});
  EXPECT_EQ(boost::json::parse(two.output).at("entries").as_int64(), 2) << two.output;
  CliResult human = cli({"cache", "stats"});
  EXPECT_TRUE(contains(human.output, "entries:   2")) << human.output;
}

TEST_F(CliCacheTest, GetPrintsTheEntryAndRmDeletesIt) {
  const RunResult r = fill("Hello");
  CliResult got = cli({"cache", "get", r.cache_key});
  ASSERT_EQ(got.exit_code, 0) << got.output;
  const auto entry = boost::json::parse(got.output).as_object();
  EXPECT_EQ(entry.at("provider").as_string(), "openai");
  EXPECT_EQ(entry.at("model").as_string(), "my-custom-model");
  EXPECT_EQ(entry.at("cost_nano_usd").as_int64(), r.cost_nano_usd);
  EXPECT_EQ(entry.at("response").at("choices").at(0).at("message").at("content").as_string(),
            testing::ScriptedModel::answer_text("Hello"));

  // A bare digest works too.
  const std::string hex = r.cache_key.substr(r.cache_key.rfind(':') + 1);
  EXPECT_EQ(cli({"cache", "get", hex}).exit_code, 0);

  CliResult removed = cli({"cache", "rm", r.cache_key});
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
  CliResult gone = cli({"cache", "get", r.cache_key});
  EXPECT_EQ(gone.exit_code, 3);
  EXPECT_TRUE(contains(gone.output, "no entry")) << gone.output;
  EXPECT_EQ(cli({"cache", "rm", r.cache_key}).exit_code, 3);
}

TEST_F(CliCacheTest, GetRejectsSomethingThatIsNotAKey) {
  CliResult r = cli({"cache", "get", "hello"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "64-character")) << r.output;
}

TEST_F(CliCacheTest, ClearByNamespaceLeavesTheOthers) {
  fill("a", "alpha");
  fill("b", "alpha");
  const RunResult kept = fill("c", "beta");
  CliResult cleared = cli({"cache", "clear", "--namespace", "alpha"});
  EXPECT_EQ(cleared.exit_code, 0) << cleared.output;
  EXPECT_TRUE(contains(cleared.output, "removed 2 entries")) << cleared.output;
  EXPECT_EQ(cli({"cache", "get", kept.cache_key}).exit_code, 0);
  CliResult all = cli({"cache", "clear"});
  EXPECT_TRUE(contains(all.output, "removed 1 entries")) << all.output;
}

TEST_F(CliCacheTest, PruneDropsExpiredEntries) {
  fill("short", "", 1ms);
  fill("long");
  std::this_thread::sleep_for(20ms);
  CliResult pruned = cli({"cache", "prune"});
  EXPECT_EQ(pruned.exit_code, 0) << pruned.output;
  EXPECT_TRUE(contains(pruned.output, "removed 1 expired")) << pruned.output;
}

TEST(CliTest, MalformedCacheUrlIsAConfigurationErrorWithoutThePassword) {
  CliResult r = run_cli({"--cache-url", "sqlite://relative/path.db", "cache", "stats"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "sqlite:///")) << r.output;
  CliResult secret = run_cli({"--cache-url", "bogus://user:hunter2@host", "cache", "stats"});
  EXPECT_EQ(secret.exit_code, 2);
  EXPECT_FALSE(contains(secret.output, "hunter2")) << secret.output;
}

TEST(CliTest, DefaultCacheIsTheEmbeddedFileUnderXdgCacheHome) {
  llmc_test::TempDir dir;
  llmc_test::ScopedEnv xdg("XDG_CACHE_HOME", dir.path().string());
  llmc_test::ScopedEnv url("LLM_CACHE_REDIS_URL", std::nullopt);
  CliResult r = run_cli({"cache", "stats"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "llm-caching" / "cache.db"));
  EXPECT_TRUE(contains(r.output, (dir.path() / "llm-caching" / "cache.db").string())) << r.output;
}

}  // namespace
}  // namespace llm_caching

// Test-suite mode end to end (docs/TESTING.md): record into a dir:// cache through the CLI (8
// processes at once), the library and the gateway against the fake provider; stop the provider;
// replay in fresh processes with no API key; the tree stays byte-identical. Then the commands
// that move and trim such a cache: export, LLM_CACHE_USAGE_LOG, unused, prune --unused.
#include "llm_caching/agent.hpp"
#include "llm_caching/cache_key.hpp"

#include "core/sha256.hpp"
#include "support/child_process.hpp"
#include "support/fake_provider.hpp"
#include "support/files.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

namespace llm_caching {
namespace {

using llmc_test::quote;
using llmc_test::slurp;
using llmc_test::tree_hashes;

namespace fs = std::filesystem;
using llmc_test::ScopedEnv;

constexpr const char* kSecret = "sk-dir-secret-4242";

std::string all_text(const fs::path& root) {
  std::string text;
  for (const auto& f : fs::recursive_directory_iterator(root)) {
    if (f.is_regular_file()) text += slurp(f.path());
  }
  return text;
}

class DirCacheEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name :
         {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
          "LLM_CACHE_REDIS_URL", "LLM_CACHE_USAGE_LOG", "LLM_CACHE_REDACT", "LLM_CACHE_MODE",
          "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"}) {
      env_.push_back(std::make_unique<ScopedEnv>(name, std::nullopt));
    }
    env_.push_back(std::make_unique<ScopedEnv>("OPENAI_BASE_URL", fake_->base_url() + "/v1"));
  }
  void with_key() { env_.push_back(std::make_unique<ScopedEnv>("OPENAI_API_KEY", kSecret)); }
  void without_key() {
    env_.push_back(std::make_unique<ScopedEnv>("OPENAI_API_KEY", std::nullopt));
  }
  std::int64_t calls() const { return fake_->stats().at("total").as_int64(); }

  /// The CLI run from the work dir, with the cache given by its relative URL.
  llmc_test::ShellResult cli(const std::string& args) const {
    return llmc_test::run_shell("cd " + quote(work_.path().string()) + " && " + LLMC_CLI_PATH +
                                " --cache-url dir://tests/llm-cache " + args + " 2>&1");
  }
  llmc_test::ShellResult ask(const std::string& prompt, const std::string& mode = "use") const {
    return cli("ask --namespace suite --model openai:gpt-4o-mini --mode " + mode + " " +
               quote(prompt));
  }

  std::string url() const { return "dir://" + root_.string(); }
  /// `llm-caching serve` on the tree, sharing entries across callers' keys (so a replay without
  /// a key finds them), upstream at the fake provider.
  std::vector<std::string> serve() const {
    return {LLMC_CLI_PATH,
            "--cache-url",
            url(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "2",
            "--log-level",
            "warn",
            "--share-cache-across-keys",
            "--upstream",
            "openai=" + fake_base_url_ + "/v1"};
  }
  /// curl's output: the body, a newline, the status.
  static llmc_test::ShellResult post(const llmc_test::ChildProcess& gateway,
                                     const std::string& body, const std::string& headers) {
    const std::string port = gateway.ready_line().substr(gateway.ready_line().rfind(':') + 1);
    return llmc_test::run_shell("curl -sS --noproxy '*' -w '\\n%{http_code}' " + headers +
                                " -H 'content-type: application/json' --data " + quote(body) +
                                " http://127.0.0.1:" + port + "/v1/chat/completions 2>&1");
  }
  static constexpr const char* kGatewayBody =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"from the gateway"}]})";
  static constexpr const char* kStreamBody =
      R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"streamed"}]})";
  static constexpr const char* kOnlyIfCached = "-H 'cache-control: only-if-cached'";

  llmc_test::TempDir work_;
  fs::path root_ = work_.path() / "tests" / "llm-cache";
  std::unique_ptr<llmc_test::FakeProvider> fake_ = std::make_unique<llmc_test::FakeProvider>();
  std::string fake_base_url_ = fake_->base_url();  // kept: the replay runs after fake_ is gone
  std::vector<std::unique_ptr<ScopedEnv>> env_;
};

TEST_F(DirCacheEndToEnd, EightProcessesRecordThenAFreshProcessReplaysWithoutAKey) {
  with_key();
  // 8 processes ask the same 4 prompts, each starting at another one, all at once.
  const std::vector<std::string> prompts = {"alpha", "beta", "gamma", "delta"};
  std::string script;
  for (int p = 0; p < 8; ++p) {
    std::string loop = "(";
    for (int i = 0; i < 4; ++i) {
      loop += std::string(LLMC_CLI_PATH) + " --cache-url dir://tests/llm-cache ask --namespace " +
              "suite --model openai:gpt-4o-mini " + quote(prompts[(p + i) % 4]) +
              " >/dev/null || exit 1; ";
    }
    script += loop + ") & pids=\"$pids $!\"; ";
  }
  script += "rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc";
  const auto recorded = llmc_test::run_shell("cd " + quote(work_.path().string()) + " || exit 1; " +
                                             script + " 2>&1");
  ASSERT_EQ(recorded.exit_code, 0) << recorded.output;
  EXPECT_EQ(calls(), 4) << "one provider call per key, across processes: " << recorded.output;

  // One whole file per prompt, no temporary file left, no secret in any file.
  const auto before = tree_hashes(root_);
  EXPECT_EQ(before.size(), 4u);
  for (const auto& [name, hash] : before) {
    EXPECT_TRUE(name.starts_with("suite/") && name.ends_with(".json")) << name;
  }
  EXPECT_EQ(all_text(root_).find(kSecret), std::string::npos);
  EXPECT_EQ(cli("cache stats").output.find("entries:   4") != std::string::npos, true);

  // The provider is gone and there is no key: a fresh process replays every answer.
  fake_.reset();
  without_key();
  for (const auto& prompt : prompts) {
    const auto replayed = ask(prompt, "replay_only");
    EXPECT_EQ(replayed.exit_code, 0) << replayed.output;
    EXPECT_NE(replayed.output.find("echo: " + prompt), std::string::npos) << replayed.output;
  }
  // A changed prompt is a replay miss (exit 3), and it records nothing.
  const auto changed = ask("alpha, changed", "replay_only");
  EXPECT_EQ(changed.exit_code, 3) << changed.output;
  EXPECT_EQ(tree_hashes(root_), before) << "a replay leaves the tree byte-identical";

  // A hand-broken file: in replay_only the error names it; the tree is left as the user made it.
  const fs::path broken = root_ / before.begin()->first;
  std::ofstream(broken, std::ios::trunc) << "{ not json";
  std::string named;
  for (const auto& prompt : prompts) {
    const auto r = ask(prompt, "replay_only");
    if (r.exit_code != 0) named += r.output;
  }
  EXPECT_NE(named.find(broken.string()), std::string::npos) << named;
  EXPECT_NE(named.find("not valid JSON"), std::string::npos) << named;
  EXPECT_EQ(slurp(broken), "{ not json");
}

TEST_F(DirCacheEndToEnd, LibraryAndGatewayRecordAndAFreshGatewayReplaysWithoutAKey) {
  with_key();
  RunOptions options;
  options.cache_url = url();
  options.namespace_ = "suite";
  const RunResult live = cached_agent_run_sync(Agent{.model = "openai:gpt-4o-mini"},
                                               "from the library", "lib", options);
  EXPECT_FALSE(live.cache_hit);
  {
    llmc_test::ChildProcess gateway(serve());
    const std::string auth = std::string("-H 'authorization: Bearer ") + kSecret + "'";
    const std::string answer = post(gateway, kGatewayBody, auth).output;
    const std::string stream = post(gateway, kStreamBody, auth).output;
    EXPECT_TRUE(answer.ends_with("\n200")) << answer;
    EXPECT_TRUE(stream.ends_with("\n200")) << stream;
    EXPECT_EQ(gateway.stop(), 0);  // the write-behind finishes before exit
  }
  EXPECT_EQ(calls(), 3);
  const auto before = tree_hashes(root_);
  EXPECT_EQ(before.size(), 3u);
  const std::string files = all_text(root_);
  EXPECT_EQ(files.find(kSecret), std::string::npos);
  EXPECT_EQ(files.find("uthorization"), std::string::npos);
  EXPECT_NE(files.find("\"stream\": ["), std::string::npos) << "the stream as its events";

  fake_.reset();
  without_key();
  llmc_test::ChildProcess replay(serve());
  const auto again = post(replay, kGatewayBody, kOnlyIfCached).output;
  EXPECT_TRUE(again.ends_with("\n200")) << again;
  EXPECT_NE(again.find("from the gateway"), std::string::npos) << again;
  EXPECT_TRUE(post(replay, kStreamBody, kOnlyIfCached).output.ends_with("\n200"));
  // The library's entry is replayed by a fresh process (the CLI runs the library's path).
  const auto lib =
      llmc_test::run_shell(std::string(LLMC_CLI_PATH) + " --cache-url " + quote(url()) +
                           " ask --namespace suite --model openai:gpt-4o-mini "
                           "--mode replay_only 'from the library' 2>&1");
  EXPECT_EQ(lib.exit_code, 0) << lib.output;
  EXPECT_EQ(lib.output, live.output + "\n");
  const auto miss = post(replay, R"({"model":"gpt-4o-mini","messages":[]})", kOnlyIfCached).output;
  EXPECT_TRUE(miss.ends_with("\n504")) << miss;
  EXPECT_EQ(replay.stop(), 0);
  EXPECT_EQ(tree_hashes(root_), before) << "a replay leaves the tree byte-identical";
}

TEST_F(DirCacheEndToEnd, AHandBrokenFileUnderTheGatewayIsA504AndALogLineNamingIt) {
  with_key();
  {
    llmc_test::ChildProcess gateway(serve());
    const std::string auth = std::string("-H 'authorization: Bearer ") + kSecret + "'";
    const auto recorded = post(gateway, kGatewayBody, auth).output;
    ASSERT_TRUE(recorded.ends_with("\n200")) << recorded;
    EXPECT_EQ(gateway.stop(), 0);
  }
  const auto files = tree_hashes(root_);
  ASSERT_EQ(files.size(), 1u);
  const fs::path broken = root_ / files.begin()->first;
  std::ofstream(broken, std::ios::trunc) << "[1,";
  // The 504's body is the gateway's own message; its log names the file.
  const std::string log = (work_.path() / "gateway.log").string();
  std::vector<std::string> logged = {"/bin/sh", "-c", "exec \"$@\" 2>" + quote(log), "sh"};
  const auto args = serve();
  logged.insert(logged.end(), args.begin(), args.end());
  llmc_test::ChildProcess gateway(logged);
  const auto answer = post(gateway, kGatewayBody, kOnlyIfCached).output;
  EXPECT_TRUE(answer.ends_with("\n504")) << answer;
  EXPECT_EQ(gateway.stop(), 0);
  EXPECT_NE(slurp(log).find(broken.string() + " cannot be read"), std::string::npos) << slurp(log);
  EXPECT_EQ(slurp(broken), "[1,") << "the file stays as the user left it";
}

TEST_F(DirCacheEndToEnd, ExportMovesEntriesAndAUsageLogFindsTheUnusedOnes) {
  with_key();
  for (const char* prompt : {"one", "two", "three"}) ASSERT_EQ(ask(prompt).exit_code, 0);
  const std::string sqlite = "sqlite://" + (work_.path() / "copy.db").string();
  // dir -> SQLite -> a second dir: the same files come out.
  const auto out = cli("cache export dir://tests/llm-cache " + quote(sqlite));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("exported 3 entries"), std::string::npos) << out.output;
  // Not a terminal: plain progress lines (here only the last one), no bar redrawn with \r.
  EXPECT_NE(out.output.find("3/3 entries, "), std::string::npos) << out.output;
  EXPECT_EQ(out.output.find('\r'), std::string::npos) << out.output;
  // On a terminal (script(1) gives the command one): the bar, redrawn in place.
  const auto tty = llmc_test::run_shell(
      "cd " + quote(work_.path().string()) + " && script -qec " +
      quote(std::string(LLMC_CLI_PATH) + " cache export dir://tests/llm-cache dir://third") +
      " /dev/null 2>&1");
  EXPECT_EQ(tty.exit_code, 0) << tty.output;
  EXPECT_NE(tty.output.find("\r[##############################] 3/3 entries, "), std::string::npos)
      << tty.output;
  const auto back = cli("cache export " + quote(sqlite) + " dir://second --namespace suite");
  ASSERT_EQ(back.exit_code, 0) << back.output;
  EXPECT_EQ(tree_hashes(work_.path() / "second"), tree_hashes(root_));
  EXPECT_EQ(cli("cache export dir://second dir://second").exit_code, 2);

  // A run that reads two of the three logs them; unused lists the third; prune removes it.
  const std::string log = (work_.path() / "used.log").string();
  const auto logged = llmc_test::run_shell(
      "cd " + quote(work_.path().string()) + " && LLM_CACHE_USAGE_LOG=" + quote(log) + " " +
      LLMC_CLI_PATH + " --cache-url dir://tests/llm-cache ask --namespace suite --model " +
      "openai:gpt-4o-mini --mode replay_only one && LLM_CACHE_USAGE_LOG=" + quote(log) + " " +
      LLMC_CLI_PATH + " --cache-url dir://tests/llm-cache ask --namespace suite --model " +
      "openai:gpt-4o-mini --mode replay_only three 2>&1");
  ASSERT_EQ(logged.exit_code, 0) << logged.output;
  const auto unused = cli("cache unused --since-log " + quote(log));
  ASSERT_EQ(unused.exit_code, 0) << unused.output;
  EXPECT_EQ(std::count(unused.output.begin(), unused.output.end(), '\n'), 1) << unused.output;
  const std::string key = unused.output.substr(0, unused.output.size() - 1);
  EXPECT_TRUE(fs::exists(root_ / "suite" / (key.substr(key.rfind(':') + 1) + ".json"))) << key;
  // `cache get` shows it; a dir:// entry has no recorded time (its file is byte-stable).
  const auto got = cli("cache get " + quote(key));
  ASSERT_EQ(got.exit_code, 0) << got.output;
  EXPECT_NE(got.output.find("\"created_at\":null"), std::string::npos) << got.output;
  EXPECT_NE(got.output.find("\"expires_at\":null"), std::string::npos) << got.output;
  const auto pruned = cli("cache prune --unused --since-log " + quote(log));
  EXPECT_NE(pruned.output.find("removed 1 unused entries"), std::string::npos) << pruned.output;
  EXPECT_EQ(tree_hashes(root_).size(), 2u);
  EXPECT_EQ(cli("cache unused --since-log " + quote(log)).output, "");
  // An empty log would mark everything unused: refused.
  std::ofstream(work_.path() / "empty.log").flush();
  const auto empty = cli("cache prune --unused --since-log empty.log");
  EXPECT_EQ(empty.exit_code, 2) << empty.output;
  EXPECT_EQ(tree_hashes(root_).size(), 2u);
}

TEST_F(DirCacheEndToEnd, WarmSendsABatchOnceAndASecondRunCallsOnlyWhatIsMissing) {
  with_key();
  const auto line = [](const std::string& prompt) {
    return R"({"provider":"openai","request":{"model":"gpt-4o-mini","messages":[{"role":)"
           R"("user","content":")" +
           prompt + R"("}]}})" + "\n";
  };
  std::string batch;
  for (int i = 0; i < 10; ++i) batch += line("warm " + std::to_string(i));
  batch += line("warm 3");  // the same request twice: one call
  // A run that stops part-way (here: given the first four lines only), then the whole batch.
  std::ofstream(work_.path() / "part.jsonl") << batch.substr(0, 4 * line("warm 0").size());
  std::ofstream(work_.path() / "batch.jsonl") << batch;
  const auto part = cli("warm part.jsonl --namespace suite --concurrency 3");
  ASSERT_EQ(part.exit_code, 0) << part.output;
  EXPECT_EQ(calls(), 4);
  const auto all = cli("warm batch.jsonl --namespace suite --concurrency 3");
  ASSERT_EQ(all.exit_code, 0) << all.output;
  EXPECT_NE(all.output.find("warmed 11 requests: 5 already cached, 6 called, 0 failed, cost $"),
            std::string::npos)
      << all.output;
  EXPECT_NE(all.output.find("11/11 requests, "), std::string::npos) << "progress, with the cost";
  EXPECT_EQ(calls(), 10);
  EXPECT_EQ(tree_hashes(root_).size(), 10u);
  // Warm keys a request as the library does (`cache key` with the endpoint's scope: the fake is
  // not the public endpoint, whose scope is empty): the entry is where that key says.
  std::ofstream(work_.path() / "one.json")
      << R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"warm 7"}]})";
  const std::string scope =
      "endpoint=" + fake_base_url_.substr(fake_base_url_.find("//") + 2) + "/v1";
  const auto key =
      cli("cache key --provider openai --namespace suite --scope " + quote(scope) + " one.json");
  ASSERT_EQ(key.exit_code, 0) << key.output;
  const std::string hex = key.output.substr(key.output.rfind(':') + 1, 64);
  EXPECT_TRUE(fs::exists(root_ / "suite" / (hex + ".json"))) << key.output;
  EXPECT_EQ(calls(), 10);

  // A bad line names the file and the line, before any call.
  std::ofstream(work_.path() / "bad.jsonl") << line("fine") << "{\"provider\":\"nope\"}\n";
  const auto bad = cli("warm bad.jsonl");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("bad.jsonl:2: no \"request\" object"), std::string::npos) << bad.output;
  EXPECT_EQ(calls(), 10);
}

}  // namespace
}  // namespace llm_caching

// The task in recorded entries, and LLM_CACHE_REDACT on every backend, end to end with the fake
// provider (docs/TESTING.md, DESIGN §4): the library and the gateway record into dir:// and each
// file names its task; recording the same answer again (the same task or another) leaves the
// tree byte-identical; entries written before the task (format 3, dir-entry/2) still replay. A
// secret matching LLM_CACHE_REDACT is in none of the bytes SQLite or Redis store.
#include "llm_caching/agent.hpp"
#include "llm_caching/runtime.hpp"

#include "cache/cache_url.hpp"
#include "cache/run_blocking.hpp"
#include "cache/sqlite_backend.hpp"
#include "cache/tiered_cache.hpp"
#include "core/entry.hpp"
#include "core/sha256.hpp"
#include "support/child_process.hpp"
#include "support/fake_provider.hpp"
#include "support/files.hpp"
#include "support/redis_server.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>

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

constexpr const char* kKey = "sk-task-test-4242";
constexpr const char* kSecret = "tok-31415926";  // in a system prompt: the fake echoes only
                                                 // the last user message, never this

class EntryTask : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name :
         {"OPENAI_API_KEY", "LLM_CACHE_REDIS_URL", "LLM_CACHE_USAGE_LOG", "LLM_CACHE_REDACT",
          "LLM_CACHE_MODE", "LLM_CACHE_SIGNING_KEY", "LLM_CACHE_SIGNING_KEY_FILE", "HTTPS_PROXY",
          "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"}) {
      env_.push_back(std::make_unique<ScopedEnv>(name, std::nullopt));
    }
    env_.push_back(std::make_unique<ScopedEnv>("OPENAI_BASE_URL", fake_->base_url() + "/v1"));
    env_.push_back(std::make_unique<ScopedEnv>("OPENAI_API_KEY", kKey));
  }
  std::int64_t calls() const { return fake_->stats().at("total").as_int64(); }

  /// One library call in a runtime of its own (a fresh process's view of the cache).
  RunResult run(const std::string& url, const std::string& task, CacheMode mode = CacheMode::use,
                const std::string& system_prompt = "") {
    Runtime runtime;
    RunOptions options;
    options.cache_url = url;
    options.namespace_ = "suite";
    options.mode = mode;
    options.runtime = &runtime;
    Agent agent{.model = "openai:gpt-4o-mini"};
    agent.system_prompt = system_prompt;
    return cached_agent_run_sync(agent, "What is the capital of France?", task, options);
  }
  fs::path file_of(const std::string& key) const {
    return root_ / "suite" / (key.substr(key.rfind(':') + 1) + ".json");
  }
  std::vector<std::string> serve() const {
    return {LLMC_CLI_PATH,
            "--cache-url",
            "dir://" + root_.string(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--log-level",
            "warn",
            "--share-cache-across-keys",
            "--upstream",
            "openai=" + fake_->base_url() + "/v1"};
  }
  static std::string post(const llmc_test::ChildProcess& gateway, const std::string& body,
                          const std::string& headers) {
    const std::string port = gateway.ready_line().substr(gateway.ready_line().rfind(':') + 1);
    return llmc_test::run_shell("curl -sS --noproxy '*' -w '\\n%{http_code}' " + headers +
                                " -H 'content-type: application/json' --data " + quote(body) +
                                " http://127.0.0.1:" + port + "/v1/chat/completions 2>&1")
        .output;
  }
  static std::string body(const std::string& prompt) {
    return R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":")" + prompt + "\"}]}";
  }

  llmc_test::TempDir work_;
  fs::path root_ = work_.path() / "llm-cache";
  std::unique_ptr<llmc_test::FakeProvider> fake_ = std::make_unique<llmc_test::FakeProvider>();
  std::vector<std::unique_ptr<ScopedEnv>> env_;
};

TEST_F(EntryTask, TheLibraryAndTheGatewayRecordTheirTasksAndARecordAgainChangesNoByte) {
  const std::string url = "dir://" + root_.string();
  const RunResult recorded = run(url, "capitals");
  ASSERT_FALSE(recorded.cache_hit);
  const std::string library_file = slurp(file_of(recorded.cache_key));
  EXPECT_NE(library_file.find(R"("format": "llm-caching-dir-entry/3")"), std::string::npos);
  EXPECT_NE(library_file.find("\n  \"task\": \"capitals\",\n"), std::string::npos) << library_file;
  {
    llmc_test::ChildProcess gateway(serve());
    const std::string auth = std::string("-H 'authorization: Bearer ") + kKey + "'";
    EXPECT_TRUE(
        post(gateway, body("tasked"), auth + " -H 'x-llm-task: gw-suite'").ends_with("\n200"));
    EXPECT_TRUE(post(gateway, body("untasked"), auth).ends_with("\n200"));
    EXPECT_EQ(gateway.stop(), 0);
  }
  std::string tasked, untasked;
  for (const auto& f : fs::recursive_directory_iterator(root_)) {  // the gateway's: default/
    const std::string text = slurp(f.path());
    if (text.find("\"content\": \"tasked\"") != std::string::npos) tasked = text;
    if (text.find("\"content\": \"untasked\"") != std::string::npos) untasked = text;
  }
  EXPECT_NE(tasked.find("\n  \"task\": \"gw-suite\",\n"), std::string::npos) << tasked;
  EXPECT_NE(untasked.find(R"("format": "llm-caching-dir-entry/2")"), std::string::npos)
      << "no x-llm-task: no task, and the bytes of before: " << untasked;
  EXPECT_EQ(untasked.find("\"task\""), std::string::npos) << untasked;

  // Recorded again (refresh calls the provider) by the same task and by another: no byte moves.
  const auto before = tree_hashes(root_);
  const std::int64_t calls_before = calls();
  EXPECT_FALSE(run(url, "capitals", CacheMode::refresh).cache_hit);
  EXPECT_FALSE(run(url, "geography", CacheMode::refresh).cache_hit);
  EXPECT_EQ(calls(), calls_before + 2);
  EXPECT_EQ(tree_hashes(root_), before) << "the task that recorded the answer first stays";
  const RunResult hit = run(url, "geography");
  EXPECT_TRUE(hit.cache_hit);
  EXPECT_EQ(tree_hashes(root_), before) << "a hit never rewrites the task";
  const auto shown = llmc_test::run_shell(std::string(LLMC_CLI_PATH) + " --cache-url " +
                                          quote(url) + " cache get " + quote(hit.cache_key));
  EXPECT_NE(shown.output.find("\"task\":\"capitals\""), std::string::npos) << shown.output;

  // A fresh gateway, no provider, no key: every file replays, the one without a task included.
  fake_->stop();
  env_.push_back(std::make_unique<ScopedEnv>("OPENAI_API_KEY", std::nullopt));
  llmc_test::ChildProcess replay(serve());
  const std::string only = "-H 'cache-control: only-if-cached'";
  EXPECT_TRUE(post(replay, body("tasked"), only).ends_with("\n200"));
  EXPECT_TRUE(post(replay, body("untasked"), only).ends_with("\n200"));
  // A miss names the caller's task and prompt, as the library's does.
  const std::string miss = post(replay, body("never recorded"), only + " -H 'x-llm-task: ci'");
  EXPECT_TRUE(miss.ends_with("\n504")) << miss;
  EXPECT_NE(miss.find("task 'ci', prompt 'never recorded': no cached answer"), std::string::npos)
      << miss;
  EXPECT_EQ(replay.stop(), 0);
  EXPECT_EQ(tree_hashes(root_), before);
}

TEST_F(EntryTask, AnEntryWrittenBeforeTheTaskStillReplays) {
  const std::string url = "sqlite://" + (work_.path() / "c.db").string();
  const RunResult recorded = run(url, "capitals");
  cache::SqliteBackend sqlite(std::get<SqliteOptions>(cache::parse_cache_url(url)));
  auto stored = cache::run_blocking(sqlite.get(recorded.cache_key));
  ASSERT_TRUE(stored.has_value());
  ASSERT_EQ((*stored)[4], '\x04') << "format 4: it names its task";
  // The same entry as format 3 wrote it (no task), under the same key.
  core::CacheEntry old = std::get<core::CacheEntry>(core::decode_entry(*stored));
  EXPECT_EQ(old.task, "capitals");
  old.task.clear();
  const std::string v3 = core::encode_entry(old);
  ASSERT_EQ(v3[4], '\x03');
  cache::run_blocking(sqlite.put(recorded.cache_key, v3, std::chrono::milliseconds(0)));

  fake_->stop();
  const RunResult replayed = run(url, "capitals", CacheMode::replay_only);
  EXPECT_TRUE(replayed.cache_hit);
  EXPECT_EQ(replayed.output, recorded.output);
}

/// Every byte Redis holds: the string values of all its keys.
std::string redis_bytes(const llmc_test::RedisServer& server) {
  std::string all;
  std::istringstream keys(server.cli({"--scan"}));
  for (std::string key; std::getline(keys, key);) {
    if (server.cli({"TYPE", key}) == "string") all += server.cli({"GET", key}) + "\n";
  }
  return all;
}

/// Every byte of a SQLite cache: the database file and its WAL.
std::string sqlite_bytes(const fs::path& db) {
  std::string all = slurp(db);
  if (fs::exists(db.string() + "-wal")) all += slurp(db.string() + "-wal");
  return all;
}

TEST_F(EntryTask, ASecretMatchingLlmCacheRedactIsInNoByteSqliteOrRedisStores) {
  const std::string prompt = std::string("Be brief. My token is ") + kSecret + ".";
  llmc_test::RedisServer redis;
  const fs::path plain_db = work_.path() / "plain.db";
  const fs::path db = work_.path() / "redacted.db";

  // Without LLM_CACHE_REDACT the stored request holds the prompt (so the checks below can fail).
  const RunResult plain = run("sqlite://" + plain_db.string(), "t", CacheMode::use, prompt);
  EXPECT_NE(sqlite_bytes(plain_db).find(kSecret), std::string::npos);

  env_.push_back(std::make_unique<ScopedEnv>("LLM_CACHE_REDACT", "tok-[0-9]+"));
  const RunResult in_sqlite = run("sqlite://" + db.string(), "t", CacheMode::use, prompt);
  const RunResult in_redis = run(redis.url(), "t", CacheMode::use, prompt);
  EXPECT_EQ(in_sqlite.cache_key, plain.cache_key) << "the key is made from the request as sent";
  EXPECT_EQ(in_redis.cache_key, plain.cache_key);
  EXPECT_EQ(sqlite_bytes(db).find(kSecret), std::string::npos);
  const std::string in_redis_bytes = redis_bytes(redis);
  EXPECT_NE(in_redis_bytes.find("[REDACTED]"), std::string::npos) << "the entry is there";
  EXPECT_EQ(in_redis_bytes.find(kSecret), std::string::npos);
  for (const std::string url : {"sqlite://" + db.string(), redis.url()}) {
    // The stored request is the scrubbed one, and the entry is a hit for the request as sent.
    std::shared_ptr<cache::Backend> backend = cache::open_backend(cache::parse_cache_url(url));
    const auto stored = cache::run_blocking(backend->get(plain.cache_key));
    ASSERT_TRUE(stored.has_value()) << url;
    const auto entry = std::get<core::CacheEntry>(core::decode_entry(*stored));
    EXPECT_NE(entry.request.find("My token is [REDACTED]."), std::string::npos) << entry.request;
    EXPECT_TRUE(run(url, "t", CacheMode::use, prompt).cache_hit) << url;
  }
}

}  // namespace
}  // namespace llm_caching

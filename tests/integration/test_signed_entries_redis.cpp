// Signed entries against a poisoner with write access to a shared Redis (docs/SECURITY-MODEL.md,
// "Poisoned caches"): `llm-caching serve` with LLM_CACHE_SIGNING_KEY over a real redis-server;
// the test writes forged entries (the right key, a valid format, no MAC or a wrong one) straight
// into Redis and checks that none is ever served, that each is counted and deleted, and that a
// key rotation keeps the old key's entries readable.
#include "cache/cache_url.hpp"
#include "cache/redis_backend.hpp"
#include "cache/run_blocking.hpp"
#include "core/entry.hpp"
#include "core/entry_signature.hpp"
#include "integration/gateway_harness.hpp"
#include "support/redis_server.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

namespace {

using namespace gateway_test;
using namespace llm_caching;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string kKeyA = "signing-key-A-0123456789abcdef";
const std::string kKeyB = "signing-key-B-fedcba9876543210";
constexpr std::string_view kPoison = "POISONED ANSWER";

/// `llm-caching serve` over `cache_url` with the signing variables given, no L1 (every request
/// reads Redis), its log captured.
class SigningGateway {
 public:
  SigningGateway(const llmc_test::FakeProvider& fake, const std::string& cache_url,
                 std::vector<std::string> env, std::vector<std::string> extra = {})
      : process_(argv(fake, cache_url, std::move(env), std::move(extra))),
        port_(port_of(process_.ready_line())) {}

  HttpResponse ask(const std::string& text) const {
    return send(post("http://127.0.0.1:" + std::to_string(port_) + "/v1/chat/completions",
                     openai_body(text), {{"authorization", "Bearer sk-signed"}}));
  }
  std::string metrics() const {
    HttpRequest request;
    request.method = "GET";
    request.url = "http://127.0.0.1:" + std::to_string(port_) + "/metrics";
    return send(std::move(request)).body;
  }
  std::string log() { return read_file(dir_.file("stderr.log")); }

 private:
  std::vector<std::string> argv(const llmc_test::FakeProvider& fake, const std::string& cache_url,
                                std::vector<std::string> env, std::vector<std::string> extra) {
    clear_proxy_environment();
    std::vector<std::string> args = {
        "/bin/sh", "-c", "exec \"$@\" 2>'" + dir_.file("stderr.log") + "'", "sh", "env"};
    args.insert(args.end(), env.begin(), env.end());
    for (const char* arg :
         {kCliPath, "--cache-url", cache_url.c_str(), "serve", "--listen", "127.0.0.1:0",
          "--threads", "2", "--log-level", "warn", "--l1-mb", "0"}) {
      args.emplace_back(arg);
    }
    args.push_back("--upstream");
    args.push_back("openai=" + fake.base_url() + "/v1");
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  llmc_test::TempDir dir_;
  llmc_test::ChildProcess process_;
  std::uint16_t port_;
};

std::string refused(const std::string& metrics, const std::string& reason) {
  const std::string line = "llmc_gateway_cache_entries_refused_total{reason=\"" + reason + "\"} ";
  const auto at = metrics.find(line);
  if (at == std::string::npos) return "absent";
  return metrics.substr(at + line.size(), metrics.find('\n', at) - at - line.size());
}

class SignedEntriesInRedis : public ::testing::Test {
 protected:
  llmc_test::RedisServer redis_;
  llmc_test::FakeProvider fake_;
  cache::RedisBackend poisoner_{std::get<RedisOptions>(cache::parse_cache_url(redis_.url()))};

  /// The entry under `key` with its answer replaced by the poison: a valid entry in every way
  /// but its MAC, which `sign_with` makes (empty: none).
  void poison(const std::string& key, const std::string& sign_with) {
    const auto stored = cache::run_blocking(poisoner_.get(key));
    ASSERT_TRUE(stored.has_value()) << key;
    auto entry = std::get<core::CacheEntry>(core::decode_entry(*stored));
    entry.response = std::string(R"({"id":"chatcmpl-poison","object":"chat.completion",)") +
                     R"("choices":[{"index":0,"message":{"role":"assistant","content":")" +
                     std::string(kPoison) + R"("},"finish_reason":"stop"}],)" +
                     R"("usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})";
    std::string bytes = core::encode_entry(entry);
    if (!sign_with.empty()) bytes = core::sign_entry(std::move(bytes), key, sign_with);
    ASSERT_TRUE(std::holds_alternative<core::CacheEntry>(core::decode_entry(bytes)));
    cache::run_blocking(poisoner_.put(key, bytes, 0ms));
  }
  bool stored(const std::string& key) {
    return cache::run_blocking(poisoner_.get(key)).has_value();
  }
  /// Waits for the gateway's write of a miss (it answers first and writes behind, docs/
  /// SINGLE_FLIGHT.md) to reach Redis, signed under `signing_key`. Polls the server's own step;
  /// the 20 s bound only turns a hang into a failure.
  void wait_for_signed(const std::string& key, const std::string& signing_key) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      const auto bytes = cache::run_blocking(poisoner_.get(key));
      if (bytes &&
          core::check_signature(*bytes, key, {signing_key, ""}) == core::SignatureCheck::valid) {
        return;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        FAIL() << "no entry signed with the expected key under " << key;
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
  }
};

TEST_F(SignedEntriesInRedis, AForgedEntryIsNeverServedAndIsCountedLoggedAndDeleted) {
  SigningGateway gateway(fake_, redis_.url(), {"LLM_CACHE_SIGNING_KEY=" + kKeyA});
  const HttpResponse first = gateway.ask("what is signed?");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("x-llm-cache"), "MISS");
  const std::string key = first.header("x-llm-cache-key");
  wait_for_signed(key, kKeyA);  // what the gateway stored is signed...
  EXPECT_EQ(gateway.ask("what is signed?").header("x-llm-cache"), "HIT");  // ...and read back
  EXPECT_THAT(*cache::run_blocking(poisoner_.get(key)), Not(HasSubstr(kKeyA)));

  poison(key, "");  // no MAC at all
  HttpResponse answer = gateway.ask("what is signed?");
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.header("x-llm-cache"), "MISS");
  EXPECT_THAT(answer.body, Not(HasSubstr(kPoison)));
  EXPECT_EQ(answer.body, first.body);  // the fake provider's deterministic answer again
  wait_for_signed(key, kKeyA);

  poison(key, "a-key-that-is-not-ours-0000");  // a MAC, but not ours
  answer = gateway.ask("what is signed?");
  EXPECT_EQ(answer.header("x-llm-cache"), "MISS");
  EXPECT_THAT(answer.body, Not(HasSubstr(kPoison)));

  const std::string metrics = gateway.metrics();
  EXPECT_EQ(refused(metrics, "unsigned"), "1");
  EXPECT_EQ(refused(metrics, "wrong_mac"), "1");
  // The miss stored a good entry again: Redis holds ours, and the next request is a hit.
  wait_for_signed(key, kKeyA);
  EXPECT_EQ(gateway.ask("what is signed?").header("x-llm-cache"), "HIT");
  const std::string log = gateway.log();
  EXPECT_THAT(log, HasSubstr(key));
  EXPECT_THAT(log, Not(HasSubstr(kKeyA)));
}

TEST_F(SignedEntriesInRedis, ARefusedEntryIsDeletedFromRedis) {
  // No retries: once the fake provider is gone, the miss fails at once.
  SigningGateway gateway(fake_, redis_.url(), {"LLM_CACHE_SIGNING_KEY=" + kKeyA},
                         {"--max-wait-ms", "0"});
  const std::string key = gateway.ask("deleted?").header("x-llm-cache-key");
  wait_for_signed(key, kKeyA);
  poison(key, "");
  fake_.stop();  // the refill cannot happen: what is left in Redis is what the refusal left
  EXPECT_EQ(gateway.ask("deleted?").status, 502);
  EXPECT_FALSE(stored(key));
}

TEST_F(SignedEntriesInRedis, WithoutSigningTheSamePoisonIsServed) {
  // The threat the MAC answers: the same forged bytes are a hit for a gateway without the key.
  SigningGateway gateway(fake_, redis_.url(), {});
  const std::string key = gateway.ask("unsigned gateway").header("x-llm-cache-key");
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!stored(key) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  poison(key, "");
  const HttpResponse answer = gateway.ask("unsigned gateway");
  EXPECT_EQ(answer.header("x-llm-cache"), "HIT");
  EXPECT_THAT(answer.body, HasSubstr(kPoison));
}

TEST_F(SignedEntriesInRedis, ARotationReadsTheOldKeysEntriesUntilThePreviousKeyIsDropped) {
  std::string key;
  {
    SigningGateway before(fake_, redis_.url(), {"LLM_CACHE_SIGNING_KEY=" + kKeyA});
    key = before.ask("rotate me").header("x-llm-cache-key");
    wait_for_signed(key, kKeyA);
  }
  {
    SigningGateway during(
        fake_, redis_.url(),
        {"LLM_CACHE_SIGNING_KEY=" + kKeyB, "LLM_CACHE_SIGNING_KEY_PREVIOUS=" + kKeyA});
    EXPECT_EQ(during.ask("rotate me").header("x-llm-cache"), "HIT");
    const HttpResponse fresh = during.ask("new during rotation");
    EXPECT_EQ(fresh.header("x-llm-cache"), "MISS");
    wait_for_signed(fresh.header("x-llm-cache-key"), kKeyB);
    EXPECT_EQ(refused(during.metrics(), "wrong_mac"), "0");
  }
  SigningGateway after(fake_, redis_.url(), {"LLM_CACHE_SIGNING_KEY=" + kKeyB});
  EXPECT_EQ(after.ask("new during rotation").header("x-llm-cache"), "HIT");
  EXPECT_EQ(after.ask("rotate me").header("x-llm-cache"), "MISS");  // signed with A only
  EXPECT_EQ(refused(after.metrics(), "wrong_mac"), "1");
  wait_for_signed(key, kKeyB);  // answered again, and signed with the new key
}

TEST_F(SignedEntriesInRedis, TheKeyFromAFileAndABadKeyStopsTheStart) {
  llmc_test::TempDir dir;
  std::ofstream(dir.file("key")) << kKeyA << "\n";
  {
    SigningGateway from_file(fake_, redis_.url(),
                             {"LLM_CACHE_SIGNING_KEY_FILE=" + dir.file("key")});
    wait_for_signed(from_file.ask("from a file").header("x-llm-cache-key"), kKeyA);
  }
  const auto refused_start =
      llmc_test::run_shell("LLM_CACHE_SIGNING_KEY=too-short timeout 20 " + std::string(kCliPath) +
                           " --cache-url " + redis_.url() + " serve --listen 127.0.0.1:0 2>&1");
  EXPECT_NE(refused_start.exit_code, 0);
  EXPECT_THAT(refused_start.output, HasSubstr("at least 16"));
  EXPECT_THAT(refused_start.output, Not(HasSubstr("too-short")));
}

}  // namespace

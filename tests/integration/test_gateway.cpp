// `llm-caching serve` in front of the fake provider: every provider route, streaming relay and
// replay, tenant isolation and the per-request header controls, driven by curl and raw HTTP.
#include <sched.h>

#include <gtest/gtest.h>

#include <cmath>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "integration/gateway_harness.hpp"
#include "providers/codec.hpp"

namespace {

using namespace gateway_test;
using llm_caching::Provider;
using llmc_test::FakeProvider;

const std::string kAuthA = "Authorization: Bearer sk-tenant-a";

std::string assistant_text(Provider provider, const std::string& complete_json) {
  return llm_caching::providers::parse_response(provider, complete_json, false).text;
}

class Gateway : public ::testing::Test {
 protected:
  FakeProvider fake;
  GatewayProcess gateway{fake};
  std::string url(const std::string& path) const { return gateway.base_url() + path; }

  CurlResult curl_openai(const std::string& body, const std::string& extra = {}) {
    return curl("-H " + quoted(kAuthA) + " -H 'content-type: application/json' " + extra +
                " --data-binary " + quoted(body) + " " + url("/v1/chat/completions"));
  }
};

TEST_F(Gateway, CurlNonStreamingTwiceIsOneUpstreamCall) {
  const std::string body = openai_body("curl twice");
  const CurlResult first = curl_openai(body);
  const CurlResult second = curl_openai(body);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.headers.at("x-llm-cache"), "MISS");
  EXPECT_EQ(second.headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(assistant_text(Provider::openai, second.body).rfind("echo: curl twice", 0), 0u);
  EXPECT_EQ(upstream_calls(fake), 1);
  EXPECT_NE(first.headers.at("x-llm-cost-usd"), "0");
  EXPECT_EQ(second.headers.at("x-llm-cost-usd"), "0");
  EXPECT_EQ(second.headers.at("x-llm-avoided-usd"), first.headers.at("x-llm-cost-usd"));
  EXPECT_EQ(second.headers.at("x-llm-cache-key"), first.headers.at("x-llm-cache-key"));
  EXPECT_EQ(first.headers.at("x-llm-cache-key").rfind("llm-caching:v1:default:", 0), 0u);
}

TEST_F(Gateway, CurlStreamingTwiceReplaysTheSameEvents) {
  const std::string body = openai_body("stream twice", true);
  const CurlResult first = curl_openai(body, "-N");
  const CurlResult second = curl_openai(body, "-N");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.headers.at("content-type"), "text/event-stream");
  EXPECT_EQ(first.headers.at("x-llm-cache"), "MISS");
  EXPECT_EQ(second.headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(second.body, first.body);
  EXPECT_NE(first.body.find("data: [DONE]"), std::string::npos);
  const std::string assembled =
      llm_caching::providers::sse_to_response(Provider::openai, first.body);
  EXPECT_EQ(assistant_text(Provider::openai, assembled).rfind("echo: stream twice", 0), 0u);
  EXPECT_EQ(upstream_calls(fake), 1);
  // The relayed miss names the key in its head, before the exchange has returned: the same key
  // as the hit's.
  EXPECT_EQ(first.headers.at("x-llm-cache-key"), second.headers.at("x-llm-cache-key"));
  EXPECT_EQ(first.headers.at("x-llm-cache-key").rfind("llm-caching:v1:default:", 0), 0u);
}

TEST_F(Gateway, StreamEntryServesNonStreamingAndTheOtherWayRound) {
  // Stream first, then the same request without streaming: a HIT with the same answer.
  const HttpResponse streamed =
      send(post(url("/v1/chat/completions"), openai_body("cross one", true),
                {{"authorization", "Bearer k"}}));
  const HttpResponse whole = send(
      post(url("/v1/chat/completions"), openai_body("cross one"), {{"authorization", "Bearer k"}}));
  ASSERT_EQ(streamed.status, 200);
  EXPECT_EQ(whole.header("x-llm-cache"), "HIT");
  EXPECT_EQ(whole.header("content-type"), "application/json");
  EXPECT_EQ(assistant_text(Provider::openai, whole.body),
            assistant_text(Provider::openai, llm_caching::providers::sse_to_response(
                                                 Provider::openai, streamed.body)));

  // Whole first, then streaming: a HIT replayed as SSE that assembles to the same answer.
  const HttpResponse whole2 =
      send(post(url("/v1/messages"), anthropic_body("cross two"), {{"x-api-key", "k"}}));
  const HttpResponse streamed2 =
      send(post(url("/v1/messages"), anthropic_body("cross two", true), {{"x-api-key", "k"}}));
  ASSERT_EQ(whole2.status, 200) << whole2.body;
  EXPECT_EQ(streamed2.header("x-llm-cache"), "HIT");
  EXPECT_EQ(streamed2.header("content-type"), "text/event-stream");
  EXPECT_EQ(assistant_text(Provider::anthropic, llm_caching::providers::sse_to_response(
                                                    Provider::anthropic, streamed2.body)),
            assistant_text(Provider::anthropic, whole2.body));
  EXPECT_EQ(upstream_calls(fake), 2);
}

TEST_F(Gateway, AnthropicRouteBothModesTwice) {
  for (const bool stream : {false, true}) {
    const std::string body = anthropic_body(stream ? "anthropic stream" : "anthropic", stream);
    const HttpResponse first = send(post(url("/v1/messages"), body, {{"x-api-key", "sk-ant"}}));
    const HttpResponse second = send(post(url("/v1/messages"), body, {{"x-api-key", "sk-ant"}}));
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(first.header("x-llm-cache"), "MISS");
    EXPECT_EQ(second.header("x-llm-cache"), "HIT");
    EXPECT_EQ(second.body, first.body);
    if (stream) EXPECT_NE(first.body.find("event: message_stop"), std::string::npos);
  }
  EXPECT_EQ(upstream_calls(fake), 2);
}

TEST_F(Gateway, GeminiRoutesBothModesTwice) {
  const std::string body = gemini_body("gemini route");
  const std::string base = url("/v1beta/models/gemini-2.0-flash");
  const HttpResponse first = send(post(base + ":generateContent", body, {{"x-goog-api-key", "g"}}));
  const HttpResponse second =
      send(post(base + ":generateContent", body, {{"x-goog-api-key", "g"}}));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("x-llm-cache"), "MISS");
  EXPECT_EQ(second.header("x-llm-cache"), "HIT");
  EXPECT_EQ(second.body, first.body);

  const std::string other = gemini_body("gemini stream route");
  const HttpResponse s1 =
      send(post(base + ":streamGenerateContent?alt=sse", other, {{"x-goog-api-key", "g"}}));
  const HttpResponse s2 =
      send(post(base + ":streamGenerateContent?alt=sse", other, {{"x-goog-api-key", "g"}}));
  ASSERT_EQ(s1.status, 200) << s1.body;
  EXPECT_EQ(s1.header("x-llm-cache"), "MISS");
  EXPECT_EQ(s2.header("x-llm-cache"), "HIT");
  EXPECT_EQ(s2.body, s1.body);
  EXPECT_NE(s1.body.find("\r\n\r\n"), std::string::npos);  // Gemini's own event separator

  // Without alt=sse Gemini answers one JSON array of the chunks, here from the same entry.
  const HttpResponse array =
      send(post(base + ":streamGenerateContent", other, {{"x-goog-api-key", "g"}}));
  EXPECT_EQ(array.header("x-llm-cache"), "HIT");
  const json::value chunks = json::parse(array.body);
  ASSERT_TRUE(chunks.is_array());
  EXPECT_GE(chunks.as_array().size(), 1u);
  // The ?key= form is a caller key too.
  const HttpResponse by_query = send(post(base + ":generateContent?key=g", body));
  EXPECT_EQ(by_query.header("x-llm-cache"), "HIT");
  EXPECT_EQ(upstream_calls(fake), 2);
}

TEST_F(Gateway, BetaFeaturesAndApiVersionsNeverShareAnAnswer) {
  const std::string body = anthropic_body("beta features");
  auto ask = [&](std::vector<std::pair<std::string, std::string>> headers) {
    headers.emplace_back("x-api-key", "sk-ant");
    return send(post(url("/v1/messages"), body, headers)).header("x-llm-cache");
  };
  EXPECT_EQ(ask({}), "MISS");
  EXPECT_EQ(ask({{"anthropic-beta", "output-128k-2025-02-19,prompt-caching-2024-07-31"}}), "MISS");
  // The same betas in another order, one repeated: the same answer.
  EXPECT_EQ(ask({{"Anthropic-Beta", "prompt-caching-2024-07-31, output-128k-2025-02-19"},
                 {"anthropic-beta", "output-128k-2025-02-19"}}),
            "HIT");
  EXPECT_EQ(ask({{"anthropic-version", "2024-10-22"}}), "MISS");
  // The default version is what the gateway sends when there is none.
  EXPECT_EQ(ask({{"anthropic-version", "2023-06-01"}}), "HIT");
  EXPECT_EQ(ask({}), "HIT");  // twice: the second from the per-thread memo
  EXPECT_EQ(ask({}), "HIT");
  EXPECT_EQ(ask({{"anthropic-beta", "output-128k-2025-02-19,prompt-caching-2024-07-31"}}), "HIT");
  EXPECT_EQ(upstream_calls(fake), 3);
}

TEST_F(Gateway, OneKeyNeverGetsAnAnswerAnotherKeyPaidFor) {
  const std::string body = openai_body("tenant isolation");
  auto as = [&](const std::string& key) {
    return send(post(url("/v1/chat/completions"), body, {{"authorization", "Bearer " + key}}));
  };
  EXPECT_EQ(as("sk-alpha").header("x-llm-cache"), "MISS");
  EXPECT_EQ(as("sk-beta").header("x-llm-cache"), "MISS");
  EXPECT_EQ(as("sk-alpha").header("x-llm-cache"), "HIT");
  EXPECT_EQ(as("sk-beta").header("x-llm-cache"), "HIT");
  EXPECT_EQ(upstream_calls(fake), 2);
}

TEST(GatewaySharing, SharingAcrossKeysIsAnExplicitOption) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--share-cache-across-keys"});
  const std::string body = openai_body("shared");
  auto as = [&](const std::string& key) {
    return send(post(gateway.base_url() + "/v1/chat/completions", body,
                     {{"authorization", "Bearer " + key}}));
  };
  EXPECT_EQ(as("sk-alpha").header("x-llm-cache"), "MISS");
  EXPECT_EQ(as("sk-beta").header("x-llm-cache"), "HIT");
  EXPECT_EQ(upstream_calls(fake), 1);
}

TEST_F(Gateway, NoCacheRefreshesAndNoStoreLeavesNothingBehind) {
  const std::string body = openai_body("controls");
  auto call = [&](std::vector<std::pair<std::string, std::string>> headers) {
    headers.emplace_back("authorization", "Bearer k");
    return send(post(url("/v1/chat/completions"), body, std::move(headers)));
  };
  EXPECT_EQ(call({{"x-llm-cache", "no-store"}}).header("x-llm-cache"), "MISS");
  EXPECT_EQ(call({}).header("x-llm-cache"), "MISS");  // no-store stored nothing
  EXPECT_EQ(call({}).header("x-llm-cache"), "HIT");
  EXPECT_EQ(call({{"x-llm-cache", "no-cache"}}).header("x-llm-cache"), "BYPASS");
  EXPECT_EQ(call({{"x-llm-cache", "refresh"}}).header("x-llm-cache"), "BYPASS");
  EXPECT_EQ(call({{"cache-control", "no-cache"}}).header("x-llm-cache"), "BYPASS");
  EXPECT_EQ(call({{"cache-control", "no-store"}}).header("x-llm-cache"), "HIT");
  EXPECT_EQ(call({{"x-llm-cache", "no-cache, no-store"}}).header("x-llm-cache"), "BYPASS");
  EXPECT_EQ(upstream_calls(fake), 6);
}

TEST_F(Gateway, OnlyIfCachedNeverCallsTheProvider) {
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"authorization", "Bearer k"}, {"x-llm-cache", "only-if-cached"}};
  const HttpResponse miss = send(post(url("/v1/chat/completions"), openai_body("cold"), headers));
  EXPECT_EQ(miss.status, 504);
  EXPECT_TRUE(json::parse(miss.body).as_object().contains("error"));
  EXPECT_EQ(upstream_calls(fake), 0);

  send(post(url("/v1/chat/completions"), openai_body("warm"), {{"authorization", "Bearer k"}}));
  const HttpResponse hit = send(post(url("/v1/chat/completions"), openai_body("warm"), headers));
  EXPECT_EQ(hit.status, 200);
  EXPECT_EQ(hit.header("x-llm-cache"), "HIT");
  EXPECT_EQ(upstream_calls(fake), 1);
}

TEST_F(Gateway, NamespaceSeparatesEntriesAndTtlIsStored) {
  const std::string body = openai_body("namespaced");
  const HttpResponse in_ns = send(post(url("/v1/chat/completions"), body,
                                       {{"authorization", "Bearer k"},
                                        {"x-llm-cache-namespace", "suite-1"},
                                        {"x-llm-cache-ttl", "3600"}}));
  EXPECT_EQ(in_ns.header("x-llm-cache-key").rfind("llm-caching:v1:suite-1:", 0), 0u);
  const HttpResponse default_ns =
      send(post(url("/v1/chat/completions"), body, {{"authorization", "Bearer k"}}));
  EXPECT_EQ(default_ns.header("x-llm-cache"), "MISS");
  EXPECT_EQ(upstream_calls(fake), 2);

  // The entry's lifetime is the header's: read it back with the CLI from the same cache file.
  // The write-behind lands it a few milliseconds after the answer, so another process polls.
  const std::string command = std::string(kCliPath) + " --cache-url " +
                              quoted(gateway.cache_url()) + " cache get " +
                              quoted(in_ns.header("x-llm-cache-key"));
  llmc_test::ShellResult read = llmc_test::run_shell(command);
  for (const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       read.exit_code != 0 && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    read = llmc_test::run_shell(command);
  }
  const std::string& output = read.output;
  ASSERT_EQ(read.exit_code, 0) << output;
  const json::object entry = json::parse(output).as_object();
  auto seconds = [](const json::value& iso) {
    std::tm tm{};
    strptime(std::string(iso.as_string()).c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return timegm(&tm);
  };
  EXPECT_EQ(seconds(entry.at("expires_at")) - seconds(entry.at("created_at")), 3600);
}

TEST_F(Gateway, BadControlHeadersAre400InTheProvidersFormat) {
  const HttpResponse r = send(post(url("/v1/messages"), anthropic_body("x"),
                                   {{"x-api-key", "k"}, {"x-llm-cache", "whenever"}}));
  EXPECT_EQ(r.status, 400);
  const json::object error = json::parse(r.body).as_object();
  EXPECT_EQ(error.at("type"), "error");
  EXPECT_NE(std::string(error.at("error").at("message").as_string()).find("x-llm-cache"),
            std::string::npos);
  EXPECT_EQ(upstream_calls(fake), 0);
}

TEST_F(Gateway, RetryBudgetIsPerRequest) {
  // The fake answers 429 (retry-after-ms: 50) once for this body, then 200.
  const std::string body = openai_body("retry budget");
  const HttpResponse no_budget = send(post(
      url("/v1/chat/completions"), body,
      {{"authorization", "Bearer k"}, {"x-fake-behavior", "429ms-1"}, {"x-llm-max-wait-ms", "0"}}));
  EXPECT_EQ(no_budget.status, 429);  // the provider's own 429, passed through
  EXPECT_TRUE(json::parse(no_budget.body).at("error").as_object().contains("message"));
  EXPECT_FALSE(no_budget.header("retry-after").empty());

  const std::string body2 = openai_body("retry budget two");
  const HttpResponse with_budget = send(post(url("/v1/chat/completions"), body2,
                                             {{"authorization", "Bearer k"},
                                              {"x-fake-behavior", "429ms-1"},
                                              {"x-llm-max-wait-ms", "5000"}}));
  EXPECT_EQ(with_budget.status, 200) << with_budget.body;
  EXPECT_EQ(upstream_calls(fake), 3);
}

TEST_F(Gateway, HealthzAndMetricsReportWhatHappened) {
  const std::string body = openai_body("metrics");
  for (int i = 0; i < 2; ++i) {
    send(post(url("/v1/chat/completions"), body,
              {{"authorization", "Bearer k"}, {"x-llm-task", "nightly-eval"}}));
  }
  HttpRequest health;
  health.method = "GET";
  health.url = url("/healthz");
  const HttpResponse h = send(health);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body).at("status"), "ok");

  HttpRequest metrics;
  metrics.method = "GET";
  metrics.url = url("/metrics");
  const HttpResponse m = send(metrics);
  EXPECT_EQ(m.status, 200);
  for (const char* line : {"llmc_gateway_cache_hits_total{provider=\"openai\"} 1",
                           "llmc_gateway_cache_misses_total{provider=\"openai\"} 1",
                           "llmc_gateway_upstream_calls_total{provider=\"openai\"} 1",
                           "llmc_gateway_task_requests_total{task=\"nightly-eval\"} 2",
                           "llmc_gateway_request_duration_seconds_count{outcome=\"hit\"} 1"}) {
    EXPECT_NE(m.body.find(std::string("\n") + line + "\n"), std::string::npos) << line << "\n"
                                                                               << m.body;
  }
  EXPECT_NE(m.body.find("llmc_gateway_avoided_usd_total{provider=\"openai\"} 0.0"),
            std::string::npos);
}

// The value of a metric line "NAME VALUE" in /metrics text (NaN when absent).
double metric_value(const std::string& text, const std::string& name) {
  const std::size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return std::nan("");
  return std::stod(text.substr(at + name.size() + 2));
}

TEST_F(Gateway, OverheadExcludesTheUpstreamsTimeAndRetriedCalls) {
  // A miss whose upstream takes 300 ms, then its hit, then a miss retried after a 429.
  const std::string slow = openai_body("overhead slow");
  const HttpResponse miss =
      send(post(url("/v1/chat/completions"), slow,
                {{"authorization", "Bearer k"}, {"x-fake-behavior", "delay-300"}}));
  ASSERT_EQ(miss.status, 200) << miss.body;
  const HttpResponse hit =
      send(post(url("/v1/chat/completions"), slow, {{"authorization", "Bearer k"}}));
  ASSERT_EQ(hit.header("x-llm-cache"), "HIT");
  const HttpResponse retried = send(post(url("/v1/chat/completions"), openai_body("overhead 429"),
                                         {{"authorization", "Bearer k"},
                                          {"x-fake-behavior", "429ms-1"},
                                          {"x-llm-max-wait-ms", "5000"}}));
  ASSERT_EQ(retried.status, 200) << retried.body;

  HttpRequest metrics;
  metrics.method = "GET";
  metrics.url = url("/metrics");
  const std::string text = send(metrics).body;
  // Both misses took their time; only the first counts, and without the upstream's 300 ms.
  EXPECT_EQ(metric_value(text, R"(llmc_gateway_request_duration_seconds_count{outcome="miss"})"), 2)
      << text;
  EXPECT_GE(metric_value(text, R"(llmc_gateway_request_duration_seconds_sum{outcome="miss"})"),
            0.3);
  EXPECT_EQ(metric_value(text, R"(llmc_gateway_overhead_seconds_count{outcome="miss"})"), 1);
  EXPECT_LT(metric_value(text, R"(llmc_gateway_overhead_seconds_sum{outcome="miss"})"), 0.25);
  EXPECT_EQ(metric_value(text, R"(llmc_gateway_overhead_seconds_count{outcome="hit"})"), 1);
  EXPECT_EQ(metric_value(text, R"(llmc_gateway_overhead_seconds_bucket{outcome="miss",le="+Inf"})"),
            1);
}

TEST_F(Gateway, ThreadsAreNamedForWhatTheyDo) {
  // `top -H` and profilers tell a worker from the cache writer by these names. The writer runs
  // at SCHED_IDLE (its bursts of SQLite writes must not delay requests); the workers do not.
  ASSERT_EQ(curl_openai(openai_body("names")).status, 200);  // a miss starts the writer
  const auto tasks = std::filesystem::path("/proc") / std::to_string(gateway.pid()) / "task";
  std::multiset<std::string> idle;  // the names of the SCHED_IDLE threads
  const auto read_names = [&] {
    std::multiset<std::string> names;
    idle.clear();
    for (const auto& task : std::filesystem::directory_iterator(tasks)) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      std::getline(comm, name);
      names.insert(name);
      const int tid = std::stoi(task.path().filename().string());
      if (sched_getscheduler(tid) == SCHED_IDLE) idle.insert(name);
    }
    return names;
  };
  // The writer names itself in the first task it runs, which can come after the answer: wait
  // for that (on a loaded machine it once came after the first look).
  std::multiset<std::string> names = read_names();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (names.count("llmc-l2-writer") == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    names = read_names();
  }
  EXPECT_GE(names.count("llmc-worker"), 1u);
  EXPECT_EQ(names.count("llmc-l2-writer"), 1u);
  EXPECT_EQ(names.count("llmc-clearwatch"), 1u);  // reads the store's clear mark (issue 32)
  // Background threads only: the writer, and the SQLite checkpoint thread if a WAL filled.
  EXPECT_EQ(idle.count("llmc-l2-writer"), 1u);
  EXPECT_EQ(idle.size(), 1u + idle.count("llmc-checkpoint"));
}

TEST_F(Gateway, ModelsArePassedThrough) {
  HttpRequest models;
  models.method = "GET";
  models.url = url("/v1/models");
  models.headers.emplace_back("authorization", "Bearer k");
  const HttpResponse r = send(models);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(json::parse(r.body).as_object().contains("data")) << r.body;
}

}  // namespace

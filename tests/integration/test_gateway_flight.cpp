// Single-flight through `llm-caching serve`: a burst of identical requests is one upstream call,
// the waiters are told COALESCED, and a request can opt out.
#include <gtest/gtest.h>

#include "integration/gateway_harness.hpp"

#include <future>
#include <thread>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;
using namespace std::chrono_literals;

class GatewayFlight : public ::testing::Test {
 protected:
  // The upstream answers after 500 ms, so the whole burst arrives while the first call is out.
  FakeProvider fake{{.delay = 500ms}};
  GatewayProcess gateway{fake};

  std::vector<HttpResponse> burst(int count, const std::string& text,
                                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    std::vector<std::future<HttpResponse>> pending;
    for (int i = 0; i < count; ++i) {
      pending.push_back(std::async(std::launch::async, [&] {
        auto h = headers;
        h.emplace_back("authorization", "Bearer sk-flight");
        return send(post(gateway.base_url() + "/v1/chat/completions", openai_body(text), h));
      }));
    }
    std::vector<HttpResponse> responses;
    for (auto& p : pending) responses.push_back(p.get());
    return responses;
  }
};

TEST_F(GatewayFlight, HundredConcurrentIdenticalRequestsAreOneUpstreamCall) {
  const auto responses = burst(100, "burst");
  int misses = 0;
  int coalesced = 0;
  for (const HttpResponse& r : responses) {
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, responses.front().body);
    const std::string cache = r.header("x-llm-cache");
    if (cache == "MISS") ++misses;
    if (cache == "COALESCED") {
      ++coalesced;
      EXPECT_EQ(r.header("x-llm-cost-usd"), "0");
      EXPECT_NE(r.header("x-llm-avoided-usd"), "0");
    }
  }
  EXPECT_EQ(upstream_calls(fake), 1);
  EXPECT_EQ(misses, 1);
  EXPECT_GT(coalesced, 0);
}

TEST_F(GatewayFlight, CoalesceOffMakesEachRequestItsOwnCall) {
  const auto responses = burst(3, "opt out", {{"x-llm-cache-coalesce", "off"}});
  for (const HttpResponse& r : responses) {
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-llm-cache"), "MISS");
  }
  EXPECT_EQ(upstream_calls(fake), 3);
}

TEST_F(GatewayFlight, UnknownCoalesceValueIs400) {
  const auto responses = burst(1, "bad header", {{"x-llm-cache-coalesce", "maybe"}});
  EXPECT_EQ(responses.front().status, 400);
  EXPECT_NE(responses.front().body.find("x-llm-cache-coalesce"), std::string::npos);
  EXPECT_EQ(upstream_calls(fake), 0);
}

// Stale policies with a 1 s TTL (the shortest x-llm-cache-ttl); the test sleeps past it.
HttpResponse ask(const GatewayProcess& gateway, const std::string& text,
                 std::vector<std::pair<std::string, std::string>> headers) {
  headers.emplace_back("authorization", "Bearer sk-flight");
  headers.emplace_back("x-llm-cache-ttl", "1");
  return send(post(gateway.base_url() + "/v1/chat/completions", openai_body(text), headers));
}

TEST_F(GatewayFlight, StaleIfErrorServesTheExpiredAnswerWhenTheUpstreamFails) {
  const HttpResponse first = ask(gateway, "sie", {{"cache-control", "stale-if-error=300"}});
  ASSERT_EQ(first.status, 200) << first.body;
  std::this_thread::sleep_for(1300ms);
  const HttpResponse failing = ask(gateway, "sie",
                                   {{"cache-control", "stale-if-error=300"},
                                    {"x-fake-behavior", "500"},
                                    {"x-llm-max-wait-ms", "0"}});
  ASSERT_EQ(failing.status, 200) << failing.body;
  EXPECT_EQ(failing.header("x-llm-cache"), "STALE");
  EXPECT_EQ(failing.body, first.body);
  EXPECT_EQ(failing.header("x-llm-cost-usd"), "0");
  EXPECT_EQ(upstream_calls(fake), 2);  // the failed attempt was made

  // Without the policy the same failure reaches the caller.
  const HttpResponse strict =
      ask(gateway, "sie", {{"x-fake-behavior", "500"}, {"x-llm-max-wait-ms", "0"}});
  EXPECT_EQ(strict.status, 500);
}

TEST_F(GatewayFlight, StaleWhileRevalidateAnswersAtOnceAndRefreshesInTheBackground) {
  const std::pair<std::string, std::string> swr{"cache-control", "stale-while-revalidate=300"};
  ASSERT_EQ(ask(gateway, "swr", {swr}).status, 200);
  std::this_thread::sleep_for(1300ms);
  const HttpResponse stale = ask(gateway, "swr", {swr});
  ASSERT_EQ(stale.status, 200) << stale.body;
  EXPECT_EQ(stale.header("x-llm-cache"), "STALE");
  // Bounded wait for the refresh (the upstream answers after 500 ms) to land.
  std::string cache = "STALE";
  for (int i = 0; i < 100 && cache != "HIT"; ++i) {
    std::this_thread::sleep_for(50ms);
    cache = ask(gateway, "swr", {swr}).header("x-llm-cache");
  }
  EXPECT_EQ(cache, "HIT");
  EXPECT_EQ(upstream_calls(fake), 2);  // the first call and exactly one refresh
}

}  // namespace

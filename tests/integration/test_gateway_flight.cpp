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

}  // namespace

// The gateway's Prometheus text: counters, histogram buckets, task costs.
#include "gateway/metrics.hpp"

#include <gtest/gtest.h>

namespace {

using namespace llm_caching;
using namespace llm_caching::gateway;
using namespace std::chrono_literals;

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(GatewayMetrics, CountsHitsMissesCostsAndUpstreamCalls) {
  Metrics m;
  m.record({.llm = true,
            .provider = Provider::anthropic,
            .outcome = Outcome::miss,
            .status = 200,
            .latency = 2ms,
            .upstream_calls = 2,
            .cost_nano_usd = 1'500'000});
  m.record({.llm = true,
            .provider = Provider::anthropic,
            .outcome = Outcome::hit,
            .status = 200,
            .latency = 50us,
            .avoided_nano_usd = 1'500'000});
  m.record({.llm = true, .provider = Provider::openai, .outcome = Outcome::error, .status = 502});
  const std::string text = m.render();
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_cache_hits_total{provider="anthropic"} 1)")) << text;
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_cache_misses_total{provider="anthropic"} 1)"));
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_upstream_calls_total{provider="anthropic"} 2)"));
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_spent_usd_total{provider="anthropic"} 0.0015)"));
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_avoided_usd_total{provider="anthropic"} 0.0015)"));
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_errors_total{provider="openai"} 1)"));
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_responses_total{code="5xx"} 1)"));
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_responses_total{code="2xx"} 2)"));
}

TEST(GatewayMetrics, HistogramBucketsAreCumulative) {
  Metrics m;
  m.record({.outcome = Outcome::hit, .latency = 80us});
  m.record({.outcome = Outcome::hit, .latency = 3ms});
  const std::string text = m.render();
  EXPECT_TRUE(has_line(
      text, R"(llmc_gateway_request_duration_seconds_bucket{outcome="hit",le="0.0001"} 1)"))
      << text;
  EXPECT_TRUE(has_line(
      text, R"(llmc_gateway_request_duration_seconds_bucket{outcome="hit",le="0.005"} 2)"));
  EXPECT_TRUE(
      has_line(text, R"(llmc_gateway_request_duration_seconds_bucket{outcome="hit",le="+Inf"} 2)"));
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_request_duration_seconds_count{outcome="hit"} 2)"));
}

TEST(GatewayMetrics, OverheadIsTheTimeNotSpentWaitingForTheUpstream) {
  Metrics m;
  // A miss of 30 ms of which 29.97 ms waited for the upstream: 30 us of the gateway's own.
  m.record({.llm = true,
            .outcome = Outcome::miss,
            .latency = 30ms,
            .upstream_wait = 29'970us,
            .overhead_applies = true,
            .upstream_calls = 1});
  m.record({.llm = true, .outcome = Outcome::hit, .latency = 20us, .overhead_applies = true});
  // Waited for something else (a retry's backoff, another caller's flight): not counted.
  m.record({.llm = true, .outcome = Outcome::miss, .latency = 2s, .upstream_calls = 3});
  // Errors are not, even when flagged.
  m.record({.llm = true, .outcome = Outcome::error, .latency = 1ms, .overhead_applies = true});
  const std::string text = m.render();
  EXPECT_TRUE(
      has_line(text, R"(llmc_gateway_overhead_seconds_bucket{outcome="miss",le="2.5e-05"} 0)"))
      << text;
  EXPECT_TRUE(
      has_line(text, R"(llmc_gateway_overhead_seconds_bucket{outcome="miss",le="5e-05"} 1)"));
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_overhead_seconds_count{outcome="miss"} 1)"));
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_overhead_seconds_sum{outcome="miss"} 0.000030000)"));
  EXPECT_TRUE(
      has_line(text, R"(llmc_gateway_overhead_seconds_bucket{outcome="hit",le="2.5e-05"} 1)"));
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_overhead_seconds_count{outcome="bypass"} 0)"));
  EXPECT_EQ(text.find(R"(llmc_gateway_overhead_seconds_count{outcome="error"})"),
            std::string::npos);
  // The request durations still count every request.
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_request_duration_seconds_count{outcome="miss"} 2)"));
}

TEST(GatewayMetrics, OverheadIsNeverNegative) {
  Metrics m;
  // Clocks read in a different order can make the wait exceed the duration by a hair.
  m.record(
      {.outcome = Outcome::miss, .latency = 1ms, .upstream_wait = 2ms, .overhead_applies = true});
  const std::string text = m.render();
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_overhead_seconds_sum{outcome="miss"} 0.000000000)"))
      << text;
  EXPECT_TRUE(
      has_line(text, R"(llmc_gateway_overhead_seconds_bucket{outcome="miss",le="2.5e-05"} 1)"));
}

TEST(GatewayMetrics, TaskCostsAreLabelledEscapedAndBounded) {
  Metrics m;
  m.record({.llm = true, .outcome = Outcome::miss, .cost_nano_usd = 10, .task = "say \"hi\""});
  for (std::size_t i = 0; i < Metrics::kMaxTasks + 5; ++i) {
    const std::string task = "t" + std::to_string(i);
    m.record({.llm = true, .outcome = Outcome::miss, .cost_nano_usd = 1, .task = task});
  }
  const std::string text = m.render();
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_task_spent_usd_total{task="say \"hi\""} 0.00000001)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(llmc_gateway_task_requests_total{task="other"} 6)"));
}

}  // namespace

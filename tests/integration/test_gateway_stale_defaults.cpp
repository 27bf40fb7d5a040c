// Server-wide stale defaults (issue 29) through `llm-caching serve`: requests that carry no stale
// header get the gateway's windows, what they store outlives its TTL by them, a request can turn
// them off, and /metrics counts stale answers by reason. The tests wait out a 1 s TTL.
#include <gtest/gtest.h>

#include "integration/gateway_harness.hpp"

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <thread>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;
using namespace std::chrono_literals;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

/// The shortest TTL a request can ask for (x-llm-cache-ttl: 1), and a little more.
constexpr auto kPastTheTtl = 1100ms;

HttpResponse ask(const GatewayProcess& gateway, const std::string& text, HeaderList headers = {}) {
  headers.emplace_back("authorization", "Bearer sk-stale-defaults");
  return send(post(gateway.base_url() + "/v1/chat/completions", openai_body(text), headers));
}

/// Writes an answer that expires after 1 s, without any stale header.
HttpResponse write_short_lived(const GatewayProcess& gateway, const std::string& text) {
  return ask(gateway, text, {{"x-llm-cache-ttl", "1"}});
}

/// The value of one sample line of /metrics ("name{labels}"), or -1 when absent.
long metric(const GatewayProcess& gateway, const std::string& sample) {
  return static_cast<long>(metric_sample(gateway.base_url(), sample));
}

TEST(GatewayStaleDefaults, StaleIfErrorServesTheLastAnswerWhileTheUpstreamIsDown) {
  FakeProvider fake;
  // A short retry budget: an unreachable upstream is retried until it runs out.
  GatewayProcess with_default(fake, {"--stale-if-error", "3600", "--max-wait-ms", "300"});
  GatewayProcess without(fake, {"--max-wait-ms", "300"});
  // The library's variable, which serve reads too when the flag is not given.
  std::optional<llmc_test::ScopedEnv> env{std::in_place, "LLM_CACHE_STALE_IF_ERROR", "3600"};
  GatewayProcess from_env(fake, {"--max-wait-ms", "300"});
  env.reset();
  const HttpResponse first = write_short_lived(with_default, "down");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("x-llm-cache"), "MISS");
  ASSERT_EQ(write_short_lived(without, "down").status, 200);
  ASSERT_EQ(write_short_lived(from_env, "down").status, 200);

  std::this_thread::sleep_for(kPastTheTtl);
  ASSERT_EQ(fake.stop(), 0);

  // No stale header on either request: the gateway's default decides.
  const HttpResponse stale = ask(with_default, "down");
  ASSERT_EQ(stale.status, 200) << stale.body;
  EXPECT_EQ(stale.header("x-llm-cache"), "STALE");
  EXPECT_EQ(stale.body, first.body);
  EXPECT_EQ(stale.header("x-llm-cost-usd"), "0");
  EXPECT_EQ(stale.header("x-llm-avoided-usd"), first.header("x-llm-cost-usd"));
  EXPECT_EQ(ask(without, "down").status, 502);
  EXPECT_EQ(ask(from_env, "down").header("x-llm-cache"), "STALE");

  // One request can turn the default off.
  EXPECT_EQ(ask(with_default, "down", {{"x-llm-cache", "no-stale"}}).status, 502);
  EXPECT_EQ(ask(with_default, "down", {{"cache-control", "max-stale=0"}}).status, 502);
  EXPECT_EQ(ask(with_default, "down", {{"cache-control", "stale-if-error=0"}}).status, 502);
  // The entry is still there for the next request that accepts it.
  EXPECT_EQ(ask(with_default, "down").header("x-llm-cache"), "STALE");

  EXPECT_EQ(settled_metric(with_default.base_url(),
                           R"(llmc_gateway_stale_served_total{reason="error"})", 2),
            2);
  EXPECT_EQ(metric(with_default, R"(llmc_gateway_stale_served_total{reason="revalidate"})"), 0);
}

TEST(GatewayStaleDefaults, AnEntryWrittenWithTheDefaultServesALaterRequestThatAsks) {
  // The issue's case: the writer sent no header, a later reader asks for a window. The server's
  // default kept the entry past its TTL for it.
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--stale-if-error", "600", "--max-wait-ms", "300"});
  const HttpResponse first = write_short_lived(gateway, "reader asks");
  ASSERT_EQ(first.status, 200) << first.body;
  std::this_thread::sleep_for(kPastTheTtl);
  ASSERT_EQ(fake.stop(), 0);
  const HttpResponse stale =
      ask(gateway, "reader asks", {{"cache-control", "stale-if-error=60, max-age=0"}});
  ASSERT_EQ(stale.status, 200) << stale.body;
  EXPECT_EQ(stale.header("x-llm-cache"), "STALE");
  EXPECT_EQ(stale.body, first.body);
}

TEST(GatewayStaleDefaults, StaleWhileRevalidateFromTheConfigFile) {
  FakeProvider fake;
  llmc_test::TempDir dir;
  const std::string config = dir.file("gateway.json");
  std::ofstream(config) << R"({"stale_while_revalidate": 3600})";
  GatewayProcess gateway(fake, {"--config", config});
  ASSERT_EQ(write_short_lived(gateway, "refresh me").status, 200);
  std::this_thread::sleep_for(kPastTheTtl);

  const HttpResponse stale = ask(gateway, "refresh me");
  ASSERT_EQ(stale.status, 200) << stale.body;
  EXPECT_EQ(stale.header("x-llm-cache"), "STALE");
  EXPECT_EQ(settled_metric(gateway.base_url(),
                           R"(llmc_gateway_stale_served_total{reason="revalidate"})", 1),
            1);
  EXPECT_EQ(metric(gateway, R"(llmc_gateway_stale_served_total{reason="error"})"), 0);
  // Bounded wait for the background refresh to land; it stores with the default TTL.
  std::string cache = "STALE";
  for (int i = 0; i < 100 && cache != "HIT"; ++i) {
    std::this_thread::sleep_for(20ms);
    cache = ask(gateway, "refresh me").header("x-llm-cache");
  }
  EXPECT_EQ(cache, "HIT");
  EXPECT_EQ(upstream_calls(fake), 2);  // the write and exactly one refresh
}

TEST(GatewayStaleDefaults, InvalidDefaultsStopTheGatewayNamingTheFlagOrField) {
  // Bounded: a gateway that accepted the value would serve until stopped.
  const std::string cli = std::string("timeout 10 ") + kCliPath;
  const auto run = [](const std::string& command) {
    llmc_test::ShellResult r = llmc_test::run_shell(command + " 2>&1");
    return std::pair{r.exit_code, std::move(r.output)};
  };
  const auto [flag_exit, flag_text] =
      run(cli + " serve --listen 127.0.0.1:0 --stale-if-error 99999999999");
  EXPECT_NE(flag_exit, 0);
  EXPECT_NE(flag_text.find("--stale-if-error"), std::string::npos) << flag_text;

  llmc_test::TempDir dir;
  const std::string config = dir.file("gateway.json");
  std::ofstream(config) << R"({"stale_while_revalidate": -5})";
  const auto [file_exit, file_text] = run(cli + " serve --listen 127.0.0.1:0 --config " + config);
  EXPECT_EQ(file_exit, 2);
  EXPECT_NE(file_text.find("field \"stale_while_revalidate\""), std::string::npos) << file_text;

  const auto [env_exit, env_text] =
      run("LLM_CACHE_STALE_IF_ERROR=soon " + cli + " serve --listen 127.0.0.1:0");
  EXPECT_EQ(env_exit, 2);
  EXPECT_NE(env_text.find("LLM_CACHE_STALE_IF_ERROR"), std::string::npos) << env_text;
}

}  // namespace

// The gateway's default cache mode (issue 22): `serve --mode replay_only` (or LLM_CACHE_MODE)
// answers a miss with 504 and never calls the upstream; a request's own directive still wins.
#include <gtest/gtest.h>

#include "integration/gateway_harness.hpp"

#include <optional>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

HttpResponse ask(const GatewayProcess& gateway, const std::string& text, HeaderList headers = {}) {
  headers.emplace_back("authorization", "Bearer sk-mode");
  return send(post(gateway.base_url() + "/v1/chat/completions", openai_body(text), headers));
}

std::int64_t calls(const FakeProvider& fake) {
  return fake.stats().at("total").as_int64();
}

TEST(GatewayMode, ReplayOnlyAnswersAMissWith504AndARequestsOwnDirectiveWins) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--mode", "replay_only"});
  const HttpResponse miss = ask(gateway, "replay me");
  EXPECT_EQ(miss.status, 504) << miss.body;
  EXPECT_NE(miss.body.find("only-if-cached"), std::string::npos) << miss.body;
  EXPECT_EQ(calls(fake), 0);

  // Recording through the same gateway: the request says so.
  const HttpResponse recorded = ask(gateway, "replay me", {{"x-llm-cache", "refresh"}});
  ASSERT_EQ(recorded.status, 200) << recorded.body;
  EXPECT_EQ(calls(fake), 1);

  const HttpResponse replayed = ask(gateway, "replay me");
  ASSERT_EQ(replayed.status, 200) << replayed.body;
  EXPECT_EQ(replayed.header("x-llm-cache"), "HIT");
  EXPECT_EQ(replayed.body, recorded.body);
  EXPECT_EQ(calls(fake), 1);
}

TEST(GatewayMode, TheEnvironmentSetsTheDefaultAndTheFlagWins) {
  FakeProvider fake;
  std::optional<llmc_test::ScopedEnv> env{std::in_place, "LLM_CACHE_MODE", "replay_only"};
  GatewayProcess from_env(fake);
  GatewayProcess flag_wins(fake, {"--mode", "use"});
  env.reset();
  EXPECT_EQ(ask(from_env, "env mode").status, 504);
  EXPECT_EQ(calls(fake), 0);
  const HttpResponse used = ask(flag_wins, "env mode");
  EXPECT_EQ(used.status, 200) << used.body;
  EXPECT_EQ(used.header("x-llm-cache"), "MISS");
  EXPECT_EQ(calls(fake), 1);
}

TEST(GatewayMode, ABadModeStopsTheGatewayNamingTheVariable) {
  const std::string cli = kCliPath;
  const llmc_test::ShellResult bad_env =
      llmc_test::run_shell("LLM_CACHE_MODE=record '" + cli + "' serve --listen 127.0.0.1:0 2>&1");
  EXPECT_EQ(bad_env.exit_code, 2) << bad_env.output;
  EXPECT_NE(bad_env.output.find("LLM_CACHE_MODE"), std::string::npos) << bad_env.output;
  const llmc_test::ShellResult bad_flag =
      llmc_test::run_shell("'" + cli + "' serve --listen 127.0.0.1:0 --mode record 2>&1");
  EXPECT_EQ(bad_flag.exit_code, 2) << bad_flag.output;
  EXPECT_NE(bad_flag.output.find("--mode"), std::string::npos) << bad_flag.output;
}

}  // namespace

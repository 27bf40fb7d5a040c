// `llm-caching serve --config FILE`: the real gateway process configured by a JSON file, flags
// overriding it, an upstream fallback key, and a bad file refused with a clear error.
#include <gtest/gtest.h>

#include "integration/gateway_harness.hpp"

#include <sys/wait.h>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string config_text(const std::string& openai_base, const std::string& cache_file,
                        const std::string& extra_openai = {}) {
  return R"({"listen": "127.0.0.1:0", "threads": 2, "log_level": "warn", "cache_url": "sqlite://)" +
         cache_file + R"(", "upstreams": {"openai": {"base_url": ")" + openai_base + "\"" +
         extra_openai + "}}}";
}

using ExitAndOutput = llmc_test::ShellResult;  // output: stdout and stderr

ExitAndOutput run_cli(const std::string& args) {
  return llmc_test::run_shell(std::string(kCliPath) + " " + args + " 2>&1");
}

TEST(GatewayConfigFile, TheFileConfiguresTheGatewayAndItsFallbackKey) {
  clear_proxy_environment();
  FakeProvider fake;
  llmc_test::TempDir dir;
  const std::string config = dir.file("gateway.json");
  write_file(config, config_text(fake.base_url() + "/v1", dir.file("cache.db"),
                                 R"(, "api_key": "sk-configured-fallback")"));
  llmc_test::ChildProcess gateway({kCliPath, "serve", "--config", config});
  const std::string url =
      "http://127.0.0.1:" + std::to_string(port_of(gateway.ready_line())) + "/v1/chat/completions";
  const std::string body = openai_body("configured by a file");

  // No key from the caller: the configured one goes upstream (the fake answers 401 without one).
  const HttpResponse first = send(post(url, body));
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("x-llm-cache"), "MISS");
  EXPECT_EQ(send(post(url, body)).header("x-llm-cache"), "HIT");
  // A caller with a key uses it, in its own partition: a miss, not the anonymous callers' entry.
  const HttpResponse keyed = send(post(url, body, {{"authorization", "Bearer sk-caller"}}));
  EXPECT_EQ(keyed.status, 200);
  EXPECT_EQ(keyed.header("x-llm-cache"), "MISS");
  EXPECT_EQ(keyed.header("x-llm-cache-key").find("fallback"), std::string::npos);
  EXPECT_EQ(upstream_calls(fake), 2);
  EXPECT_TRUE(std::filesystem::exists(dir.file("cache.db")));  // cache_url from the file
}

TEST(GatewayConfigFile, WithoutAFallbackKeyAKeylessCallerGetsTheProvidersRefusal) {
  clear_proxy_environment();
  FakeProvider fake;
  llmc_test::TempDir dir;
  const std::string config = dir.file("gateway.json");
  write_file(config, config_text(fake.base_url() + "/v1", dir.file("cache.db")));
  llmc_test::ChildProcess gateway({kCliPath, "serve", "--config", config});
  const std::string url =
      "http://127.0.0.1:" + std::to_string(port_of(gateway.ready_line())) + "/v1/chat/completions";
  EXPECT_EQ(send(post(url, openai_body("no key at all"))).status, 401);
}

TEST(GatewayConfigFile, FlagsOverrideTheFile) {
  clear_proxy_environment();
  FakeProvider fake;
  llmc_test::TempDir dir;
  const std::string config = dir.file("gateway.json");
  // The file points at a port nothing listens on; the flag points at the fake provider.
  write_file(config, config_text("http://127.0.0.1:1/v1", dir.file("cache.db")));
  llmc_test::ChildProcess gateway(
      {kCliPath, "serve", "--config", config, "--upstream", "openai=" + fake.base_url() + "/v1"});
  const std::string url =
      "http://127.0.0.1:" + std::to_string(port_of(gateway.ready_line())) + "/v1/chat/completions";
  const HttpResponse answer =
      send(post(url, openai_body("flag wins"), {{"authorization", "Bearer sk-a"}}));
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(upstream_calls(fake), 1);
}

TEST(GatewayConfigFile, ABadFileIsRefusedNamingTheFileAndTheField) {
  llmc_test::TempDir dir;
  const std::string config = dir.file("gateway.json");
  write_file(config,
             R"({"listen": "127.0.0.1:0", "upstreams": {"openai": {"base_url": "localhost:8080",
                        "api_key": "sk-do-not-print"}}})");
  const ExitAndOutput result = run_cli("serve --config " + config);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("config file " + config +
                               ": field \"upstreams.openai.base_url\": "
                               "the URL must start with http:// or https://"),
            std::string::npos)
      << result.output;
  EXPECT_EQ(result.output.find("sk-do-not-print"), std::string::npos);

  write_file(config, R"({"threads": "two"})");
  const ExitAndOutput typed = run_cli("serve --config " + config);
  EXPECT_EQ(typed.exit_code, 2);
  EXPECT_NE(typed.output.find("field \"threads\": expected a whole number"), std::string::npos)
      << typed.output;
}

TEST(GatewayConfigFile, HelpDescribesTheConfigOption) {
  const ExitAndOutput help = run_cli("serve --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--config"), std::string::npos);
}

}  // namespace

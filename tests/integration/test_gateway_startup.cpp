// `llm-caching serve` start-up (issue 32): a host name to listen on, every upstream checked
// before the port is bound, a price file (--prices, ours or LiteLLM's, and the config field) and
// the upstream CA (--ca-file, the config field, LLM_CACHING_CA_FILE). The real process in front
// of the fake provider.
#include <gtest/gtest.h>

#include "integration/gateway_harness.hpp"

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const std::vector<std::pair<std::string, std::string>> kCallerKey = {
    {"authorization", "Bearer sk-startup-test"}};

/// Runs `serve` expecting it to refuse to start: its exit code and everything it printed. One
/// that starts after all is stopped after 10 s (exit 124), never left running.
llmc_test::ShellResult serve_refused(const std::string& env, const std::string& args) {
  clear_proxy_environment();
  const std::string listen =
      args.find("--listen") == std::string::npos ? "--listen 127.0.0.1:0 " : "";
  return llmc_test::run_shell("env -u LLM_CACHING_CA_FILE " + env + " timeout 10 " + kCliPath +
                              " --cache-url memory:// serve " + listen + args + " 2>&1 </dev/null");
}

TEST(GatewayStartup, ListensOnAHostName) {
  clear_proxy_environment();
  llmc_test::TempDir dir;
  llmc_test::ChildProcess gateway({kCliPath, "--cache-url", "sqlite://" + dir.file("c.db"), "serve",
                                   "--listen", "localhost:0", "--threads", "1", "--log-level",
                                   "warn"});
  const std::string line = gateway.ready_line();
  // localhost resolves to a loopback address, which the line prints (and which answers).
  EXPECT_TRUE(contains(line, "listening on 127.0.0.1:") || contains(line, "listening on [::1]:"))
      << line;
  const std::string host = contains(line, "[::1]") ? "[::1]" : "127.0.0.1";
  const CurlResult metrics =
      curl("'http://" + host + ":" + std::to_string(port_of(line)) + "/metrics'");
  EXPECT_EQ(metrics.status, 200) << metrics.body;
  EXPECT_EQ(gateway.stop(), 0);
}

TEST(GatewayStartup, AnUnknownListenHostExitsTwoNamingIt) {
  const auto r = serve_refused("", "--listen no-such-host.invalid:0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--listen: cannot resolve host 'no-such-host.invalid'"))
      << r.output;
}

TEST(GatewayStartup, AnUpstreamWithoutSchemeExitsTwoNamingTheVariable) {
  const auto r = serve_refused("OPENAI_BASE_URL=127.0.0.1:35513/v1", "");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "OPENAI_BASE_URL: '127.0.0.1:35513/v1' must start with http://"))
      << r.output;
  EXPECT_FALSE(contains(r.output, "listening on")) << r.output;

  const auto port = serve_refused("ANTHROPIC_BASE_URL=http://127.0.0.1:http", "");
  EXPECT_EQ(port.exit_code, 2) << port.output;
  EXPECT_TRUE(contains(port.output, "ANTHROPIC_BASE_URL: 'http://127.0.0.1:http' has a bad port"))
      << port.output;

  const auto host = serve_refused("", "--upstream gemini=https:///v1beta");
  EXPECT_EQ(host.exit_code, 2) << host.output;
  EXPECT_TRUE(contains(host.output, "--upstream gemini: 'https:///v1beta' has no host"))
      << host.output;

  llmc_test::TempDir dir;
  const std::string config = dir.file("gateway.json");
  write_file(config, R"({"upstreams": {"openai": {"base_url": "http://:8080/v1"}}})");
  const auto file = serve_refused("", "--config " + config);
  EXPECT_EQ(file.exit_code, 2) << file.output;
  EXPECT_TRUE(contains(file.output, "config file " + config + ": upstreams.openai.base_url"))
      << file.output;
}

TEST(GatewayStartup, AnOpenAiUpstreamWithoutVersionIsWarnedAbout) {
  FakeProvider fake;
  GatewayProcess without(fake, {"--upstream", "openai=" + fake.base_url()}, {},
                         GatewayStderr::captured);
  GatewayProcess with(fake, {}, {}, GatewayStderr::captured);
  without.stop();
  with.stop();
  EXPECT_TRUE(contains(without.log(), "has no version segment such as /v1")) << without.log();
  EXPECT_TRUE(contains(without.log(), "(from --upstream openai)")) << without.log();
  EXPECT_FALSE(contains(with.log(), "version segment")) << with.log();
}

struct GatewayPrices : ::testing::Test {
  FakeProvider fake;
  llmc_test::TempDir dir;
  /// One call of `model` through a gateway started with `extra`: its status and cost header.
  std::pair<int, std::string> call(const std::vector<std::string>& extra,
                                   const std::string& model) {
    std::vector<std::string> args = {"--reject-unpriced"};
    args.insert(args.end(), extra.begin(), extra.end());
    GatewayProcess gateway(fake, args);
    const HttpResponse r = send(post(gateway.base_url() + "/v1/chat/completions",
                                     openai_body("price me", false, model), kCallerKey));
    return {r.status, r.header("x-llm-cost-usd")};
  }
};

TEST_F(GatewayPrices, APriceFileInOurFormatPricesAModelTheTableLacks) {
  const std::string prices = dir.file("prices.json");
  write_file(prices, R"({"format": 1, "models": {"house-model-32": {"input": 1000, "output": 2000,
                        "cache_write": 1000, "cache_read": 1000}}})");
  EXPECT_EQ(call({}, "house-model-32").first, 400) << "unpriced and refused without the file";
  const auto [status, cost] = call({"--prices", prices}, "house-model-32");
  EXPECT_EQ(status, 200);
  EXPECT_FALSE(cost.empty());
  EXPECT_GT(std::stod(cost), 0.0) << cost;
  // The built-in table still prices the rest.
  EXPECT_EQ(call({"--prices", prices}, "gpt-4o-mini").first, 200);
}

TEST_F(GatewayPrices, TheRefusalNamesTheGatewaysOptionNotTheLibrarys) {
  GatewayProcess gateway(fake, {"--reject-unpriced"});
  const HttpResponse r = send(post(gateway.base_url() + "/v1/chat/completions",
                                   openai_body("price me", false, "house-model-64"), kCallerKey));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("--prices FILE"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("custom_costs"), std::string::npos) << r.body;
}

TEST_F(GatewayPrices, LiteLlmsFormatAndTheConfigFieldWorkToo) {
  const std::string prices = dir.file("litellm.json");
  write_file(prices, R"({"house-model-litellm": {"input_cost_per_token": 0.001,
                        "output_cost_per_token": 0.002, "litellm_provider": "openai"}})");
  const std::string config = dir.file("gateway.json");
  write_file(config, R"({"prices": ")" + prices + R"("})");
  const auto [status, cost] = call({"--config", config}, "house-model-litellm");
  EXPECT_EQ(status, 200);
  EXPECT_GT(std::stod(cost), 0.0) << cost;
}

TEST_F(GatewayPrices, ABadPriceFileExitsTwoNamingIt) {
  const auto missing = serve_refused("", "--prices " + dir.file("nope.json"));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_TRUE(contains(missing.output, "--prices " + dir.file("nope.json"))) << missing.output;
  const std::string bad = dir.file("bad.json");
  write_file(bad, "{not json");
  const auto malformed = serve_refused("", "--prices " + bad);
  EXPECT_EQ(malformed.exit_code, 2) << malformed.output;
  EXPECT_TRUE(contains(malformed.output, bad + ": not valid JSON")) << malformed.output;
}

struct GatewayCaFile : ::testing::Test {
  llmc_test::TestCertificates certs = llmc_test::make_test_certificates();
  FakeProvider tls_fake{{.tls = &certs}};
  llmc_test::TempDir dir;
  int status_through(const std::vector<std::string>& extra) {
    GatewayProcess gateway(tls_fake, extra);
    return send(post(gateway.base_url() + "/v1/chat/completions", openai_body("over TLS"),
                     kCallerKey))
        .status;
  }
};

TEST_F(GatewayCaFile, TheFlagTheConfigFieldAndTheVariableAreTrusted) {
  llmc_test::ScopedEnv no_ca("LLM_CACHING_CA_FILE", std::nullopt);
  EXPECT_EQ(status_through({"--ca-file", certs.ca_cert}), 200);
  const std::string config = dir.file("gateway.json");
  write_file(config, R"({"ca_file": ")" + certs.ca_cert + R"("})");
  EXPECT_EQ(status_through({"--config", config}), 200);
  {
    llmc_test::ScopedEnv ca("LLM_CACHING_CA_FILE", certs.ca_cert);
    EXPECT_EQ(status_through({}), 200);
  }
  // Without it the test CA is unknown: the gateway answers 502.
  EXPECT_EQ(status_through({"--max-wait-ms", "0"}), 502);
}

TEST_F(GatewayCaFile, AnUnreadableCaFileExitsTwoNamingIt) {
  const auto r = serve_refused("", "--ca-file " + dir.file("no-ca.pem"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "cannot read CA file '" + dir.file("no-ca.pem") + "'"))
      << r.output;
}

}  // namespace

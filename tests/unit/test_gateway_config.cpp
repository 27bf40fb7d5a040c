// `serve --config FILE`: the JSON settings file, its errors (naming the file, the field and the
// problem, never a key) and how upstream keys apply.
#include "gateway/serve_config.hpp"

#include "llm_caching/errors.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace {

using namespace llm_caching;
using namespace llm_caching::gateway;

std::string error_of(std::string_view text) {
  try {
    parse_serve_config(text, "/etc/gw.json");
  } catch (const ConfigurationError& e) {
    return e.what();
  }
  return "no error";
}

TEST(GatewayConfigFile, ReadsEveryServeSetting) {
  const ServeFileSettings s = parse_serve_config(R"({
    "listen": "0.0.0.0:9090", "cache_url": "memory://", "log_level": "debug",
    "share_cache_across_keys": true, "reject_unpriced": true, "threads": 3,
    "body_limit": 1024, "l1_mb": 16, "ttl": 60, "max_wait_ms": 0, "initial_wait_ms": 5,
    "upstream_timeout_ms": 1000, "connect_timeout_ms": 200, "request_timeout_ms": 3000,
    "shutdown_grace_ms": 0, "upstream_idle_timeout_ms": 250,
    "upstreams": {"openai": {"base_url": "http://127.0.0.1:11434/v1/"},
                  "anthropic": {"base_url": "https://example.test", "api_key": "sk-ant-x"}}
  })",
                                                 "gw.json");
  EXPECT_EQ(s.listen, "0.0.0.0:9090");
  EXPECT_EQ(s.cache_url, "memory://");
  EXPECT_EQ(s.log_level, "debug");
  EXPECT_EQ(s.share_cache_across_keys, true);
  EXPECT_EQ(s.reject_unpriced, true);
  EXPECT_EQ(s.threads, 3);
  EXPECT_EQ(s.body_limit, 1024);
  EXPECT_EQ(s.l1_mb, 16);
  EXPECT_EQ(s.ttl, 60);
  EXPECT_EQ(s.max_wait_ms, 0);
  EXPECT_EQ(s.shutdown_grace_ms, 0);
  EXPECT_EQ(s.upstream_idle_timeout_ms, 250);
  ASSERT_TRUE(s.upstreams[0]);
  EXPECT_EQ(s.upstreams[0]->base_url, "http://127.0.0.1:11434/v1");
  ASSERT_TRUE(s.upstreams[1]);
  EXPECT_EQ(s.upstreams[1]->api_key, "sk-ant-x");
  EXPECT_FALSE(s.upstreams[2]);
}

TEST(GatewayConfigFile, ErrorsNameTheFileTheFieldAndTheProblem) {
  EXPECT_EQ(error_of("{\"listen\": 8080}"),
            "config file /etc/gw.json: field \"listen\": expected a string");
  EXPECT_EQ(error_of("{\"threads\": -1}"),
            "config file /etc/gw.json: field \"threads\": must be from 0 to 1024");
  EXPECT_EQ(error_of("{\"l1_mb\": 1.5}"),
            "config file /etc/gw.json: field \"l1_mb\": expected a whole number");
  EXPECT_EQ(error_of("{\"lissten\": \"x\"}").find("field \"lissten\": unknown field"),
            std::string("config file /etc/gw.json: ").size());
  EXPECT_EQ(error_of(R"({"upstreams": {"openai": {"base_url": "ftp://x"}}})"),
            "config file /etc/gw.json: field \"upstreams.openai.base_url\": the URL must start "
            "with http:// or https://");
  EXPECT_EQ(error_of(R"({"upstreams": {"mistral": {}}})"),
            "config file /etc/gw.json: field \"upstreams.mistral\": unknown provider (expected "
            "openai, anthropic or gemini)");
  EXPECT_NE(error_of(R"({"listen": "localhost"})").find("field \"listen\""), std::string::npos);
  EXPECT_NE(error_of(R"({"log_level": "loud"})").find("field \"log_level\""), std::string::npos);
  EXPECT_NE(error_of(R"({"cache_url": "mysql://x"})").find("field \"cache_url\""),
            std::string::npos);
  EXPECT_NE(error_of("{\"threads\": 2,}").find("config file /etc/gw.json: not valid JSON"),
            std::string::npos);
  EXPECT_EQ(error_of("[1]"), "config file /etc/gw.json: expected a JSON object at the top");
}

TEST(GatewayConfigFile, AKeyNeverAppearsInAnError) {
  const std::string error =
      error_of(R"({"upstreams": {"openai": {"api_key": "sk-secret-123", "api_key_env": "X"}}})");
  EXPECT_NE(error.find("upstreams.openai.api_key_env"), std::string::npos);
  EXPECT_EQ(error.find("sk-secret-123"), std::string::npos);
  EXPECT_EQ(error_of(R"({"upstreams": {"openai": {"api_key": 12345}}})").find("12345"),
            std::string::npos);
}

TEST(GatewayConfigFile, KeysFromTheEnvironmentAndTheirUse) {
  setenv("LLMC_TEST_GW_KEY", "sk-from-env", 1);
  unsetenv("LLMC_TEST_GW_UNSET");
  const ServeFileSettings s = parse_serve_config(R"({"upstreams": {
    "openai": {"api_key_env": "LLMC_TEST_GW_KEY"},
    "gemini": {"api_key": "g-key", "replace_caller_key": true}}})",
                                                 "gw.json");
  Upstreams upstreams = Upstreams::from_environment();
  apply_upstream_settings(s, upstreams);
  EXPECT_EQ(upstreams[Provider::openai].fallback_api_key, "sk-from-env");
  EXPECT_EQ(upstreams[Provider::openai].api_key, "");
  EXPECT_EQ(upstreams[Provider::gemini].api_key, "g-key");

  // The fallback key goes upstream only when the caller sends none.
  const Headers none;
  EXPECT_EQ(find_header(providers::request_headers(upstreams[Provider::openai], &none, ""),
                        "authorization"),
            "Bearer sk-from-env");
  EXPECT_EQ(find_header(providers::request_headers(upstreams[Provider::openai], &none, "sk-caller"),
                        "authorization"),
            "Bearer sk-caller");
  EXPECT_EQ(find_header(providers::request_headers(upstreams[Provider::gemini], &none, "caller"),
                        "x-goog-api-key"),
            "g-key");

  EXPECT_NE(error_of(R"({"upstreams": {"openai": {"api_key_env": "LLMC_TEST_GW_UNSET"}}})")
                .find("$LLMC_TEST_GW_UNSET is unset or empty"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"upstreams": {"openai": {"replace_caller_key": true}}})")
                .find("needs api_key or api_key_env"),
            std::string::npos);
}

TEST(GatewayConfigFile, AKeyWithALineBreakIsRefusedAtStartWithoutBeingEchoed) {
  const std::string inline_key =
      error_of(R"({"upstreams": {"openai": {"api_key": "sk-secret-456\n"}}})");
  EXPECT_NE(inline_key.find("field \"upstreams.openai.api_key\": the key has a line break"),
            std::string::npos)
      << inline_key;
  EXPECT_EQ(inline_key.find("sk-secret-456"), std::string::npos);

  setenv("LLMC_TEST_GW_NEWLINE_KEY", "sk-secret-789\n", 1);
  const std::string from_env =
      error_of(R"({"upstreams": {"anthropic": {"api_key_env": "LLMC_TEST_GW_NEWLINE_KEY"}}})");
  EXPECT_NE(from_env.find("upstreams.anthropic.api_key_env"), std::string::npos) << from_env;
  EXPECT_EQ(from_env.find("sk-secret-789"), std::string::npos);

  Upstreams upstreams = Upstreams::from_environment();
  try {
    upstreams.set_key_from_env("openai=LLMC_TEST_GW_NEWLINE_KEY");
    ADD_FAILURE() << "a key with a newline was accepted";
  } catch (const ConfigurationError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("$LLMC_TEST_GW_NEWLINE_KEY has a line break"), std::string::npos)
        << message;
    EXPECT_EQ(message.find("sk-secret-789"), std::string::npos);
  }
  unsetenv("LLMC_TEST_GW_NEWLINE_KEY");
}

TEST(GatewayConfigFile, AnUnreadableFileIsAConfigurationError) {
  try {
    load_serve_config("/nonexistent/gw.json");
    FAIL() << "no error";
  } catch (const ConfigurationError& e) {
    EXPECT_STREQ(e.what(), "config file /nonexistent/gw.json: cannot be read");
  }
}

TEST(GatewayUpstreamChecks, AUrlNeedsSchemeHostAndANumericPort) {
  EXPECT_EQ(upstream_url_problem("http://127.0.0.1:35513/v1"), "");
  EXPECT_EQ(upstream_url_problem("https://api.openai.com/v1"), "");
  EXPECT_EQ(upstream_url_problem("http://[::1]:8080/v1"), "");
  EXPECT_EQ(upstream_url_problem("http://localhost"), "");
  EXPECT_EQ(upstream_url_problem("127.0.0.1:35513/v1"),
            "'127.0.0.1:35513/v1' must start with http:// or https://");
  EXPECT_EQ(upstream_url_problem("https:///v1"), "'https:///v1' has no host");
  EXPECT_EQ(upstream_url_problem("http://:8080"), "'http://:8080' has no host");
  EXPECT_EQ(upstream_url_problem("http://host:99999/v1"), "'http://host:99999/v1' has a bad port");
  EXPECT_EQ(upstream_url_problem("http://host:/v1"), "'http://host:/v1' has a bad port");
  EXPECT_EQ(upstream_url_problem("http://host /v1"), "'http://host /v1' has a space in it");
}

TEST(GatewayUpstreamChecks, AnOpenAiUrlWithoutVersionIsTold) {
  EXPECT_FALSE(lacks_version_segment("https://api.openai.com/v1"));
  EXPECT_FALSE(lacks_version_segment("http://127.0.0.1:11434/v1"));
  EXPECT_FALSE(lacks_version_segment("https://openrouter.ai/api/v1"));
  EXPECT_FALSE(lacks_version_segment("https://ark.example.com/api/v3"));
  EXPECT_FALSE(lacks_version_segment("https://generativelanguage.googleapis.com/v1beta/openai"));
  EXPECT_TRUE(lacks_version_segment("http://127.0.0.1:35513"));
  EXPECT_TRUE(lacks_version_segment("http://127.0.0.1:35513/openai"));
  EXPECT_TRUE(lacks_version_segment("http://v1.example.com"));  // a host is not a path
}

TEST(GatewayConfigFile, PricesAndCaFileAreFileNames) {
  const ServeFileSettings s =
      parse_serve_config(R"({"prices": "/etc/p.json", "ca_file": "/etc/ca.pem"})", "f.json");
  EXPECT_EQ(s.prices, "/etc/p.json");
  EXPECT_EQ(s.ca_file, "/etc/ca.pem");
  EXPECT_EQ(error_of(R"({"prices": 3})"),
            "config file /etc/gw.json: field \"prices\": expected a string");
  EXPECT_EQ(error_of(R"({"ca_file": ""})"),
            "config file /etc/gw.json: field \"ca_file\": expected a file name");
}

}  // namespace

// The library API end to end over HTTP(S) against the fake provider, for each wire format:
// OpenAI chat completions, Anthropic messages, Gemini generateContent.
#include "agent/runtime_impl.hpp"
#include "llm_caching/agent.hpp"
#include "llm_caching/cache_options.hpp"
#include "llm_caching/costs.hpp"
#include "llm_caching/errors.hpp"

#include "cache/tiered_cache.hpp"
#include "support/fake_provider.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>
#include <boost/describe.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace provider_tests {

struct City {
  std::string name;
  std::int64_t population = 0;
  double area = 0;
  bool capital = false;
};
BOOST_DESCRIBE_STRUCT(City, (), (name, population, area, capital))

}  // namespace provider_tests

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace llm_caching;
using namespace std::chrono_literals;
using llmc_test::FakeProvider;
using llmc_test::ScopedEnv;
using provider_tests::City;

constexpr const char* kSecret = "sk-test-secret-value-123";

struct Api {
  const char* name;
  const char* prefix;  // model prefix
  const char* model;   // priced in data/model_costs.json
  const char* key_var;
  const char* base_url_var;
  const char* url_suffix;  // appended to the fake's base URL
  const char* route;       // key of /_stats "routes"
};

const Api kOpenAi{"openai",          "openai", "gpt-4o-mini",         "OPENAI_API_KEY",
                  "OPENAI_BASE_URL", "/v1",    "/v1/chat/completions"};
const Api kAnthropic{"anthropic",         "anthropic",          "claude-3-5-haiku-latest",
                     "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "",
                     "/v1/messages"};
const Api kGemini{"gemini",
                  "google-gla",
                  "gemini-2.0-flash",
                  "GEMINI_API_KEY",
                  "GEMINI_BASE_URL",
                  "",
                  "/v1beta/models:generateContent"};

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string unique_namespace() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string ns = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : ns) {
    if (c == '/') c = '.';
  }
  return ns;
}

/// Every variable that could steer a call somewhere else, cleared for the test.
struct CleanEnvironment {
  std::vector<std::unique_ptr<ScopedEnv>> vars;
  CleanEnvironment() {
    for (const char* name :
         {"OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
          "GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL", "LLM_CACHING_CA_FILE",
          "SSL_CERT_FILE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
          "no_proxy", "LLM_CACHE_REDIS_URL"}) {
      vars.push_back(std::make_unique<ScopedEnv>(name, std::nullopt));
    }
  }
  void set(const std::string& name, const std::string& value) {
    vars.push_back(std::make_unique<ScopedEnv>(name, value));
  }
};

class ProvidersTest : public ::testing::TestWithParam<Api> {
 protected:
  static llmc_test::FakeProviderPair& fakes() { return llmc_test::shared_fake_providers(); }

  void SetUp() override {
    fakes().reset();
    point_at(fakes().plain);
    env_.set(api().key_var, kSecret);
  }

  const Api& api() const { return GetParam(); }
  void point_at(const FakeProvider& fake) {
    env_.set(api().base_url_var, fake.base_url() + api().url_suffix);
  }
  Agent agent(const std::string& model_suffix = "") const {
    return Agent{.model = std::string(api().prefix) + ":" + api().model + model_suffix};
  }
  RunOptions options() const {
    RunOptions o;
    o.redis_url = "memory://";
    o.namespace_ = unique_namespace();
    o.initial_wait = 1ms;
    o.max_wait = 2s;
    return o;
  }
  /// Options for a model with a behaviour suffix: priced as the plain model.
  RunOptions options_for_suffix(const std::string& suffix) const {
    RunOptions o = options();
    o.custom_costs[std::string(api().model) + suffix] = CostTable::defaults().at(api().model);
    return o;
  }
  static std::int64_t total_calls(const FakeProvider& fake) {
    return fake.stats().at("total").as_int64();
  }
  std::int64_t route_calls(const FakeProvider& fake) const {
    const json::object stats = fake.stats();
    const auto* n = stats.at("routes").as_object().if_contains(api().route);
    return n ? n->as_int64() : 0;
  }
  /// The native response stored under `key`, as the provider sent it.
  static json::object stored_response(const std::string& key) {
    auto tiers = Runtime::default_runtime().impl().caches.open(CacheOptions{.url = "memory://"});
    asio::io_context io;
    auto entry = llmc_test::run_sync(io, tiers->get(key, now_ms()));
    if (!entry) throw std::runtime_error("no entry under " + key);
    return json::parse(entry->response).as_object();
  }

  CleanEnvironment env_;
};

TEST_P(ProvidersTest, MissThenHitMakesExactlyOneUpstreamCall) {
  const RunResult first = cached_agent_run_sync(agent(), "What is a cache?", "t", options());
  EXPECT_FALSE(first.cache_hit);
  EXPECT_TRUE(first.output.starts_with("echo: What is a cache? [")) << first.output;
  EXPECT_EQ(first.usage.requests, 1);
  EXPECT_GT(first.cost_nano_usd, 0);

  const RunResult second = cached_agent_run_sync(agent(), "What is a cache?", "t", options());
  EXPECT_TRUE(second.cache_hit);
  EXPECT_EQ(second.output, first.output);
  EXPECT_EQ(second.cost_nano_usd, 0);
  EXPECT_EQ(second.avoided_cost_nano_usd, first.cost_nano_usd);
  EXPECT_EQ(second.cache_key, first.cache_key);

  EXPECT_EQ(total_calls(fakes().plain), 1);
  EXPECT_EQ(route_calls(fakes().plain), 1);
}

TEST_P(ProvidersTest, CostFromUsageWithProviderCacheTokensMatchesAHandComputation) {
  // The fake reports provider prompt-cache tokens when the body contains "cache-me".
  const RunResult r =
      cached_agent_run_sync(agent(), "cache-me: a long shared preamble", "t", options());
  const json::object response = stored_response(r.cache_key);
  const json::object& u =
      response.at(api().prefix == std::string("google-gla") ? "usageMetadata" : "usage")
          .as_object();
  const ModelCosts& price = CostTable::defaults().at(api().model);

  // Rates in pico-USD per token (USD per million x 10^6), from data/model_costs.json.
  std::int64_t pico = 0;
  std::int64_t cached = 0;
  if (api().name == std::string("openai")) {
    ASSERT_DOUBLE_EQ(price.cost_per_million_input_tokens, 0.15);
    ASSERT_DOUBLE_EQ(price.cost_per_million_output_tokens, 0.6);
    ASSERT_DOUBLE_EQ(price.cost_per_million_caching_hit_tokens, 0.075);
    // prompt_tokens includes the cached tokens.
    const std::int64_t prompt = u.at("prompt_tokens").as_int64();
    cached = u.at("prompt_tokens_details").at("cached_tokens").as_int64();
    const std::int64_t completion = u.at("completion_tokens").as_int64();
    pico = (prompt - cached) * 150'000 + cached * 75'000 + completion * 600'000;
    EXPECT_EQ(r.usage.input_tokens, prompt - cached);
  } else if (api().name == std::string("anthropic")) {
    ASSERT_DOUBLE_EQ(price.cost_per_million_input_tokens, 0.8);
    ASSERT_DOUBLE_EQ(price.cost_per_million_output_tokens, 4.0);
    ASSERT_DOUBLE_EQ(price.cost_per_million_caching_input_tokens, 1.0);
    ASSERT_DOUBLE_EQ(price.cost_per_million_caching_hit_tokens, 0.08);
    // input_tokens excludes both cache writes and cache reads.
    const std::int64_t input = u.at("input_tokens").as_int64();
    const std::int64_t written = u.at("cache_creation_input_tokens").as_int64();
    cached = u.at("cache_read_input_tokens").as_int64();
    const std::int64_t output = u.at("output_tokens").as_int64();
    EXPECT_GT(written, 0);
    pico = input * 800'000 + written * 1'000'000 + cached * 80'000 + output * 4'000'000;
    EXPECT_EQ(r.usage.input_tokens, input);
    EXPECT_EQ(r.usage.cache_write_tokens, written);
  } else {
    ASSERT_DOUBLE_EQ(price.cost_per_million_input_tokens, 0.1);
    ASSERT_DOUBLE_EQ(price.cost_per_million_output_tokens, 0.4);
    ASSERT_DOUBLE_EQ(price.cost_per_million_caching_hit_tokens, 0.025);
    // promptTokenCount includes cachedContentTokenCount.
    const std::int64_t prompt = u.at("promptTokenCount").as_int64();
    cached = u.at("cachedContentTokenCount").as_int64();
    const std::int64_t output = u.at("candidatesTokenCount").as_int64();
    pico = (prompt - cached) * 100'000 + cached * 25'000 + output * 400'000;
    EXPECT_EQ(r.usage.input_tokens, prompt - cached);
  }
  EXPECT_GT(cached, 0);
  EXPECT_EQ(r.usage.cache_read_tokens, cached);
  const std::int64_t expected_nano = (pico + 500) / 1000;
  EXPECT_EQ(r.cost_nano_usd, expected_nano);
  EXPECT_DOUBLE_EQ(r.cost, static_cast<double>(expected_nano) / 1e9);

  const RunResult hit =
      cached_agent_run_sync(agent(), "cache-me: a long shared preamble", "t", options());
  EXPECT_TRUE(hit.cache_hit);
  EXPECT_EQ(hit.avoided_cost_nano_usd, expected_nano);
}

TEST_P(ProvidersTest, RateLimitedTwiceThenSucceedsWithinMaxWait) {
  const std::string suffix = "+429ms-2";  // two 429s with retry-after-ms: 50
  const RunResult r =
      cached_agent_run_sync(agent(suffix), "busy?", "t", options_for_suffix(suffix));
  EXPECT_FALSE(r.cache_hit);
  EXPECT_TRUE(r.output.starts_with("echo: busy?")) << r.output;
  EXPECT_EQ(total_calls(fakes().plain), 3);
}

TEST_P(ProvidersTest, RateLimitedBeyondMaxWaitRaisesWithAttemptsAndWaited) {
  const std::string suffix = "+429ms-100";
  RunOptions o = options_for_suffix(suffix);
  o.max_wait = 120ms;  // room for two waits of 50 ms, not a third
  try {
    cached_agent_run_sync(agent(suffix), "busy?", "t", o);
    FAIL() << "expected RateLimitError";
  } catch (const RateLimitError& e) {
    EXPECT_EQ(e.attempts(), 3) << e.what();
    EXPECT_EQ(e.waited(), 100ms) << e.what();
    EXPECT_EQ(e.last_retry_after(), std::optional(50ms));
    EXPECT_EQ(total_calls(fakes().plain), 3);
  }
}

TEST_P(ProvidersTest, OverloadIsRetriedUntilMaxWait) {
  // Anthropic answers 529 overloaded_error, the others 503: both are retried, never cached.
  const std::string suffix = "+529";
  RunOptions o = options_for_suffix(suffix);
  o.max_wait = 30ms;  // backoff 1, 2, 4, 8 ms... then give up
  int attempts = 0;
  try {
    cached_agent_run_sync(agent(suffix), "overloaded?", "t", o);
    FAIL() << "expected an error";
  } catch (const RateLimitError& e) {
    EXPECT_EQ(api().name, std::string("anthropic")) << e.what();
    attempts = e.attempts();
  } catch (const ProviderError& e) {
    EXPECT_NE(api().name, std::string("anthropic")) << e.what();
    EXPECT_EQ(e.http_status(), 503);
    EXPECT_NE(std::string(e.what()).find("attempts"), std::string::npos) << e.what();
  }
  const std::int64_t calls = total_calls(fakes().plain);
  EXPECT_GT(calls, 1);
  if (attempts) EXPECT_EQ(calls, attempts);
}

TEST_P(ProvidersTest, TlsWorksWithTheTestCaTrustedAndFailsVerificationWithout) {
  point_at(fakes().tls);
  try {
    cached_agent_run_sync(agent(), "over TLS", "t", options());
    FAIL() << "expected a verification failure";
  } catch (const ProviderError& e) {
    EXPECT_EQ(e.error_type(), "tls_verify");
    EXPECT_NE(std::string(e.what()).find("verify failed"), std::string::npos) << e.what();
  }
  EXPECT_EQ(total_calls(fakes().tls), 0);

  env_.set("LLM_CACHING_CA_FILE", fakes().certs.ca_cert);
  const RunResult r = cached_agent_run_sync(agent(), "over TLS", "t", options());
  EXPECT_TRUE(r.output.starts_with("echo: over TLS")) << r.output;
  EXPECT_EQ(total_calls(fakes().tls), 1);
}

TEST_P(ProvidersTest, MissingKeyIsAConfigurationErrorNamingTheVariableAndSendsNothing) {
  point_at(fakes().tls);  // https: a key is required
  env_.set("LLM_CACHING_CA_FILE", fakes().certs.ca_cert);
  env_.set(api().key_var, "");
  try {
    cached_agent_run_sync(agent(), "no key", "t", options());
    FAIL() << "expected ConfigurationError";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find(api().key_var), std::string::npos) << e.what();
  }
  EXPECT_EQ(total_calls(fakes().tls), 0);
}

TEST_P(ProvidersTest, GarbageBodyIsAProviderErrorAndNothingIsCached) {
  const std::string suffix = "+invalid-json";
  for (int i = 0; i < 2; ++i) {
    try {
      cached_agent_run_sync(agent(suffix), "garbage", "t", options_for_suffix(suffix));
      FAIL() << "expected ProviderError";
    } catch (const ProviderError& e) {
      EXPECT_EQ(e.error_type(), "invalid_response") << e.what();
    }
  }
  EXPECT_EQ(total_calls(fakes().plain), 2);  // the second call was not answered from the cache
}

TEST_P(ProvidersTest, TruncatedBodyIsAProviderErrorAndNothingIsCached) {
  const std::string suffix = "+truncated";
  RunOptions o = options_for_suffix(suffix);
  o.max_wait = 10ms;  // a broken connection is retried like a reset
  std::int64_t after_first = 0;
  for (int i = 0; i < 2; ++i) {
    try {
      cached_agent_run_sync(agent(suffix), "cut short", "t", o);
      FAIL() << "expected ProviderError";
    } catch (const ProviderError& e) {
      EXPECT_EQ(e.http_status(), 0) << e.what();
    }
    if (i == 0) after_first = total_calls(fakes().plain);
  }
  EXPECT_GE(after_first, 1);
  EXPECT_GT(total_calls(fakes().plain), after_first);
}

TEST_P(ProvidersTest, TypedOutputGoesThroughTheProvidersStructuredOutputMechanism) {
  const auto r = cached_agent_run_sync<City>(agent(), "Describe a city", "t", options());
  // The fake fills a schema with "x", 1, 1.5 and true.
  EXPECT_EQ(r.data.name, "x");
  EXPECT_EQ(r.data.population, 1);
  EXPECT_DOUBLE_EQ(r.data.area, 1.5);
  EXPECT_TRUE(r.data.capital);

  const json::object response = stored_response(r.cache_key);
  if (api().name == std::string("openai")) {
    // response_format json_schema: the JSON comes as the message content.
    const auto& message = response.at("choices").at(0).at("message");
    EXPECT_EQ(json::parse(message.at("content").as_string()).at("name"), "x");
  } else if (api().name == std::string("anthropic")) {
    // A forced tool: the JSON is the tool_use block's input.
    EXPECT_EQ(response.at("content").at(0).at("type"), "tool_use");
    EXPECT_EQ(response.at("content").at(0).at("input").at("name"), "x");
  } else {
    // responseSchema: the JSON text is the part's text.
    const auto& part = response.at("candidates").at(0).at("content").at("parts").at(0);
    EXPECT_EQ(json::parse(part.at("text").as_string()).at("name"), "x");
  }

  const auto again = cached_agent_run_sync<City>(agent(), "Describe a city", "t", options());
  EXPECT_TRUE(again.cache_hit);
  EXPECT_EQ(again.data.name, "x");
  EXPECT_EQ(total_calls(fakes().plain), 1);
}

TEST_P(ProvidersTest, TypedOutputOfTheWrongShapeIsAProviderErrorAndNotCached) {
  const std::string suffix = "+wrong-schema";
  for (int i = 0; i < 2; ++i) {
    try {
      cached_agent_run_sync<City>(agent(suffix), "Describe a city", "t",
                                  options_for_suffix(suffix));
      FAIL() << "expected ProviderError";
    } catch (const ProviderError& e) {
      EXPECT_EQ(e.error_type(), "output_validation") << e.what();
    }
  }
  EXPECT_EQ(total_calls(fakes().plain), 2);
}

INSTANTIATE_TEST_SUITE_P(Wire, ProvidersTest, ::testing::Values(kOpenAi, kAnthropic, kGemini),
                         [](const auto& info) { return std::string(info.param.name); });

// Gemini's own rate-limit shape: 429 RESOURCE_EXHAUSTED with RetryInfo.retryDelay and no header.
class GeminiRateLimitTest : public ProvidersTest {};

TEST_P(GeminiRateLimitTest, ResourceExhaustedIsRetriedAfterTheRetryDelay) {
  const std::string suffix = "+gemini-exhausted-1";
  RunOptions o = options_for_suffix(suffix);
  o.max_wait = 3s;  // the fake's retryDelay is 1s
  const RunResult r = cached_agent_run_sync(agent(suffix), "exhausted?", "t", o);
  EXPECT_TRUE(r.output.starts_with("echo: exhausted?")) << r.output;
  EXPECT_EQ(total_calls(fakes().plain), 2);

  // With less time than the retry delay, it gives up at once and says why.
  const std::string again = "+gemini-exhausted-5";
  RunOptions short_wait = options_for_suffix(again);
  short_wait.max_wait = 500ms;
  try {
    cached_agent_run_sync(agent(again), "exhausted?", "t", short_wait);
    FAIL() << "expected RateLimitError";
  } catch (const RateLimitError& e) {
    EXPECT_EQ(e.attempts(), 1);
    EXPECT_EQ(e.last_retry_after(), std::optional(1000ms));
    EXPECT_NE(std::string(e.what()).find("RESOURCE_EXHAUSTED"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Wire, GeminiRateLimitTest, ::testing::Values(kGemini),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace

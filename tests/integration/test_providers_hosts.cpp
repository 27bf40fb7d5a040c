// OpenAI-compatible hosts by model prefix, the endpoint in the cache key, trusting an extra CA,
// and keyless replay: against the fake provider.
#include "agent/run.hpp"
#include "llm_caching/agent.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/runtime.hpp"
#include "providers/http_model.hpp"

#include "support/fake_provider.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace {

using namespace llm_caching;
using namespace std::chrono_literals;
using llmc_test::FakeProvider;
using llmc_test::ScopedEnv;

constexpr const char* kSecret = "sk-host-secret-456";

std::string unique_namespace() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

struct ExpectedHost {
  const char* prefix;
  const char* base_url;
  const char* key_variable;  // "" for local servers
  const char* base_url_variable;
};

// The brief's table, written out independently of the code's.
const std::vector<ExpectedHost> kCompatibleHosts = {
    {"groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "GROQ_BASE_URL"},
    {"deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL"},
    {"openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"},
    {"together", "https://api.together.xyz/v1", "TOGETHER_API_KEY", "TOGETHER_BASE_URL"},
    {"mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", "MISTRAL_BASE_URL"},
    {"ollama", "http://localhost:11434/v1", "", "OLLAMA_BASE_URL"},
    {"vllm", "http://localhost:8000/v1", "", "VLLM_BASE_URL"},
    {"llamacpp", "http://localhost:8080/v1", "", "LLAMACPP_BASE_URL"},
};

struct CleanEnvironment {
  std::vector<std::unique_ptr<ScopedEnv>> vars;
  CleanEnvironment() {
    std::vector<std::string> names = {"OPENAI_API_KEY", "OPENAI_BASE_URL",    "LLM_CACHING_CA_FILE",
                                      "SSL_CERT_FILE",  "HTTPS_PROXY",        "https_proxy",
                                      "HTTP_PROXY",     "http_proxy",         "NO_PROXY",
                                      "no_proxy",       "LLM_CACHE_REDIS_URL"};
    for (const auto& host : providers::known_hosts()) {
      names.emplace_back(host.key_variable);
      names.emplace_back(host.base_url_variable);
      if (!host.alternate_key_variable.empty()) names.emplace_back(host.alternate_key_variable);
    }
    for (const auto& name : names) vars.push_back(std::make_unique<ScopedEnv>(name, std::nullopt));
  }
  void set(const std::string& name, const std::string& value) {
    vars.push_back(std::make_unique<ScopedEnv>(name, value));
  }
};

class HostsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new llmc_test::TestCertificates(llmc_test::make_test_certificates());
    fake_ = new FakeProvider();
    other_fake_ = new FakeProvider();
    tls_fake_ = new FakeProvider({.tls = certs_});
  }
  static void TearDownTestSuite() {
    delete tls_fake_;
    delete other_fake_;
    delete fake_;
    delete certs_;
  }
  void SetUp() override {
    for (auto* f : {fake_, other_fake_, tls_fake_}) f->reset();
  }
  RunOptions options() const {
    RunOptions o;
    o.redis_url = "memory://";
    o.namespace_ = unique_namespace();
    o.initial_wait = 1ms;
    o.max_wait = 1s;
    return o;
  }
  static std::int64_t calls(const FakeProvider& f) { return f.stats().at("total").as_int64(); }

  CleanEnvironment env_;
  static inline llmc_test::TestCertificates* certs_ = nullptr;
  static inline FakeProvider* fake_ = nullptr;
  static inline FakeProvider* other_fake_ = nullptr;
  static inline FakeProvider* tls_fake_ = nullptr;
};

TEST_F(HostsTest, EachCompatiblePrefixSpeaksOpenAiWithItsOwnEndpointAndKeyVariable) {
  for (const ExpectedHost& expected : kCompatibleHosts) {
    SCOPED_TRACE(expected.prefix);
    const agent::ModelSpec spec =
        agent::parse_model_spec(std::string(expected.prefix) + ":some-model:7b");
    EXPECT_EQ(spec.provider, Provider::openai);
    EXPECT_EQ(spec.model, "some-model:7b");  // only the first ':' separates
    ASSERT_NE(spec.host, nullptr);
    EXPECT_EQ(spec.host->default_base_url, expected.base_url);
    EXPECT_EQ(spec.host->base_url_variable, expected.base_url_variable);
    const bool local = std::string(expected.key_variable).empty();
    EXPECT_EQ(spec.host->local, local);
    if (!local) EXPECT_EQ(spec.host->key_variable, expected.key_variable);

    const auto endpoint = providers::resolve_endpoint(*spec.host, "", local ? "" : "k");
    EXPECT_EQ(endpoint.base_url, expected.base_url);
    EXPECT_EQ(providers::endpoint_url(endpoint, spec.model, false),
              std::string(expected.base_url) + "/chat/completions");
  }
}

TEST_F(HostsTest, MissingHostKeyNamesTheHostsVariableBeforeAnyIo) {
  for (const ExpectedHost& expected : kCompatibleHosts) {
    if (std::string(expected.key_variable).empty()) continue;
    SCOPED_TRACE(expected.prefix);
    // The default endpoint is a public host: the error must come before any connection.
    const Agent agent{.model = std::string(expected.prefix) + ":llama-3.3-70b"};
    try {
      cached_agent_run_sync(agent, "hi", "t", options());
      FAIL() << "expected ConfigurationError";
    } catch (const ConfigurationError& e) {
      EXPECT_NE(std::string(e.what()).find(expected.key_variable), std::string::npos) << e.what();
    }
  }
}

TEST_F(HostsTest, UnknownPrefixListsTheAcceptedOnes) {
  try {
    agent::parse_model_spec("grok:beta");
    FAIL() << "expected ConfigurationError";
  } catch (const ConfigurationError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'grok'"), std::string::npos) << what;
    EXPECT_NE(what.find("groq:"), std::string::npos) << what;
    EXPECT_NE(what.find("ollama:"), std::string::npos) << what;
  }
}

TEST_F(HostsTest, GroqThroughItsBaseUrlVariableSendsItsKeyAndCaches) {
  env_.set("GROQ_BASE_URL", fake_->base_url() + "/v1");
  env_.set("GROQ_API_KEY", kSecret);
  RunOptions o = options();
  o.custom_costs["llama-3.3-70b-versatile"] = ModelCosts{0.59, 0.79, 0.59, 0.59};
  const Agent agent{.model = "groq:llama-3.3-70b-versatile"};
  const RunResult first = cached_agent_run_sync(agent, "hello groq", "t", o);
  EXPECT_TRUE(first.output.starts_with("echo: hello groq")) << first.output;
  EXPECT_GT(first.cost_nano_usd, 0);
  EXPECT_TRUE(cached_agent_run_sync(agent, "hello groq", "t", o).cache_hit);
  EXPECT_EQ(calls(*fake_), 1);
  EXPECT_EQ(fake_->stats().at("routes").at("/v1/chat/completions").as_int64(), 1);
}

TEST_F(HostsTest, UnpricedModelOnAHostedServiceIsAConfigurationError) {
  env_.set("GROQ_BASE_URL", fake_->base_url() + "/v1");
  env_.set("GROQ_API_KEY", kSecret);
  try {
    cached_agent_run_sync(Agent{.model = "groq:no-such-priced-model"}, "hi", "t", options());
    FAIL() << "expected ConfigurationError";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-priced-model"), std::string::npos) << e.what();
  }
  EXPECT_EQ(calls(*fake_), 0);
}

TEST_F(HostsTest, LocalServerNeedsNoKeyAndAnUnpricedModelCostsNothing) {
  // Even an https:// local server needs no key; none is sent when none is set.
  const auto endpoint =
      providers::resolve_endpoint(*providers::find_host("vllm"), "https://gpu-box:8000/v1", "");
  EXPECT_TRUE(endpoint.api_key.empty());
  EXPECT_TRUE(providers::auth_headers(endpoint).empty());

  // The fake insists on a key, as a vLLM started with --api-key does: OLLAMA_API_KEY is sent.
  env_.set("OLLAMA_BASE_URL", fake_->base_url() + "/v1");
  env_.set("OLLAMA_API_KEY", kSecret);
  const Agent agent{.model = "ollama:llama3.2:1b"};
  const RunResult r = cached_agent_run_sync(agent, "hello ollama", "t", options());
  EXPECT_TRUE(r.output.starts_with("echo: hello ollama")) << r.output;
  EXPECT_EQ(r.cost_nano_usd, 0);
  EXPECT_GT(r.usage.output_tokens, 0);
  EXPECT_EQ(calls(*fake_), 1);
}

TEST_F(HostsTest, TheSameModelOnTwoEndpointsNeverSharesAnEntry) {
  env_.set("OPENAI_API_KEY", kSecret);
  const Agent on_first{.model = "openai:gpt-4o-mini", .base_url = fake_->base_url() + "/v1"};
  const Agent on_second{.model = "openai:gpt-4o-mini", .base_url = other_fake_->base_url() + "/v1"};
  const RunResult a = cached_agent_run_sync(on_first, "same question", "t", options());
  const RunResult b = cached_agent_run_sync(on_second, "same question", "t", options());
  EXPECT_FALSE(b.cache_hit);
  EXPECT_NE(a.cache_key, b.cache_key);
  EXPECT_EQ(calls(*fake_), 1);
  EXPECT_EQ(calls(*other_fake_), 1);
  // The same endpoint written with a trailing slash is the same endpoint.
  Agent again = on_first;
  again.base_url += "/";
  EXPECT_TRUE(cached_agent_run_sync(again, "same question", "t", options()).cache_hit);
}

TEST_F(HostsTest, CacheScopeIsEmptyForThePublicServiceAndHasNoSecrets) {
  auto endpoint = providers::resolve_endpoint(Provider::openai, "", "k");
  EXPECT_EQ(providers::cache_scope(endpoint), "");  // shares keys with the gateway
  endpoint.base_url = "https://user:pw@API.Groq.com:443/openai/v1?key=secret";
  EXPECT_EQ(providers::cache_scope(endpoint), "endpoint=api.groq.com/openai/v1");
  endpoint.base_url = "http://localhost:11434/v1";
  EXPECT_EQ(providers::cache_scope(endpoint), "endpoint=localhost:11434/v1");
}

TEST_F(HostsTest, SslCertFileReplacesTheSystemStore) {
  env_.set("OPENAI_API_KEY", kSecret);
  const Agent agent{.model = "openai:gpt-4o-mini", .base_url = tls_fake_->base_url() + "/v1"};
  EXPECT_THROW(cached_agent_run_sync(agent, "tls", "t", options()), ProviderError);
  env_.set("SSL_CERT_FILE", certs_->ca_cert);  // read by OpenSSL's default verify paths
  // A runtime's clients read the trust store's variables once, when they are made: a runtime
  // made after the change sees it.
  Runtime fresh;
  RunOptions with_fresh_runtime = options();
  with_fresh_runtime.runtime = &fresh;
  const RunResult r = cached_agent_run_sync(agent, "tls", "t", with_fresh_runtime);
  EXPECT_TRUE(r.output.starts_with("echo: tls")) << r.output;
  EXPECT_EQ(calls(*tls_fake_), 1);
}

TEST_F(HostsTest, UnreadableCaFileIsAConfigurationErrorNamingIt) {
  env_.set("OPENAI_API_KEY", kSecret);
  env_.set("LLM_CACHING_CA_FILE", "/nonexistent/ca.pem");
  const Agent agent{.model = "openai:gpt-4o-mini", .base_url = tls_fake_->base_url() + "/v1"};
  try {
    cached_agent_run_sync(agent, "tls", "t", options());
    FAIL() << "expected ConfigurationError";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/ca.pem"), std::string::npos) << e.what();
  }
  EXPECT_EQ(calls(*tls_fake_), 0);
}

TEST_F(HostsTest, ReplayOnlyRunsWithoutAKey) {
  env_.set("LLM_CACHING_CA_FILE", certs_->ca_cert);
  const Agent agent{.model = "anthropic:claude-3-5-haiku-latest",
                    .base_url = tls_fake_->base_url()};
  {
    ScopedEnv key("ANTHROPIC_API_KEY", kSecret);
    cached_agent_run_sync(agent, "recorded", "t", options());
  }
  RunOptions replay = options();
  replay.mode = CacheMode::replay_only;
  const RunResult r = cached_agent_run_sync(agent, "recorded", "t", replay);
  EXPECT_TRUE(r.cache_hit);
  EXPECT_THROW(cached_agent_run_sync(agent, "never recorded", "t", replay), CacheMissError);
  EXPECT_EQ(calls(*tls_fake_), 1);
}

}  // namespace

// `llm-caching ask` as a user runs it, against the fake provider, with a temp SQLite cache that
// two CLI processes share.
#include "support/fake_provider.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;
using llmc_test::FakeProvider;
using llmc_test::ScopedEnv;

constexpr const char* kSecret = "sk-cli-secret-789";

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string unique_namespace() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string ns = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : ns) {
    if (c == '/') c = '.';
  }
  return ns;
}

struct Api {
  const char* name;
  const char* model;
  const char* key_var;
  const char* base_url_var;
  const char* url_suffix;
};

const Api kOpenAi{"openai", "openai:gpt-4o-mini", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1"};
const Api kAnthropic{"anthropic", "anthropic:claude-3-5-haiku-latest", "ANTHROPIC_API_KEY",
                     "ANTHROPIC_BASE_URL", ""};
const Api kGemini{"gemini", "gemini:gemini-2.0-flash", "GEMINI_API_KEY", "GEMINI_BASE_URL", ""};

class CliAskTest : public ::testing::TestWithParam<Api> {
 protected:
  static llmc_test::FakeProviderPair& fakes() { return llmc_test::shared_fake_providers(); }
  void SetUp() override {
    fakes().reset();
    for (const char* name :
         {"OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
          "GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL", "LLM_CACHING_CA_FILE",
          "SSL_CERT_FILE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
          "no_proxy", "LLM_CACHE_REDIS_URL"}) {
      set_env(name, std::nullopt);
    }
    set_env(api().key_var, kSecret);
    point_at(fakes().plain);
  }

  const Api& api() const { return GetParam(); }
  void set_env(const std::string& name, std::optional<std::string> value) {
    env_.push_back(std::make_unique<ScopedEnv>(name, std::move(value)));
  }
  void point_at(const FakeProvider& fake) {
    set_env(api().base_url_var, fake.base_url() + api().url_suffix);
  }

  /// Runs the CLI with the test's cache and namespace; stdout and stderr are captured apart.
  /// `input`, when given, is the CLI's standard input (else /dev/null).
  CliResult ask(std::vector<std::string> args,
                const std::optional<std::string>& input = std::nullopt) const {
    std::string command = shell_quote(LLMC_CLI_PATH) + " --cache-url " +
                          shell_quote("sqlite://" + dir_.file("cache.db")) + " ask --namespace " +
                          shell_quote(unique_namespace());
    for (const auto& a : args) command += " " + shell_quote(a);
    const std::string out = dir_.file("out"), err = dir_.file("err");
    std::string in = "/dev/null";
    if (input) {
      in = dir_.file("in");
      std::ofstream(in, std::ios::binary) << *input;
    }
    command += " >" + shell_quote(out) + " 2>" + shell_quote(err) + " <" + shell_quote(in);
    const int status = std::system(command.c_str());
    CliResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  static std::int64_t calls(const FakeProvider& f) { return f.stats().at("total").as_int64(); }

  llmc_test::TempDir dir_;
  /// Restored last set, first (a variable set twice gets its value from before the test
  /// back, not the first setting; a std::vector destroys its elements first to last).
  struct ScopedEnvs : std::vector<std::unique_ptr<ScopedEnv>> {
    ~ScopedEnvs() {
      while (!empty()) pop_back();
    }
  };
  ScopedEnvs env_;
};

TEST_P(CliAskTest, PrintsTheAnswerThenAnswersFromTheCache) {
  const CliResult first = ask({"--model", api().model, "-v", "Hello there"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(first.out.starts_with("echo: Hello there [")) << first.out;
  EXPECT_EQ(first.out.find("MISS"), std::string::npos) << "stdout holds only the answer";
  EXPECT_TRUE(first.err.starts_with("MISS ")) << first.err;
  EXPECT_NE(first.err.find("tokens:"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("cost $0.0000"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("latency "), std::string::npos) << first.err;
  EXPECT_EQ(first.err.find(kSecret), std::string::npos);

  const CliResult second = ask({"--model", api().model, "-v", "Hello there"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, first.out);
  EXPECT_TRUE(second.err.starts_with("HIT ")) << second.err;
  EXPECT_NE(second.err.find("saved $"), std::string::npos) << second.err;
  EXPECT_EQ(calls(fakes().plain), 1);
}

TEST_P(CliAskTest, JsonPrintsTheWholeRunResult) {
  const CliResult r = ask({"--model", api().model, "--json", "--system", "Be brief.",
                           "--temperature", "0.2", "--max-tokens", "64", "--seed", "7", "Hi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json::object result = json::parse(r.out).as_object();
  EXPECT_TRUE(result.at("output").as_string().starts_with("echo: Hi ["));
  EXPECT_EQ(result.at("model"), api().model);
  EXPECT_EQ(result.at("cache_hit"), false);
  EXPECT_GT(result.at("cost_nano_usd").as_int64(), 0);
  EXPECT_GT(result.at("usage").at("output_tokens").as_int64(), 0);
  EXPECT_EQ(result.at("usage").at("requests").as_int64(), 1);
  EXPECT_FALSE(result.at("finish_reason").as_string().empty());
  EXPECT_TRUE(
      result.at("cache_key").as_string().starts_with("llm-caching:v1:" + unique_namespace() + ":"));
  const auto& messages = result.at("messages").as_array();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1].at("role"), "assistant");

  // Each setting is part of the request, hence of the key.
  const CliResult other = ask({"--model", api().model, "--json", "--system", "Be brief.",
                               "--temperature", "0.3", "--max-tokens", "64", "--seed", "7", "Hi"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_NE(json::parse(other.out).at("cache_key"), result.at("cache_key"));
  EXPECT_EQ(calls(fakes().plain), 2);
}

TEST_P(CliAskTest, MissingKeyExitsTwoNamingTheVariable) {
  point_at(fakes().tls);  // https: a key is required
  set_env(api().key_var, std::nullopt);
  const CliResult r = ask({"--model", api().model, "--ca-file", fakes().certs.ca_cert, "Hi"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(api().key_var), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("Agent::api_key"), std::string::npos) << "a library field: " << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(calls(fakes().tls), 0);
}

TEST_P(CliAskTest, CaFileIsTrustedAndWithoutItVerificationFails) {
  point_at(fakes().tls);
  const CliResult untrusted = ask({"--model", api().model, "Hi over TLS"});
  EXPECT_EQ(untrusted.exit_code, 5) << untrusted.err;
  EXPECT_NE(untrusted.err.find("certificate verify failed"), std::string::npos) << untrusted.err;

  const CliResult trusted =
      ask({"--model", api().model, "--ca-file", fakes().certs.ca_cert, "Hi over TLS"});
  EXPECT_EQ(trusted.exit_code, 0) << trusted.err;
  EXPECT_TRUE(trusted.out.starts_with("echo: Hi over TLS")) << trusted.out;
}

TEST_P(CliAskTest, RateLimitBeyondMaxWaitExitsFour) {
  // A behaviour suffix makes a model id the price table lacks: --price supplies it.
  std::string model = std::string(api().model) + "+429ms-100";
  const CliResult r = ask({"--model", model, "--price", "0.15,0.6", "--max-wait", "120ms",
                           "--initial-wait", "1ms", "Hi"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("rate limited"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("attempts 3"), std::string::npos) << r.err;
  EXPECT_EQ(calls(fakes().plain), 3);
}

TEST_P(CliAskTest, GarbageAnswerExitsFiveAndIsNotCached) {
  std::string model = std::string(api().model) + "+invalid-json";
  for (int i = 0; i < 2; ++i) {
    const CliResult r = ask({"--model", model, "--price", "1,2", "Hi"});
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_NE(r.err.find("provider error"), std::string::npos) << r.err;
  }
  EXPECT_EQ(calls(fakes().plain), 2);
}

TEST_P(CliAskTest, CacheModes) {
  const CliResult miss = ask({"--model", api().model, "--mode", "replay_only", "Hi modes"});
  EXPECT_EQ(miss.exit_code, 3) << miss.err;
  EXPECT_EQ(calls(fakes().plain), 0);

  ASSERT_EQ(ask({"--model", api().model, "--mode", "bypass", "Hi modes"}).exit_code, 0);
  ASSERT_EQ(ask({"--model", api().model, "--mode", "bypass", "Hi modes"}).exit_code, 0);
  EXPECT_EQ(calls(fakes().plain), 2);  // bypass neither reads nor writes

  ASSERT_EQ(ask({"--model", api().model, "Hi modes"}).exit_code, 0);
  // replay_only needs no key: test suites replay without secrets.
  set_env(api().key_var, std::nullopt);
  const CliResult replay = ask({"--model", api().model, "--mode", "replay_only", "-v", "Hi modes"});
  EXPECT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_TRUE(replay.err.starts_with("HIT ")) << replay.err;
  EXPECT_EQ(calls(fakes().plain), 3);
}

TEST_P(CliAskTest, TheModeComesFromTheEnvironmentAndTheFlagWins) {
  set_env("LLM_CACHE_MODE", "replay_only");
  set_env(api().key_var, std::nullopt);  // CI: no key
  const CliResult miss = ask({"--model", api().model, "Hi env mode"});
  EXPECT_EQ(miss.exit_code, 3) << miss.err;
  EXPECT_EQ(calls(fakes().plain), 0);

  // Recording: the flag wins over the variable.
  set_env(api().key_var, kSecret);
  ASSERT_EQ(ask({"--model", api().model, "--mode", "use", "Hi env mode"}).exit_code, 0);
  EXPECT_EQ(calls(fakes().plain), 1);

  set_env(api().key_var, std::nullopt);
  const CliResult replay = ask({"--model", api().model, "-v", "Hi env mode"});
  EXPECT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_TRUE(replay.err.starts_with("HIT ")) << replay.err;
  EXPECT_EQ(calls(fakes().plain), 1);

  set_env("LLM_CACHE_MODE", "sometimes");
  const CliResult bad = ask({"--model", api().model, "Hi env mode"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("LLM_CACHE_MODE"), std::string::npos) << bad.err;
}

TEST_P(CliAskTest, StandardInputLosesOneTrailingNewlineSoItHitsTheArgument) {
  // `echo "Hello" | llm-caching ask -` asks what `llm-caching ask "Hello"` asks.
  const CliResult piped = ask({"--model", api().model, "-v", "-"}, "Hello\n");
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_TRUE(piped.err.starts_with("MISS ")) << piped.err;
  const CliResult argument = ask({"--model", api().model, "-v", "Hello"});
  ASSERT_EQ(argument.exit_code, 0) << argument.err;
  EXPECT_TRUE(argument.err.starts_with("HIT ")) << argument.err;
  const CliResult crlf = ask({"--model", api().model, "-v", "-"}, "Hello\r\n");
  EXPECT_TRUE(crlf.err.starts_with("HIT ")) << crlf.err;
  EXPECT_EQ(calls(fakes().plain), 1);

  // Only one: a prompt that ends in a blank line keeps it, and is another prompt.
  const CliResult two = ask({"--model", api().model, "-v", "-"}, "Hello\n\n");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_TRUE(two.err.starts_with("MISS ")) << two.err;
  EXPECT_EQ(calls(fakes().plain), 2);
}

TEST_P(CliAskTest, JsonMoneyIsDecimalTextBesideTheNanoUsdIntegers) {
  const CliResult miss = ask({"--model", api().model, "--json", "Price me"});
  ASSERT_EQ(miss.exit_code, 0) << miss.err;
  const json::object first = json::parse(miss.out).as_object();
  const std::int64_t nano = first.at("cost_nano_usd").as_int64();
  ASSERT_GT(nano, 0);
  // The fake's small answers cost millionths of a dollar, which a double prints as 5.55E-6.
  const std::string cost(first.at("cost").as_string());
  EXPECT_EQ(cost.find_first_of("eE"), std::string::npos) << cost;
  EXPECT_TRUE(cost.starts_with("0.0")) << cost;
  std::string digits = cost.substr(2);
  digits.append(9 - digits.size(), '0');
  EXPECT_EQ(std::stoll(digits), nano) << cost;
  EXPECT_EQ(first.at("avoided_cost").as_string(), "0.00");
  EXPECT_EQ(first.at("attempts").as_int64(), 1);
  EXPECT_EQ(first.at("stale").as_bool(), false);

  const CliResult hit = ask({"--model", api().model, "--json", "Price me"});
  ASSERT_EQ(hit.exit_code, 0) << hit.err;
  const json::object second = json::parse(hit.out).as_object();
  EXPECT_EQ(second.at("cost").as_string(), "0.00");
  EXPECT_EQ(second.at("avoided_cost").as_string(), cost);
  EXPECT_EQ(second.at("avoided_cost_nano_usd").as_int64(), nano);
  EXPECT_EQ(second.at("attempts").as_int64(), 0);

  // cache get prints the stored entry's cost the same way.
  const std::string get = shell_quote(LLMC_CLI_PATH) + " --cache-url " +
                          shell_quote("sqlite://" + dir_.file("cache.db")) + " cache get " +
                          shell_quote(std::string(first.at("cache_key").as_string()));
  const llmc_test::ShellResult entry = llmc_test::run_shell(get);
  ASSERT_EQ(entry.exit_code, 0) << entry.output;
  const json::object stored = json::parse(entry.output).as_object();
  EXPECT_EQ(stored.at("cost_usd").as_string(), cost);
  EXPECT_EQ(stored.at("cost_nano_usd").as_int64(), nano);
}

INSTANTIATE_TEST_SUITE_P(Wire, CliAskTest, ::testing::Values(kOpenAi, kAnthropic, kGemini),
                         [](const auto& info) { return std::string(info.param.name); });

class CliAskUsageTest : public CliAskTest {};

TEST_P(CliAskUsageTest, HelpShowsAnExample) {
  const CliResult r = ask({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("llm-caching ask -v --model openai:gpt-4o-mini"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("--ca-file"), std::string::npos);
  EXPECT_NE(r.out.find("replay_only"), std::string::npos);
}

TEST_P(CliAskUsageTest, BadArgumentsAreConfigurationErrors) {
  CliResult r = ask({"--model", api().model, "--ttl", "soon", "Hi"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--ttl 'soon'"), std::string::npos) << r.err;
  r = ask({"--model", api().model, "--mode", "sometimes", "Hi"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = ask({"--model", "gpt-4o-mini", "Hi"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("provider:model"), std::string::npos) << r.err;
  r = ask({"--model", api().model, "--price", "cheap", "Hi"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(calls(fakes().plain), 0);
}

TEST_P(CliAskUsageTest, TtlAndLocalHostWithoutKey) {
  // ollama: a local OpenAI-compatible server; an unpriced model costs 0.
  set_env("OLLAMA_BASE_URL", fakes().plain.base_url() + "/v1");
  set_env("OLLAMA_API_KEY", "local");  // the fake insists on a key; Ollama itself needs none
  const CliResult r = ask({"--model", "ollama:llama3.2:1b", "--ttl", "1h30m", "--json", "Hi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json::value result = json::parse(r.out);
  EXPECT_EQ(result.at("cost_nano_usd").as_int64(), 0);
  EXPECT_TRUE(result.at("output").as_string().starts_with("echo: Hi"));
}

TEST_P(CliAskUsageTest, APriceFileInEitherFormatPricesAModelTheTableLacks) {
  const CliResult unpriced = ask({"--model", "openai:house-model-ask", "Hi"});
  EXPECT_EQ(unpriced.exit_code, 2) << unpriced.err;
  EXPECT_NE(unpriced.err.find("--prices FILE"), std::string::npos) << unpriced.err;

  const std::string ours = dir_.file("prices.json"), litellm = dir_.file("litellm.json");
  std::ofstream(ours) << R"({"format": 1, "models": {"house-model-ask": {"input": 1000,
      "output": 2000, "cache_write": 1000, "cache_read": 1000}}})";
  std::ofstream(litellm) << R"({"house-model-litellm": {"input_cost_per_token": 0.001,
      "output_cost_per_token": 0.002, "litellm_provider": "openai"}})";
  for (const auto& [model, file] : {std::pair{"openai:house-model-ask", ours},
                                    std::pair{"openai:house-model-litellm", litellm}}) {
    const CliResult r = ask({"--model", model, "--prices", file, "--json", "Hi"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_GT(json::parse(r.out).at("cost_nano_usd").as_int64(), 0) << r.out;
  }
  const CliResult missing = ask({"--model", api().model, "--prices", dir_.file("none.json"), "Hi"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("--prices " + dir_.file("none.json")), std::string::npos)
      << missing.err;
  EXPECT_EQ(calls(fakes().plain), 2);
}

INSTANTIATE_TEST_SUITE_P(Cli, CliAskUsageTest, ::testing::Values(kOpenAi),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace

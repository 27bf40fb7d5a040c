// parse_usage against parse_response: the same usage and the same errors on every body, and the
// one-pass scan (detail::scan_usage) answers for every sound answer instead of handing it on.
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"
#include "providers/codec_detail.hpp"

#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

using namespace llm_caching;
using namespace llm_caching::providers;

namespace {

constexpr std::array<Provider, 3> kProviders = {Provider::openai, Provider::anthropic,
                                                Provider::gemini};

std::vector<std::string> json_fixtures() {
  std::vector<std::string> bodies;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(LLMC_TEST_DATA_DIR) + "/providers")) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    bodies.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return bodies;
}

struct Outcome {
  bool ok = false;
  Usage usage;
  std::string what;
  std::string error_type;
};

template <class F>
Outcome outcome_of(F&& f) {
  try {
    return {true, f(), "", ""};
  } catch (const ProviderError& e) {
    return {false, {}, e.what(), e.error_type()};
  }
}

/// parse_usage and parse_response agree on `body`; and when the scan answers, it answers what
/// parse_response does (it never accepts a body parse_response rejects).
void expect_agreement(Provider provider, std::string_view body) {
  const Outcome full = outcome_of([&] { return parse_response(provider, body, false).usage; });
  const Outcome fast = outcome_of([&] { return parse_usage(provider, body); });
  ASSERT_EQ(fast.ok, full.ok) << to_string(provider) << ": " << body;
  EXPECT_EQ(fast.usage, full.usage) << to_string(provider) << ": " << body;
  EXPECT_EQ(fast.what, full.what) << to_string(provider) << ": " << body;
  EXPECT_EQ(fast.error_type, full.error_type) << to_string(provider) << ": " << body;
  if (const auto scanned = detail::scan_usage(provider, body)) {
    ASSERT_TRUE(full.ok) << "the scan accepted what parse_response rejects: " << body;
    EXPECT_EQ(*scanned, full.usage) << body;
  }
}

/// Sound answers: the scan itself answers (no hand-over), with parse_response's usage.
void expect_scanned(Provider provider, std::string_view body, const Usage& expected) {
  const auto scanned = detail::scan_usage(provider, body);
  ASSERT_TRUE(scanned.has_value()) << to_string(provider) << ": " << body;
  EXPECT_EQ(*scanned, expected) << body;
  EXPECT_EQ(*scanned, parse_response(provider, body, false).usage) << body;
}

Usage usage_of(std::int64_t input, std::int64_t output, std::int64_t cache_write,
               std::int64_t cache_read) {
  return Usage{.input_tokens = input,
               .output_tokens = output,
               .cache_write_tokens = cache_write,
               .cache_read_tokens = cache_read,
               .requests = 1};
}

}  // namespace

TEST(UsageScan, EveryFixtureAndEveryPrefixOfItAgreeForEveryProvider) {
  for (const std::string& body : json_fixtures()) {
    for (const Provider provider : kProviders) {
      for (std::size_t n = 0; n <= body.size(); ++n) {
        expect_agreement(provider, std::string_view(body).substr(0, n));
      }
    }
  }
}

TEST(UsageScan, TheScanAnswersForEverySoundFixtureOfItsProvider) {
  const std::string dir = std::string(LLMC_TEST_DATA_DIR) + "/providers/";
  const auto read = [&](const std::string& name) {
    std::ifstream in(dir + name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  int scanned = 0;
  for (const auto& [provider, names] : std::vector<std::pair<Provider, std::vector<std::string>>>{
           {Provider::openai,
            {"openai_response.json", "openai_response_reasoning.json",
             "openai_response_refusal.json", "openai_response_structured.json",
             "openai_response_tool_calls.json"}},
           {Provider::anthropic,
            {"anthropic_response.json", "anthropic_response_thinking.json",
             "anthropic_response_tool.json"}},
           {Provider::gemini,
            {"gemini_response.json", "gemini_response_function_call.json",
             "gemini_response_structured.json"}}}) {
    for (const std::string& name : names) {
      const std::string body = read(name);
      SCOPED_TRACE(name);
      expect_scanned(provider, body, parse_response(provider, body, false).usage);
      ++scanned;
    }
  }
  EXPECT_EQ(scanned, 11);
}

TEST(UsageScan, OpenAiCountsIncludingCachedAndDeepSeekTokens) {
  expect_scanned(Provider::openai,
                 R"({"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":10,)"
                 R"("completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4}}})",
                 usage_of(6, 5, 0, 4));
  expect_scanned(Provider::openai,
                 R"({"usage":{"prompt_tokens":10,"completion_tokens":5,)"
                 R"("prompt_cache_hit_tokens":7},"choices":[{"message":{}}]})",
                 usage_of(3, 5, 0, 7));
  // Escaped keys are compared as text: "us\u0061ge" is "usage".
  expect_scanned(Provider::openai,
                 R"({"choices":[{"mess\u0061ge":{}}],"us\u0061ge":{"prompt_tokens":2}})",
                 usage_of(2, 0, 0, 0));
  // Counts of any JSON number type, as find_count reads them; a null error is no error.
  expect_scanned(Provider::openai,
                 R"({"error":null,"choices":[{"message":{}},7],"usage":{"prompt_tokens":12.9,)"
                 R"("completion_tokens":-3,"x":[1,{"y":[]}],"prompt_tokens_details":null}})",
                 usage_of(12, 0, 0, 0));
  expect_scanned(Provider::openai,
                 R"({"choices":[{"message":{}}],"usage":{"prompt_tokens":18446744073709551615,)"
                 R"("completion_tokens":1e300}})",
                 usage_of(INT64_MAX, 0, 0, 0));
  // No usage, or a usage that is not an object: zero counts, one request.
  expect_scanned(Provider::openai, R"({"choices":[{"message":{}}]})", usage_of(0, 0, 0, 0));
  expect_scanned(Provider::openai, R"({"choices":[{"message":{}}],"usage":[{"prompt_tokens":1}]})",
                 usage_of(0, 0, 0, 0));
}

TEST(UsageScan, AnthropicAndGeminiCounts) {
  expect_scanned(Provider::anthropic,
                 R"({"type":"message","content":[],"usage":{"input_tokens":3,"output_tokens":4,)"
                 R"("cache_creation_input_tokens":5,"cache_read_input_tokens":6}})",
                 usage_of(3, 4, 5, 6));
  expect_scanned(Provider::gemini,
                 R"({"candidates":[{"content":{"parts":[{"text":"x"}]}}],"usageMetadata":)"
                 R"({"promptTokenCount":10,"cachedContentTokenCount":4,)"
                 R"("toolUsePromptTokenCount":2,"candidatesTokenCount":5,"thoughtsTokenCount":3}})",
                 usage_of(8, 8, 0, 4));
}

TEST(UsageScan, BodiesTheScanCannotVouchForGoToParseResponseAndFailAsThere) {
  const std::vector<std::pair<Provider, std::string>> cases = {
      {Provider::openai, ""},
      {Provider::openai, "   "},
      {Provider::openai, "not json"},
      {Provider::openai, "[{}]"},
      {Provider::openai, R"("a string")"},
      {Provider::openai, R"({"choices":[{"message":{}}]} trailing)"},
      {Provider::openai, "{\"choices\":[{\"message\":{}}]}  \n"},
      {Provider::openai, R"({"choices":[]})"},
      {Provider::openai, R"({"choices":[1,{"message":{}}]})"},
      {Provider::openai, R"({"choices":{"message":{}}})"},
      {Provider::openai, R"({"choices":[{"message":"text"}]})"},
      {Provider::openai, R"({"choices":[{"delta":{}}]})"},
      // A "message" at the same depth, but not in the first choice.
      {Provider::openai, R"({"choices":[{"delta":{}}],"other":{"x":{"message":{}}}})"},
      {Provider::openai, R"({"choices":[{"delta":{}},{"message":{}}]})"},
      {Provider::openai, R"({"choices":[{"message":{}}],"error":{"message":"boom"}})"},
      {Provider::openai, R"({"choices":[{"message":{}}],"error":"x"})"},
      // Duplicates: parse_response's reading of them decides, not the scan's.
      {Provider::openai,
       R"({"choices":[{"message":{}}],"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}})"},
      {Provider::openai, R"({"choices":[{"message":{}}],"choices":[]})"},
      {Provider::openai, R"({"choices":[{"message":{},"message":3}]})"},
      {Provider::openai, R"({"error":null,"error":{"message":"x"},"choices":[{"message":{}}]})"},
      {Provider::anthropic, R"({"type":"error","error":{"type":"overloaded_error"}})"},
      {Provider::anthropic, R"({"type":"err\u006fr","content":[]})"},
      {Provider::anthropic, R"({"type":"message","content":[],"error":null})"},
      {Provider::anthropic, R"({"type":"message","content":{}})"},
      {Provider::anthropic, R"({"type":"message"})"},
      {Provider::anthropic, R"({"type":7,"content":[]})"},
      {Provider::anthropic, R"({"type":"message","type":"error","content":[]})"},
      {Provider::gemini, R"({"candidates":[],"promptFeedback":{"blockReason":"SAFETY"}})"},
      {Provider::gemini, R"({"candidates":[]})"},
      {Provider::gemini, R"({"candidates":["x"]})"},
      {Provider::gemini, R"({"candidates":[{}],"error":{"status":"INTERNAL"}})"},
  };
  for (const auto& [provider, body] : cases) expect_agreement(provider, body);
  // The sound ones among them are still scanned.
  EXPECT_TRUE(detail::scan_usage(Provider::openai, "{\"choices\":[{\"message\":{}}]}  \n"));
  EXPECT_TRUE(detail::scan_usage(Provider::openai, R"({"choices":[{"message":{}}],"error":null})"));
  EXPECT_TRUE(detail::scan_usage(Provider::anthropic, R"({"type":7,"content":[]})"));
}

TEST(UsageScan, DepthLimitIsParseResponses) {
  const auto nested = [](int depth) {
    return R"({"choices":[{"message":{}}],"deep":)" + std::string(depth, '[') +
           std::string(depth, ']') + "}";
  };
  expect_agreement(Provider::openai, nested(200));
  EXPECT_TRUE(detail::scan_usage(Provider::openai, nested(200)));
  expect_agreement(Provider::openai, nested(300));
  EXPECT_FALSE(detail::scan_usage(Provider::openai, nested(300)));
}

TEST(UsageScan, LongEscapedStringsAndKeysThatArriveInPieces) {
  // Escaped strings longer than the parser's own buffer reach the handler in parts.
  std::string long_escaped;
  for (int i = 0; i < 6000; ++i) long_escaped += "\\n\\u0061";
  const std::string openai = R"({"choices":[{"message":{"content":")" + long_escaped + R"("}}],")" +
                             long_escaped + R"(":1,"usage":{")" + long_escaped +
                             R"(":2,"prompt_tokens":9}})";
  expect_scanned(Provider::openai, openai, usage_of(9, 0, 0, 0));
  const std::string anthropic =
      R"({"type":")" + long_escaped + R"(","content":[],)" + R"("usage":{"input_tokens":4}})";
  expect_scanned(Provider::anthropic, anthropic, usage_of(4, 0, 0, 0));
}

TEST(UsageScan, RandomlyDamagedAnswersAgree) {
  // Bytes that change a JSON document's shape, put in, taken out and swapped at random places.
  static constexpr std::string_view kBytes = "{}[],:\"\\ 0123456789.eE-+tfnul";
  std::vector<std::string> seeds = json_fixtures();
  seeds.push_back(R"({"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":10,)"
                  R"("completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4}},)"
                  R"("error":null,"type":"message","content":[],"candidates":[{}],)"
                  R"("usageMetadata":{"promptTokenCount":3}})");
  std::mt19937 random(20261126);
  int damaged = 0;
  for (const std::string& seed : seeds) {
    for (int round = 0; round < 600; ++round) {
      std::string body = seed;
      const int edits = 1 + static_cast<int>(random() % 3);
      for (int e = 0; e < edits && !body.empty(); ++e) {
        const std::size_t at = random() % body.size();
        const char byte = kBytes[random() % kBytes.size()];
        switch (random() % 3) {
          case 0:
            body[at] = byte;
            break;
          case 1:
            body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), byte);
            break;
          default:
            body.erase(at, 1 + random() % 4);
            break;
        }
      }
      for (const Provider provider : kProviders) expect_agreement(provider, body);
      ++damaged;
    }
  }
  EXPECT_GT(damaged, 6000);
}

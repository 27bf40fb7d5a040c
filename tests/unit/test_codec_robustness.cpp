// Every prefix of every fixture, fed to every codec entry point of every provider, gives a result
// or a typed error: never a crash, never another exception type.
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

using namespace llm_caching;
using namespace llm_caching::providers;

namespace {

std::vector<std::string> all_fixtures() {
  std::vector<std::string> bodies;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(LLMC_TEST_DATA_DIR) + "/providers")) {
    std::ifstream in(entry.path(), std::ios::binary);
    bodies.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return bodies;
}

template <class F>
bool returns_or_throws_provider_error(F&& f) {
  try {
    f();
    return true;
  } catch (const ProviderError&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

TEST(CodecRobustness, EveryPrefixOfEveryFixtureGivesAResultOrAProviderError) {
  const auto bodies = all_fixtures();
  ASSERT_GE(bodies.size(), 20u);
  for (Provider p : {Provider::openai, Provider::anthropic, Provider::gemini}) {
    for (const std::string& body : bodies) {
      for (std::size_t n = 0; n <= body.size(); n += 3) {
        const std::string_view prefix(body.data(), n);
        ASSERT_TRUE(returns_or_throws_provider_error([&] { parse_response(p, prefix, false); }));
        ASSERT_TRUE(returns_or_throws_provider_error([&] { parse_response(p, prefix, true); }));
        ASSERT_TRUE(returns_or_throws_provider_error([&] { sse_to_response(p, prefix); }));
        ASSERT_TRUE(returns_or_throws_provider_error([&] { response_to_sse(p, prefix); }));
        const ProviderErrorInfo info = parse_error_body(p, 500, prefix);
        ASSERT_FALSE(info.type.empty());
        ASSERT_LE(info.message.size(), 200u);
      }
    }
  }
}

TEST(CodecRobustness, WrongTypesInPlaceOfFieldsAreProviderErrorsOrIgnored) {
  for (Provider p : {Provider::openai, Provider::anthropic, Provider::gemini}) {
    for (
        std::string_view body :
        {R"({"choices":[{"message":{"content":7,"tool_calls":"x"},"finish_reason":3}],"usage":[]})",
         R"({"content":[{"type":"text","text":null},5],"usage":{"input_tokens":"9"}})",
         R"({"candidates":[{"content":{"parts":"x"}}],"usageMetadata":{"promptTokenCount":-4}})",
         R"({"choices":null,"content":null,"candidates":null})"}) {
      EXPECT_TRUE(returns_or_throws_provider_error([&] { parse_response(p, body, false); }))
          << body;
      EXPECT_TRUE(returns_or_throws_provider_error([&] { response_to_sse(p, body); })) << body;
    }
  }
  // Negative or non-numeric counts never produce negative usage.
  const Usage u = parse_response(Provider::gemini,
                                 R"({"candidates":[{"content":{"parts":[{"text":"x"}]}}],
                                     "usageMetadata":{"promptTokenCount":-4,
                                                      "cachedContentTokenCount":9}})",
                                 false)
                      .usage;
  EXPECT_EQ(u.input_tokens, 0);
  EXPECT_EQ(u.cache_read_tokens, 0);
}

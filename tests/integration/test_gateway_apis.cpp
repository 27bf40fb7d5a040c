// `llm-caching serve` in front of the fake provider on the calls beyond chat: OpenAI's Responses
// API (plain and streamed, MISS then an identical HIT), legacy completions, moderations,
// Anthropic's messages/count_tokens and Gemini's countTokens; their costs, their keys, and the
// requests that are never cached (background responses).
#include <gtest/gtest.h>

#include "gateway/controls.hpp"
#include "integration/gateway_harness.hpp"
#include "llm_caching/costs.hpp"
#include "providers/codec.hpp"

namespace {

using namespace gateway_test;
using llm_caching::Api;
using llm_caching::Provider;
using llmc_test::FakeProvider;

const std::string kOpenAiAuth = "-H 'Authorization: Bearer sk-apis-test' ";
const std::string kAnthropicAuth =
    "-H 'x-api-key: sk-ant-apis-test' -H 'anthropic-version: 2023-06-01' ";
const std::string kGeminiAuth = "-H 'x-goog-api-key: AIza-apis-test' ";

class GatewayApis : public ::testing::Test {
 protected:
  FakeProvider fake;
  GatewayProcess gateway{fake};

  CurlResult post_json(const std::string& path, const std::string& body,
                       const std::string& auth = kOpenAiAuth) {
    return curl(auth + "-N -H 'content-type: application/json' --data-binary " + quoted(body) +
                " " + gateway.base_url() + path);
  }
};

std::string responses_body(const std::string& text, bool stream, const std::string& extra = {}) {
  return R"({"model":"gpt-4o-mini","input":)" + json::serialize(json::value(text)) +
         R"(,"stream":)" + (stream ? "true" : "false") + extra + "}";
}

/// What the gateway should bill for an answer: the usage block priced from the default table.
std::string expected_cost(Api api, const std::string& answer) {
  const auto* price = llm_caching::CostTable::defaults().find("gpt-4o-mini");
  EXPECT_NE(price, nullptr);
  const llm_caching::Usage usage =
      llm_caching::providers::parse_usage(Provider::openai, api, answer);
  return llm_caching::gateway::format_usd(llm_caching::cost_nano_usd(*price, usage));
}

TEST_F(GatewayApis, ResponsesPlainMissThenIdenticalHitPricedFromItsUsage) {
  const std::string body = responses_body("hello responses cache-me reason-me", false);
  const CurlResult first = post_json("/v1/responses", body);
  const CurlResult second = post_json("/v1/responses", body);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.headers.at("x-llm-cache"), "MISS");
  EXPECT_EQ(second.headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(upstream_calls(fake), 1);
  const json::value answer = json::parse(first.body);
  EXPECT_EQ(answer.at("object").as_string(), "response");
  const std::string text(answer.at("output").at(0).at("content").at(0).at("text").as_string());
  EXPECT_EQ(text.rfind("echo: hello responses", 0), 0u) << text;
  // The fake reported cached input and reasoning tokens: the cost is the usage block's.
  EXPECT_GT(answer.at("usage").at("input_tokens_details").at("cached_tokens").as_int64(), 0);
  EXPECT_EQ(answer.at("usage").at("output_tokens_details").at("reasoning_tokens").as_int64(), 8);
  EXPECT_EQ(first.headers.at("x-llm-cost-usd"), expected_cost(Api::responses, first.body));
  EXPECT_NE(first.headers.at("x-llm-cost-usd"), "0");
  EXPECT_EQ(second.headers.at("x-llm-avoided-usd"), first.headers.at("x-llm-cost-usd"));
}

TEST_F(GatewayApis, ResponsesStreamedMissThenByteIdenticalHit) {
  const std::string body = responses_body("hello streamed responses", true);
  const CurlResult first = post_json("/v1/responses", body);
  const CurlResult second = post_json("/v1/responses", body);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.headers.at("content-type"), "text/event-stream");
  EXPECT_EQ(first.headers.at("x-llm-cache"), "MISS");
  EXPECT_EQ(second.headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(upstream_calls(fake), 1);
  EXPECT_NE(first.body.find("event: response.output_text.delta"), std::string::npos);
  EXPECT_NE(first.body.find("event: response.completed"), std::string::npos);
  const std::string assembled =
      llm_caching::providers::sse_to_response(Provider::openai, Api::responses, first.body);
  EXPECT_EQ(second.headers.at("x-llm-avoided-usd"), expected_cost(Api::responses, assembled));

  // The same request without streaming is served from the streamed entry: the completed
  // response the stream ended with.
  const CurlResult plain =
      post_json("/v1/responses", responses_body("hello streamed responses", false));
  EXPECT_EQ(plain.headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(json::parse(plain.body), json::parse(assembled));
  EXPECT_EQ(upstream_calls(fake), 1);
}

TEST_F(GatewayApis, ResponsesStreamFromAPlainEntryIsTheTypedStreamOfThatAnswer) {
  const CurlResult plain = post_json("/v1/responses", responses_body("plain first", false));
  const CurlResult streamed = post_json("/v1/responses", responses_body("plain first", true));
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_EQ(streamed.headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(streamed.headers.at("content-type"), "text/event-stream");
  EXPECT_EQ(json::parse(llm_caching::providers::sse_to_response(Provider::openai, Api::responses,
                                                                streamed.body)),
            json::parse(plain.body));
  EXPECT_EQ(upstream_calls(fake), 1);
}

TEST_F(GatewayApis, ResponsesKeyedByPreviousResponseIdAndStoreAndBackgroundBypasses) {
  const std::string chained = R"(,"previous_response_id":"resp_a")";
  EXPECT_EQ(post_json("/v1/responses", responses_body("turn two", false, chained))
                .headers.at("x-llm-cache"),
            "MISS");
  EXPECT_EQ(post_json("/v1/responses",
                      responses_body("turn two", false, R"(,"previous_response_id":"resp_b")"))
                .headers.at("x-llm-cache"),
            "MISS");
  EXPECT_EQ(
      post_json("/v1/responses", responses_body("turn two", false, chained + R"(,"store":false)"))
          .headers.at("x-llm-cache"),
      "MISS");
  EXPECT_EQ(post_json("/v1/responses", responses_body("turn two", false, chained))
                .headers.at("x-llm-cache"),
            "HIT");
  EXPECT_EQ(upstream_calls(fake), 3);
  const std::string background = responses_body("queued", false, R"(,"background":true)");
  EXPECT_EQ(post_json("/v1/responses", background).headers.at("x-llm-cache"), "BYPASS");
  EXPECT_EQ(post_json("/v1/responses", background).headers.at("x-llm-cache"), "BYPASS");
  EXPECT_EQ(upstream_calls(fake), 5);
}

TEST_F(GatewayApis, ResponsesBadInputIsAnOpenAiError) {
  const CurlResult no_model = post_json("/v1/responses", R"({"input":"hi"})");
  EXPECT_EQ(no_model.status, 400);
  EXPECT_NE(json::parse(no_model.body).at("error").at("message").as_string().find("model"),
            std::string::npos);
  const CurlResult get = curl(kOpenAiAuth + gateway.base_url() + "/v1/responses");
  EXPECT_EQ(get.status, 405);
  EXPECT_EQ(upstream_calls(fake), 0);
}

TEST_F(GatewayApis, LegacyCompletionsPlainAndStreamed) {
  const std::string plain = R"({"model":"gpt-3.5-turbo-instruct","prompt":"say hi"})";
  const CurlResult first = post_json("/v1/completions", plain);
  const CurlResult second = post_json("/v1/completions", plain);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(second.headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(
      json::parse(first.body).at("choices").at(0).at("text").as_string().subview().substr(0, 12),
      "echo: say hi");
  const std::string stream =
      R"({"model":"gpt-3.5-turbo-instruct","prompt":"stream hi","stream":true})";
  const CurlResult live = post_json("/v1/completions", stream);
  const CurlResult replay = post_json("/v1/completions", stream);
  EXPECT_EQ(live.headers.at("x-llm-cache"), "MISS");
  EXPECT_EQ(replay.headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(replay.body, live.body);
  EXPECT_NE(live.body.find("data: [DONE]"), std::string::npos);
  // The gateway asked for the usage chunk, so the streamed miss was priced.
  EXPECT_NE(replay.headers.at("x-llm-avoided-usd"), "0");
  EXPECT_EQ(upstream_calls(fake), 2);
}

TEST_F(GatewayApis, ModerationsWithoutAModelAreCachedAndFree) {
  const std::string body = R"({"input":["flag-me now","fine"]})";
  const CurlResult first = post_json("/v1/moderations", body);
  const CurlResult second = post_json("/v1/moderations", body);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.headers.at("x-llm-cache"), "MISS");
  EXPECT_EQ(second.headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(json::parse(first.body).at("results").as_array().size(), 2u);
  EXPECT_EQ(first.headers.at("x-llm-cost-usd"), "0");
  EXPECT_EQ(upstream_calls(fake), 1);
}

TEST_F(GatewayApis, AnthropicAndGeminiTokenCountsAreCachedApartFromTheirChats) {
  const std::string messages =
      R"({"model":"claude-3-5-haiku-latest","messages":[{"role":"user","content":"count me"}]})";
  const CurlResult first = post_json("/v1/messages/count_tokens", messages, kAnthropicAuth);
  const CurlResult second = post_json("/v1/messages/count_tokens", messages, kAnthropicAuth);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(second.headers.at("x-llm-cache"), "HIT");
  EXPECT_GT(json::parse(first.body).at("input_tokens").as_int64(), 0);
  EXPECT_EQ(first.headers.at("x-llm-cost-usd"), "0");

  const std::string contents = gemini_body("count me");
  const std::string count_path = "/v1beta/models/gemini-2.0-flash:countTokens";
  const CurlResult counted = post_json(count_path, contents, kGeminiAuth);
  const CurlResult recounted = post_json(count_path, contents, kGeminiAuth);
  ASSERT_EQ(counted.status, 200) << counted.body;
  EXPECT_EQ(recounted.headers.at("x-llm-cache"), "HIT");
  EXPECT_GT(json::parse(counted.body).at("totalTokens").as_int64(), 0);
  // generateContent takes the same body: a different key, a different answer.
  const CurlResult generated =
      post_json("/v1beta/models/gemini-2.0-flash:generateContent", contents, kGeminiAuth);
  EXPECT_EQ(generated.headers.at("x-llm-cache"), "MISS");
  EXPECT_NE(generated.headers.at("x-llm-cache-key"), counted.headers.at("x-llm-cache-key"));
  EXPECT_TRUE(json::parse(generated.body).as_object().contains("candidates"));
  EXPECT_EQ(upstream_calls(fake), 3);
}

}  // namespace

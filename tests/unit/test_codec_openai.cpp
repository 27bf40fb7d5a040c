#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"
#include "support/codec_fixtures.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <fstream>
#include <iterator>

namespace json = boost::json;
using namespace llm_caching;
using namespace llm_caching::providers;

namespace {

using llmc_test::fixture;

ProviderError parse_error(std::string_view body, bool structured = false) {
  try {
    parse_response(Provider::openai, body, structured);
  } catch (const ProviderError& e) {
    return e;
  }
  ADD_FAILURE() << "no ProviderError for: " << body;
  return ProviderError("none", 0, "", "");
}

ChatRequest full_request() {
  ChatRequest r;
  r.model = "gpt-4o";
  r.system_prompt = "Be brief.";
  r.messages = {{"user", "Capital of France?"}, {"assistant", "Paris."}, {"user", "And Spain?"}};
  r.settings.temperature = 0.5;
  r.settings.top_p = 0.9;
  r.settings.max_tokens = 100;
  r.settings.seed = 42;
  r.settings.stop = {"END"};
  r.output_schema = json::parse(R"({"type":"object","properties":{"city":{"type":"string"}},
                                    "required":["city"],"additionalProperties":false})")
                        .as_object();
  r.output_schema_name = "city_answer";
  return r;
}

}  // namespace

TEST(CodecOpenAI, MinimalRequestHasOnlyModelAndMessages) {
  ChatRequest r;
  r.model = "gpt-4o-mini";
  r.messages = {{"user", "hi"}};
  EXPECT_EQ(build_request(Provider::openai, r),
            json::parse(R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})"));
}

TEST(CodecOpenAI, FullRequestCarriesSystemHistorySettingsAndSchema) {
  const json::object expected = json::parse(R"({
    "model": "gpt-4o",
    "messages": [{"role":"system","content":"Be brief."},
                 {"role":"user","content":"Capital of France?"},
                 {"role":"assistant","content":"Paris."},
                 {"role":"user","content":"And Spain?"}],
    "temperature": 0.5, "top_p": 0.9, "max_tokens": 100, "seed": 42, "stop": ["END"],
    "response_format": {"type": "json_schema", "json_schema": {"name": "city_answer",
      "schema": {"type":"object","properties":{"city":{"type":"string"}},"required":["city"],
                 "additionalProperties":false}, "strict": true}}})")
                                    .as_object();
  EXPECT_EQ(build_request(Provider::openai, full_request()), expected);
}

TEST(CodecOpenAI, ExtraSettingsAreMergedLastAndWin) {
  ChatRequest r = full_request();
  r.settings.extra = {{"max_tokens", 5}, {"reasoning_effort", "low"}};
  const json::object body = build_request(Provider::openai, r);
  EXPECT_EQ(body.at("max_tokens"), json::value(5));
  EXPECT_EQ(body.at("reasoning_effort"), json::value("low"));
}

TEST(CodecOpenAI, BadRoleOrSchemaNameIsAConfigurationError) {
  ChatRequest r;
  r.model = "gpt-4o";
  r.messages = {{"tool", "x"}};
  EXPECT_THROW(build_request(Provider::openai, r), ConfigurationError);
  r = full_request();
  r.output_schema_name = "has space";
  EXPECT_THROW(build_request(Provider::openai, r), ConfigurationError);
}

TEST(CodecOpenAI, RequestPathIsChatCompletions) {
  EXPECT_EQ(request_path(Provider::openai, "gpt-4o", false), "/v1/chat/completions");
  EXPECT_EQ(request_path(Provider::openai, "gpt-4o", true), "/v1/chat/completions");
}

TEST(CodecOpenAI, ParsesTextAndNormalisesCachedUsage) {
  const ChatResponse r = parse_response(Provider::openai, fixture("openai_response.json"), false);
  EXPECT_EQ(r.text,
            "The capital of France is Paris. It is known for the Eiffel Tower, the Louvre and its "
            "café culture.");
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.model, "gpt-4o-2024-08-06");
  EXPECT_EQ(r.id, "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG");
  EXPECT_FALSE(r.output_json.has_value());
  // prompt_tokens 1117 includes 1024 cached.
  EXPECT_EQ(r.usage, (Usage{.input_tokens = 93,
                            .output_tokens = 46,
                            .cache_write_tokens = 0,
                            .cache_read_tokens = 1024,
                            .requests = 1}));
}

TEST(CodecOpenAI, ReasoningTokensStayInOutput) {
  const Usage u =
      parse_response(Provider::openai, fixture("openai_response_reasoning.json"), false).usage;
  EXPECT_EQ(u, (Usage{.input_tokens = 2048 - 1920,
                      .output_tokens = 650,
                      .cache_read_tokens = 1920,
                      .requests = 1}));
}

TEST(CodecOpenAI, DeepSeekPromptCacheHitsAreCacheReads) {
  // DeepSeek's OpenAI-compatible usage: prompt_tokens = cache hits + cache misses.
  const json::object response{{"usage", json::object{{"prompt_tokens", 1000},
                                                     {"prompt_cache_hit_tokens", 640},
                                                     {"prompt_cache_miss_tokens", 360},
                                                     {"completion_tokens", 50}}}};
  EXPECT_EQ(
      extract_usage(Provider::openai, response),
      (Usage{.input_tokens = 360, .output_tokens = 50, .cache_read_tokens = 640, .requests = 1}));
}

TEST(CodecOpenAI, ExtractUsageWithoutUsageIsZeroWithOneRequest) {
  EXPECT_EQ(extract_usage(Provider::openai, json::object{{"id", "x"}}), (Usage{.requests = 1}));
}

TEST(CodecOpenAI, StructuredOutputIsParsedFromContent) {
  const ChatResponse r =
      parse_response(Provider::openai, fixture("openai_response_structured.json"), true);
  ASSERT_TRUE(r.output_json.has_value());
  EXPECT_EQ(r.output_json->at("city"), json::value("Paris"));
  EXPECT_EQ(r.output_json->at("population"), json::value(2102650));
}

TEST(CodecOpenAI, StructuredOutputThatIsNotJsonIsAProviderError) {
  const ProviderError e = parse_error(fixture("openai_response.json"), true);
  EXPECT_EQ(e.error_type(), "invalid_response");
  EXPECT_EQ(e.http_status(), 200);
}

TEST(CodecOpenAI, RefusalIsAnErrorForStructuredAndTheTextOtherwise) {
  const std::string body = fixture("openai_response_refusal.json");
  EXPECT_EQ(parse_error(body, true).error_type(), "refusal");
  EXPECT_EQ(parse_response(Provider::openai, body, false).text,
            "I'm sorry, I cannot assist with that request.");
}

TEST(CodecOpenAI, ToolCallsAreKeptNative) {
  const ChatResponse r =
      parse_response(Provider::openai, fixture("openai_response_tool_calls.json"), false);
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].at("id"), json::value("call_abc123"));
  EXPECT_EQ(r.tool_calls[1].at("function").at("name"), json::value("get_time"));
  EXPECT_EQ(r.finish_reason, "tool_calls");
  EXPECT_EQ(r.text, "");
}

TEST(CodecOpenAI, BadBodiesAreProviderErrorsWithShortExcerpts) {
  const std::string long_garbage(5000, 'x');
  for (std::string_view body :
       {std::string_view(""), std::string_view("not json"),
        std::string_view("{\"id\": \"x\", \"cho"), std::string_view("[1,2]"),
        std::string_view(R"({"id":"x","choices":[]})"),
        std::string_view(R"({"id":"x","choices":[{"index":0}]})"),
        std::string_view(long_garbage)}) {
    const ProviderError e = parse_error(body);
    EXPECT_EQ(e.error_type(), "invalid_response") << body;
    EXPECT_LE(e.body_excerpt().size(), 200u);
  }
}

TEST(CodecOpenAI, ErrorObjectInA200BodyCarriesTheProviderType) {
  const ProviderError e = parse_error(fixture("openai_error_rate_limit.json"));
  EXPECT_EQ(e.error_type(), "tokens");
  EXPECT_NE(std::string(e.what()).find("Rate limit reached"), std::string::npos);
}

TEST(CodecOpenAI, ErrorBodiesAreReadAndKeysRedacted) {
  const ProviderErrorInfo rate =
      parse_error_body(Provider::openai, 429, fixture("openai_error_rate_limit.json"));
  EXPECT_EQ(rate.type, "tokens");
  EXPECT_EQ(rate.code, "rate_limit_exceeded");
  EXPECT_LE(rate.message.size(), 200u);
  EXPECT_EQ(rate.message.rfind("Rate limit reached for gpt-4o", 0), 0u);
  EXPECT_FALSE(rate.retry_delay.has_value());

  const ProviderErrorInfo key =
      parse_error_body(Provider::openai, 401, fixture("openai_error_invalid_key.json"));
  EXPECT_EQ(key.type, "invalid_request_error");
  EXPECT_EQ(key.code, "invalid_api_key");
  EXPECT_EQ(key.message.find("AbCdEfGh"), std::string::npos) << key.message;
  EXPECT_NE(key.message.find("[redacted]"), std::string::npos);
}

TEST(CodecOpenAI, GarbageErrorBodyIsUnknownWithExcerpt) {
  const ProviderErrorInfo info =
      parse_error_body(Provider::openai, 502, "<html>502 Bad Gateway</html>");
  EXPECT_EQ(info.type, "unknown");
  EXPECT_EQ(info.message, "<html>502 Bad Gateway</html>");
  EXPECT_EQ(parse_error_body(Provider::openai, 500, "").message, "HTTP 500 with an empty body");
  EXPECT_EQ(parse_error_body(Provider::openai, 404, R"({"error":"model 'x' not found"})").message,
            "model 'x' not found");
}

TEST(CodecOpenAI, RecordedStreamAssemblesIntoAResponse) {
  const std::string assembled = sse_to_response(Provider::openai, fixture("openai_stream.sse"));
  const ChatResponse r = parse_response(Provider::openai, assembled, false);
  EXPECT_EQ(r.text, "Hello! How can I help you today? ☀");
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.id, "chatcmpl-B9Stream01");
  EXPECT_EQ(r.model, "gpt-4o-2024-08-06");
  EXPECT_EQ(r.usage, (Usage{.input_tokens = 1290 - 1152,
                            .output_tokens = 12,
                            .cache_read_tokens = 1152,
                            .requests = 1}));
  EXPECT_EQ(json::parse(assembled).at("system_fingerprint"), json::value("fp_fc9f1d7035"));
}

TEST(CodecOpenAI, StreamedToolCallArgumentsAreConcatenated) {
  const std::string assembled =
      sse_to_response(Provider::openai, fixture("openai_stream_tool_calls.sse"));
  const ChatResponse r = parse_response(Provider::openai, assembled, false);
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].at("id"), json::value("call_DdmO9pD3xa9XTPNJ32zg2hcA"));
  EXPECT_EQ(r.tool_calls[0].at("function").at("arguments"), json::value(R"({"location":"Paris"})"));
  EXPECT_EQ(r.finish_reason, "tool_calls");
  EXPECT_TRUE(json::parse(assembled).at("choices").at(0).at("message").at("content").is_null());
}

TEST(CodecOpenAI, ResponseToStreamAndBackKeepsTextFinishUsageAndToolCalls) {
  for (const char* name : {"openai_response.json", "openai_response_structured.json",
                           "openai_response_tool_calls.json", "openai_response_refusal.json",
                           "openai_response_reasoning.json"}) {
    const std::string original = fixture(name);
    const std::string stream = response_to_sse(Provider::openai, original);
    EXPECT_NE(stream.find("chat.completion.chunk"), std::string::npos);
    EXPECT_TRUE(stream.ends_with("data: [DONE]\n\n")) << name;
    const ChatResponse a = parse_response(Provider::openai, original, false);
    const ChatResponse b =
        parse_response(Provider::openai, sse_to_response(Provider::openai, stream), false);
    EXPECT_EQ(a.text, b.text) << name;
    EXPECT_EQ(a.finish_reason, b.finish_reason) << name;
    EXPECT_EQ(a.usage, b.usage) << name;
    EXPECT_EQ(a.tool_calls, b.tool_calls) << name;
    EXPECT_EQ(a.id, b.id) << name;
  }
}

TEST(CodecOpenAI, StreamToResponseToStreamIsStable) {
  const std::string once = sse_to_response(Provider::openai, fixture("openai_stream.sse"));
  const std::string twice =
      sse_to_response(Provider::openai, response_to_sse(Provider::openai, once));
  EXPECT_EQ(json::parse(once), json::parse(twice));
}

TEST(CodecOpenAI, TruncatedOrFailedStreamsAreProviderErrors) {
  const std::string stream = fixture("openai_stream.sse");
  const std::size_t done = stream.find("data: [DONE]");
  EXPECT_THROW(sse_to_response(Provider::openai, stream.substr(0, done)), ProviderError);
  EXPECT_THROW(sse_to_response(Provider::openai, stream.substr(0, stream.find("Hello") + 2)),
               ProviderError);
  EXPECT_THROW(sse_to_response(Provider::openai, ""), ProviderError);
  EXPECT_THROW(sse_to_response(Provider::openai, "data: {not json\n\n"), ProviderError);
  try {
    sse_to_response(
        Provider::openai,
        "data: {\"error\":{\"message\":\"server overloaded\",\"type\":\"server_error\"}}"
        "\n\n");
    ADD_FAILURE() << "in-stream error not raised";
  } catch (const ProviderError& e) {
    EXPECT_EQ(e.error_type(), "server_error");
  }
}

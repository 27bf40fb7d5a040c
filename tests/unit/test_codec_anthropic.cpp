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

using llmc_test::provider_error;

}  // namespace

TEST(CodecAnthropic, MinimalRequestGetsTheDefaultMaxTokens) {
  ChatRequest r;
  r.model = "claude-3-5-haiku-latest";
  r.messages = {{"user", "hi"}};
  EXPECT_EQ(build_request(Provider::anthropic, r), json::parse(R"({
    "model":"claude-3-5-haiku-latest","messages":[{"role":"user","content":"hi"}],
    "max_tokens":4096})"));
}

TEST(CodecAnthropic, FullRequestUsesTopLevelSystemAndForcedTool) {
  ChatRequest r;
  r.model = "claude-3-5-sonnet-20241022";
  r.system_prompt = "Be brief.";
  r.messages = {{"system", "Answer in English."},
                {"user", "Capital of France?"},
                {"user", "And of Spain?"},
                {"assistant", "Paris; Madrid."},
                {"user", "Thanks"}};
  r.settings.temperature = 0.0;
  r.settings.top_p = 0.5;
  r.settings.max_tokens = 256;
  r.settings.seed = 7;  // Anthropic has no seed: not sent
  r.settings.stop = {"\n\nHuman:", "END"};
  r.settings.extra = {{"metadata", {{"user_id", "u-1"}}}, {"top_k", 5}};
  r.output_schema =
      json::parse(R"({"type":"object","properties":{"city":{"type":"string"}}})").as_object();
  r.output_schema_name = "answer";
  EXPECT_EQ(build_request(Provider::anthropic, r), json::parse(R"({
    "model": "claude-3-5-sonnet-20241022",
    "system": "Be brief.\n\nAnswer in English.",
    "messages": [{"role":"user","content":"Capital of France?"},
                 {"role":"user","content":"And of Spain?"},
                 {"role":"assistant","content":"Paris; Madrid."},
                 {"role":"user","content":"Thanks"}],
    "max_tokens": 256, "temperature": 0.0, "top_p": 0.5,
    "stop_sequences": ["\n\nHuman:", "END"],
    "tools": [{"name":"answer","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
    "tool_choice": {"type":"tool","name":"answer"},
    "metadata": {"user_id":"u-1"}, "top_k": 5})"));
}

TEST(CodecAnthropic, UnknownRoleIsAConfigurationError) {
  ChatRequest r;
  r.model = "claude";
  r.messages = {{"developer", "x"}};
  EXPECT_THROW(build_request(Provider::anthropic, r), ConfigurationError);
}

TEST(CodecAnthropic, RequestPathIsMessages) {
  EXPECT_EQ(request_path(Provider::anthropic, "claude", true), "/v1/messages");
}

TEST(CodecAnthropic, ParsesTextBlocksAndCacheUsage) {
  const ChatResponse r =
      parse_response(Provider::anthropic, fixture("anthropic_response.json"), false);
  EXPECT_EQ(r.text, "Paris is the capital of France. It lies on the Seine.");
  EXPECT_EQ(r.finish_reason, "end_turn");
  EXPECT_EQ(r.model, "claude-3-5-sonnet-20241022");
  EXPECT_EQ(r.id, "msg_01XFDUDYJgAACzvnptvVoYEL");
  // input_tokens excludes cache writes and reads: all three are billed apart.
  EXPECT_EQ(r.usage, (Usage{.input_tokens = 21,
                            .output_tokens = 393,
                            .cache_write_tokens = 188086,
                            .cache_read_tokens = 2048,
                            .requests = 1}));
  EXPECT_EQ(r.usage.total_input_tokens(), 21 + 188086 + 2048);
}

TEST(CodecAnthropic, StructuredOutputComesFromTheForcedToolCall) {
  const ChatResponse r =
      parse_response(Provider::anthropic, fixture("anthropic_response_tool.json"), true);
  ASSERT_TRUE(r.output_json.has_value());
  EXPECT_EQ(*r.output_json, json::parse(R"({"city":"Paris","population":2102650,
                                            "landmarks":["Eiffel Tower","Louvre"]})"));
  EXPECT_EQ(json::parse(r.text), *r.output_json);
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].at("name"), json::value("output"));
  EXPECT_EQ(r.finish_reason, "tool_use");
}

TEST(CodecAnthropic, StructuredWithoutToolUseIsAProviderError) {
  const ProviderError e = provider_error(
      [] { parse_response(Provider::anthropic, fixture("anthropic_response.json"), true); });
  EXPECT_EQ(e.error_type(), "invalid_response");
}

TEST(CodecAnthropic, BadBodiesAreProviderErrors) {
  for (std::string_view body : {"", "}{", R"({"id":"msg_1","type":"message"})",
                                R"({"id":"msg_1","content":"text"})", "null"}) {
    const ProviderError e =
        provider_error([&] { parse_response(Provider::anthropic, body, false); });
    EXPECT_EQ(e.error_type(), "invalid_response") << body;
  }
  const ProviderError overloaded = provider_error([] {
    parse_response(Provider::anthropic, fixture("anthropic_error_overloaded.json"), false);
  });
  EXPECT_EQ(overloaded.error_type(), "overloaded_error");
}

TEST(CodecAnthropic, ErrorBodiesAreRead) {
  const ProviderErrorInfo overloaded =
      parse_error_body(Provider::anthropic, 529, fixture("anthropic_error_overloaded.json"));
  EXPECT_EQ(overloaded.type, "overloaded_error");
  EXPECT_EQ(overloaded.message, "Overloaded");
  const ProviderErrorInfo rate =
      parse_error_body(Provider::anthropic, 429, fixture("anthropic_error_rate_limit.json"));
  EXPECT_EQ(rate.type, "rate_limit_error");
  EXPECT_FALSE(rate.retry_delay.has_value());
  EXPECT_EQ(parse_error_body(Provider::anthropic, 500, "{\"type\":\"error\"").type, "unknown");
}

TEST(CodecAnthropic, RecordedStreamAssemblesTextToolInputAndUsage) {
  const std::string assembled =
      sse_to_response(Provider::anthropic, fixture("anthropic_stream.sse"));
  const ChatResponse r = parse_response(Provider::anthropic, assembled, false);
  EXPECT_EQ(r.text, "Okay, let's check the weather for San Francisco, CA:");
  EXPECT_EQ(r.finish_reason, "tool_use");
  EXPECT_EQ(r.id, "msg_014p7gG3wDgGV9EUtLvnow3U");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].at("input"),
            json::parse(R"({"location":"San Francisco, CA","unit":"fahrenheit"})"));
  // Output tokens come from message_delta; the cache counts from message_start.
  EXPECT_EQ(r.usage, (Usage{.input_tokens = 472,
                            .output_tokens = 89,
                            .cache_write_tokens = 1024,
                            .cache_read_tokens = 4096,
                            .requests = 1}));
}

TEST(CodecAnthropic, ErrorEventMidStreamIsAProviderError) {
  const ProviderError e = provider_error(
      [] { sse_to_response(Provider::anthropic, fixture("anthropic_stream_error.sse")); });
  EXPECT_EQ(e.error_type(), "overloaded_error");
}

TEST(CodecAnthropic, TruncatedStreamsAreProviderErrors) {
  const std::string stream = fixture("anthropic_stream.sse");
  const std::size_t stop = stream.find("event: message_stop");
  EXPECT_THROW(sse_to_response(Provider::anthropic, stream.substr(0, stop)), ProviderError);
  EXPECT_THROW(sse_to_response(Provider::anthropic, stream.substr(0, stream.size() - 5)),
               ProviderError);
  EXPECT_THROW(sse_to_response(Provider::anthropic, ""), ProviderError);
  // A delta for a block that never started.
  EXPECT_THROW(sse_to_response(Provider::anthropic,
                               stream.substr(0, stream.find("event: content_block_start")) +
                                   "event: content_block_delta\ndata: {\"type\":"
                                   "\"content_block_delta\",\"index\":3,\"delta\":{\"type\":"
                                   "\"text_delta\",\"text\":\"x\"}}\n\n"),
               ProviderError);
}

TEST(CodecAnthropic, ResponseToStreamAndBackIsExact) {
  for (const char* name : {"anthropic_response.json", "anthropic_response_tool.json",
                           "anthropic_response_thinking.json"}) {
    const std::string original = fixture(name);
    const std::string stream = response_to_sse(Provider::anthropic, original);
    EXPECT_EQ(stream.rfind("event: message_start\n", 0), 0u) << name;
    EXPECT_TRUE(stream.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    const json::value back = json::parse(sse_to_response(Provider::anthropic, stream));
    const json::value expected = json::parse(original);
    EXPECT_EQ(back.at("content"), expected.at("content")) << name;
    EXPECT_EQ(back.at("usage"), expected.at("usage")) << name;
    EXPECT_EQ(back.at("stop_reason"), expected.at("stop_reason")) << name;
    const ChatResponse a = parse_response(Provider::anthropic, original, false);
    const ChatResponse b = parse_response(Provider::anthropic, json::serialize(back), false);
    EXPECT_EQ(a.text, b.text);
    EXPECT_EQ(a.usage, b.usage);
    EXPECT_EQ(a.finish_reason, b.finish_reason);
  }
}

TEST(CodecAnthropic, StreamToResponseToStreamIsStable) {
  const std::string once = sse_to_response(Provider::anthropic, fixture("anthropic_stream.sse"));
  const std::string twice =
      sse_to_response(Provider::anthropic, response_to_sse(Provider::anthropic, once));
  EXPECT_EQ(json::parse(once), json::parse(twice));
}

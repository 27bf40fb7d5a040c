// The further APIs' codecs (codec_apis.cpp, codec_openai_responses.cpp) and their keys: the
// Responses API's usage and typed stream both ways, legacy completions' stream, the free calls'
// usage, the paths, and the API's place in the cache key.
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"
#include "providers/sse.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace json = boost::json;
using namespace llm_caching;
using namespace llm_caching::providers;

namespace {

// A Responses API answer as OpenAI documents it: a message, then a function call.
constexpr std::string_view kResponse =
    R"({"id":"resp_1","object":"response","created_at":1741476542,"status":"completed",)"
    R"("error":null,"incomplete_details":null,"model":"o4-mini","output":[)"
    R"({"type":"message","id":"msg_1","status":"completed","role":"assistant",)"
    R"("content":[{"type":"output_text","text":"Hello there","annotations":[]}]},)"
    R"({"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{\"a\":1}",)"
    R"("status":"completed"}],"store":true,)"
    R"("usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":40},)"
    R"("output_tokens":30,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":130}})";

ProviderError error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ProviderError& e) {
    return e;
  }
  ADD_FAILURE() << "no ProviderError";
  return ProviderError("none", 0, "", "");
}

std::vector<std::string> event_types(const std::string& sse) {
  std::vector<std::string> types;
  SseParser parser;
  for (const SseEvent& event : parser.feed(sse)) {
    const json::value data = json::parse(event.data);
    EXPECT_EQ(event.event, data.at("type").as_string());  // event: line and "type" agree
    types.emplace_back(event.event);
  }
  return types;
}

TEST(CodecResponses, UsageCountsCachedInputApartAndReasoningAsOutput) {
  const Usage usage = parse_usage(Provider::openai, Api::responses, kResponse);
  EXPECT_EQ(usage.input_tokens, 60);
  EXPECT_EQ(usage.cache_read_tokens, 40);
  EXPECT_EQ(usage.output_tokens, 30);  // reasoning tokens included, billed as output
  EXPECT_EQ(usage.requests, 1);
}

TEST(CodecResponses, FailedResponsesAndGarbageAreErrors) {
  EXPECT_EQ(
      error_of([] { parse_usage(Provider::openai, Api::responses, "not json"); }).error_type(),
      "invalid_response");
  EXPECT_EQ(error_of([] {
              parse_usage(Provider::openai, Api::responses,
                          R"({"object":"response","status":"failed","output":[],)"
                          R"("error":{"code":"server_error","message":"boom"}})");
            }).error_type(),
            "server_error");
  EXPECT_EQ(error_of([] {
              parse_usage(Provider::openai, Api::responses, R"({"object":"response"})");
            }).error_type(),
            "invalid_response");
  // A chat completion is not a Responses answer.
  EXPECT_THROW(
      parse_usage(Provider::openai, Api::responses, R"({"choices":[{"message":{"content":"x"}}]})"),
      ProviderError);
}

TEST(CodecResponses, AnswerBecomesTheTypedStreamAndBackUnchanged) {
  const std::string sse = response_to_sse(Provider::openai, Api::responses, kResponse);
  const std::vector<std::string> expected = {"response.created",
                                             "response.in_progress",
                                             "response.output_item.added",
                                             "response.content_part.added",
                                             "response.output_text.delta",
                                             "response.output_text.done",
                                             "response.content_part.done",
                                             "response.output_item.done",
                                             "response.output_item.added",
                                             "response.function_call_arguments.delta",
                                             "response.function_call_arguments.done",
                                             "response.output_item.done",
                                             "response.completed"};
  EXPECT_EQ(event_types(sse), expected);
  EXPECT_EQ(sse.find("[DONE]"), std::string::npos);
  SseParser parser;
  const auto events = parser.feed(sse);
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(json::parse(events[i].data).at("sequence_number").as_int64(),
              static_cast<std::int64_t>(i));
  }
  const json::value created = json::parse(events.front().data);
  EXPECT_EQ(created.at("response").at("status").as_string(), "in_progress");
  EXPECT_TRUE(created.at("response").at("output").as_array().empty());
  EXPECT_EQ(json::parse(events[4].data).at("delta").as_string(), "Hello there");

  const std::string assembled = sse_to_response(Provider::openai, Api::responses, sse);
  EXPECT_EQ(json::parse(assembled), json::parse(kResponse));
}

TEST(CodecResponses, StreamsWithoutATerminalEventOrWithAFailureAreErrors) {
  const std::string sse = response_to_sse(Provider::openai, Api::responses, kResponse);
  const std::string truncated = sse.substr(0, sse.rfind("event: response.completed"));
  EXPECT_EQ(
      error_of([&] { sse_to_response(Provider::openai, Api::responses, truncated); }).error_type(),
      "invalid_response");
  const std::string failed =
      format_sse_event(R"({"type":"response.failed","sequence_number":1,"response":{)"
                       R"("status":"failed","output":[],"error":{"code":"server_error",)"
                       R"("message":"down"}}})",
                       "response.failed");
  EXPECT_EQ(
      error_of([&] { sse_to_response(Provider::openai, Api::responses, failed); }).error_type(),
      "server_error");
  const std::string error_event = format_sse_event(
      R"({"type":"error","code":"rate_limit_exceeded","message":"slow down"})", "error");
  EXPECT_EQ(error_of([&] {
              sse_to_response(Provider::openai, Api::responses, error_event);
            }).error_type(),
            "rate_limit_exceeded");
}

TEST(CodecCompletions, StreamAndAnswerAgree) {
  const std::string_view answer =
      R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct",)"
      R"("choices":[{"text":"Hi there","index":0,"logprobs":null,"finish_reason":"length"}],)"
      R"("usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}})";
  const Usage usage = parse_usage(Provider::openai, Api::completions, answer);
  EXPECT_EQ(usage.input_tokens, 5);
  EXPECT_EQ(usage.output_tokens, 7);
  const std::string sse = response_to_sse(Provider::openai, Api::completions, answer);
  EXPECT_NE(sse.find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(json::parse(sse_to_response(Provider::openai, Api::completions, sse)),
            json::parse(answer));
  EXPECT_THROW(
      sse_to_response(Provider::openai, Api::completions, sse.substr(0, sse.find("data: [DONE]"))),
      ProviderError);
}

TEST(CodecApis, CountingTokensAndModeratingAreFree) {
  EXPECT_EQ(parse_usage(Provider::anthropic, Api::count_tokens, R"({"input_tokens":19})"),
            (Usage{.requests = 1}));
  EXPECT_EQ(parse_usage(Provider::gemini, Api::count_tokens, R"({"totalTokens":10})"),
            (Usage{.requests = 1}));
  EXPECT_EQ(parse_usage(Provider::openai, Api::moderations, R"({"id":"m","results":[]})"),
            (Usage{.requests = 1}));
  EXPECT_EQ(error_of([] {
              parse_usage(Provider::anthropic, Api::count_tokens,
                          R"({"type":"error","error":{"type":"overloaded_error","message":"x"}})");
            }).error_type(),
            "overloaded_error");
  EXPECT_THROW(parse_usage(Provider::gemini, Api::count_tokens, R"({"other":1})"), ProviderError);
}

TEST(CodecApis, Paths) {
  EXPECT_EQ(request_path(Provider::openai, Api::responses, "gpt-4o", true), "/v1/responses");
  EXPECT_EQ(request_path(Provider::openai, Api::completions, "x", false), "/v1/completions");
  EXPECT_EQ(request_path(Provider::openai, Api::moderations, "x", false), "/v1/moderations");
  EXPECT_EQ(request_path(Provider::anthropic, Api::count_tokens, "c", false),
            "/v1/messages/count_tokens");
  EXPECT_EQ(request_path(Provider::gemini, Api::count_tokens, "models/gemini-2.0-flash", false),
            "/v1beta/models/gemini-2.0-flash:countTokens");
  EXPECT_EQ(request_path(Provider::openai, Api::chat, "x", false), "/v1/chat/completions");
  EXPECT_THROW(request_path(Provider::anthropic, Api::responses, "c", false), ConfigurationError);
}

TEST(ApiKeys, TheApiIsPartOfTheKeyAndChatKeysAreUnchanged) {
  const json::object body = json::parse(R"({"model":"m","input":"hi"})").as_object();
  const KeyDerivation chat = derive_key(Provider::openai, "m", body);
  EXPECT_EQ(derive_key(Provider::openai, Api::chat, "m", body).hex, chat.hex);
  const KeyDerivation responses = derive_key(Provider::openai, Api::responses, "m", body);
  EXPECT_NE(responses.hex, chat.hex);
  EXPECT_EQ(responses.material.substr(0, responses.material.find('\n', 15)),
            "llm-caching/v1\nopenai/responses");
  // Gemini's countTokens and generateContent take the same body.
  const json::object contents = json::parse(R"({"contents":[]})").as_object();
  EXPECT_NE(derive_key(Provider::gemini, Api::count_tokens, "g", contents).hex,
            derive_key(Provider::gemini, "g", contents).hex);
}

TEST(ApiKeys, ResponsesKeepStoreAndPreviousResponseIdButNotStreamOrMetadata) {
  auto key = [](std::string_view text) {
    return derive_key(Provider::openai, Api::responses, "m", json::parse(text).as_object()).hex;
  };
  const std::string plain = key(R"({"model":"m","input":"hi"})");
  EXPECT_EQ(key(R"({"model":"m","input":"hi","stream":true,"metadata":{"a":"b"},"user":"u"})"),
            plain);
  EXPECT_NE(key(R"({"model":"m","input":"hi","store":false})"), plain);
  EXPECT_NE(key(R"({"model":"m","input":"hi","previous_response_id":"resp_1"})"), plain);
  EXPECT_NE(key(R"({"model":"m","input":"hi","previous_response_id":"resp_2"})"),
            key(R"({"model":"m","input":"hi","previous_response_id":"resp_1"})"));
  // Chat completions still drop store, as before.
  const json::object chat_store =
      json::parse(R"({"model":"m","messages":[],"store":true})").as_object();
  const json::object chat_plain = json::parse(R"({"model":"m","messages":[]})").as_object();
  EXPECT_EQ(derive_key(Provider::openai, "m", chat_store).hex,
            derive_key(Provider::openai, "m", chat_plain).hex);
}

}  // namespace

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

json::object schema_request_body(const char* schema) {
  ChatRequest r;
  r.model = "gemini-2.0-flash";
  r.messages = {{"user", "x"}};
  r.output_schema = json::parse(schema).as_object();
  return build_request(Provider::gemini, r);
}

}  // namespace

TEST(CodecGemini, MinimalRequestHasOnlyContents) {
  ChatRequest r;
  r.model = "gemini-2.0-flash";
  r.messages = {{"user", "hi"}};
  EXPECT_EQ(build_request(Provider::gemini, r),
            json::parse(R"({"contents":[{"role":"user","parts":[{"text":"hi"}]}]})"));
}

TEST(CodecGemini, FullRequestMapsRolesSystemAndGenerationConfig) {
  ChatRequest r;
  r.model = "gemini-2.5-flash";
  r.system_prompt = "Be brief.";
  r.messages = {{"user", "Capital of France?"},
                {"assistant", "Paris."},
                {"system", "Use English."},
                {"user", "And Spain?"}};
  r.settings.temperature = 0.25;
  r.settings.top_p = 0.75;
  r.settings.max_tokens = 64;
  r.settings.seed = 3;
  r.settings.stop = {"END"};
  r.settings.extra = {{"thinkingConfig", {{"thinkingBudget", 0}}},
                      {"safetySettings", json::array{{{"category", "HARM_CATEGORY_HARASSMENT"},
                                                      {"threshold", "BLOCK_NONE"}}}},
                      {"generationConfig", {{"topK", 40}, {"temperature", 0.5}}}};
  EXPECT_EQ(build_request(Provider::gemini, r), json::parse(R"({
    "contents": [{"role":"user","parts":[{"text":"Capital of France?"}]},
                 {"role":"model","parts":[{"text":"Paris."}]},
                 {"role":"user","parts":[{"text":"And Spain?"}]}],
    "systemInstruction": {"parts":[{"text":"Be brief.\n\nUse English."}]},
    "generationConfig": {"temperature":0.5,"topP":0.75,"maxOutputTokens":64,"seed":3,
                         "stopSequences":["END"],"thinkingConfig":{"thinkingBudget":0},
                         "topK":40},
    "safetySettings": [{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}]})"));
}

TEST(CodecGemini, SchemaIsConvertedToTheOpenApiSubset) {
  const json::object body = schema_request_body(R"({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "title": "City", "additionalProperties": false,
    "properties": {
      "name": {"type": "string", "description": "city name"},
      "population": {"type": ["integer", "null"]},
      "country": {"anyOf": [{"$ref": "#/$defs/Country"}, {"type": "null"}], "default": null},
      "tags": {"type": "array", "items": {"type": "string", "const": "big"}}
    },
    "required": ["name"],
    "$defs": {"Country": {"type": "object", "additionalProperties": false,
                          "properties": {"code": {"type": "string", "enum": ["FR", "ES"]}}}}})");
  const json::value& config = body.at("generationConfig");
  EXPECT_EQ(config.at("responseMimeType"), json::value("application/json"));
  EXPECT_EQ(config.at("responseSchema"), json::parse(R"({
    "type": "OBJECT", "title": "City",
    "properties": {
      "name": {"type": "STRING", "description": "city name"},
      "population": {"type": "INTEGER", "nullable": true},
      "country": {"type": "OBJECT", "properties": {"code": {"type": "STRING", "enum": ["FR","ES"]}},
                  "propertyOrdering": ["code"], "nullable": true, "default": null},
      "tags": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["big"]}}
    },
    "required": ["name"],
    "propertyOrdering": ["name", "population", "country", "tags"]})"));
}

TEST(CodecGemini, RecursiveOrDanglingSchemaRefIsAConfigurationError) {
  EXPECT_THROW(schema_request_body(R"({"$ref":"#/$defs/Node","$defs":{"Node":{"type":"object",
                 "properties":{"next":{"$ref":"#/$defs/Node"}}}}})"),
               ConfigurationError);
  EXPECT_THROW(
      schema_request_body(R"({"type":"object","properties":{"a":{"$ref":"#/$defs/Nope"}}})"),
      ConfigurationError);
}

TEST(CodecGemini, RequestPathCarriesTheModel) {
  EXPECT_EQ(request_path(Provider::gemini, "gemini-2.0-flash", false),
            "/v1beta/models/gemini-2.0-flash:generateContent");
  EXPECT_EQ(request_path(Provider::gemini, "models/gemini-2.5-pro", true),
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse");
  EXPECT_EQ(request_path(Provider::gemini, "a/b?c", false),
            "/v1beta/models/a%2Fb%3Fc:generateContent");
}

TEST(CodecGemini, ParsesTextWithoutThoughtsAndNormalisesUsage) {
  const ChatResponse r = parse_response(Provider::gemini, fixture("gemini_response.json"), false);
  EXPECT_EQ(r.text, "The capital of France is **Paris**.");
  EXPECT_EQ(r.finish_reason, "STOP");
  EXPECT_EQ(r.model, "gemini-2.5-flash");
  EXPECT_EQ(r.id, "mBYkaPXvBoSgz7IPpaGTkQ4");
  // promptTokenCount 5120 includes 4096 cached; output = 9 candidates + 321 thoughts.
  EXPECT_EQ(r.usage, (Usage{.input_tokens = 1024,
                            .output_tokens = 330,
                            .cache_write_tokens = 0,
                            .cache_read_tokens = 4096,
                            .requests = 1}));
}

TEST(CodecGemini, StructuredOutputIsParsedFromText) {
  const ChatResponse r =
      parse_response(Provider::gemini, fixture("gemini_response_structured.json"), true);
  ASSERT_TRUE(r.output_json.has_value());
  EXPECT_EQ(r.output_json->at("landmarks").at(1), json::value("Louvre"));
  EXPECT_EQ(r.usage, (Usage{.input_tokens = 34, .output_tokens = 27, .requests = 1}));
  EXPECT_EQ(provider_error([] {
              parse_response(Provider::gemini, fixture("gemini_response.json"), true);
            }).error_type(),
            "invalid_response");
}

TEST(CodecGemini, FunctionCallsAreToolCalls) {
  const ChatResponse r =
      parse_response(Provider::gemini, fixture("gemini_response_function_call.json"), false);
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].at("functionCall").at("args").at("location"), json::value("Paris"));
  EXPECT_EQ(r.text, "");
}

TEST(CodecGemini, BlockedPromptAndBadBodiesAreProviderErrors) {
  EXPECT_EQ(provider_error([] {
              parse_response(Provider::gemini, fixture("gemini_response_blocked.json"), false);
            }).error_type(),
            "blocked");
  for (std::string_view body : {"", "{", R"({"candidates":[]})", R"({"usageMetadata":{}})", "42"}) {
    EXPECT_EQ(provider_error([&] { parse_response(Provider::gemini, body, false); }).error_type(),
              "invalid_response")
        << body;
  }
  EXPECT_EQ(provider_error([] {
              parse_response(Provider::gemini, fixture("gemini_error_429.json"), false);
            }).error_type(),
            "RESOURCE_EXHAUSTED");
}

TEST(CodecGemini, ErrorBodiesGiveStatusCodeAndRetryDelay) {
  const ProviderErrorInfo info =
      parse_error_body(Provider::gemini, 429, fixture("gemini_error_429.json"));
  EXPECT_EQ(info.type, "RESOURCE_EXHAUSTED");
  EXPECT_EQ(info.code, "429");
  EXPECT_EQ(info.retry_delay, std::chrono::milliseconds(39000));
  EXPECT_EQ(info.message.rfind("You exceeded your current quota", 0), 0u);

  const ProviderErrorInfo fractional = parse_error_body(
      Provider::gemini, 429,
      R"([{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"slow down","details":[
          {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}])");
  EXPECT_EQ(fractional.retry_delay, std::chrono::milliseconds(1500));
  EXPECT_EQ(fractional.message, "slow down");

  const ProviderErrorInfo key =
      parse_error_body(Provider::gemini, 400, fixture("gemini_error_invalid_key.json"));
  EXPECT_EQ(key.type, "INVALID_ARGUMENT");
  EXPECT_EQ(key.message.find("AIzaSy"), std::string::npos) << key.message;
  EXPECT_FALSE(key.retry_delay.has_value());

  const ProviderErrorInfo bad_delay =
      parse_error_body(Provider::gemini, 429,
                       R"({"error":{"status":"RESOURCE_EXHAUSTED","details":[
          {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"soon"}]}})");
  EXPECT_FALSE(bad_delay.retry_delay.has_value());
  EXPECT_EQ(parse_error_body(Provider::gemini, 503, "upstream connect error").type, "unknown");
}

TEST(CodecGemini, RecordedStreamAssemblesIntoAResponse) {
  const std::string assembled = sse_to_response(Provider::gemini, fixture("gemini_stream.sse"));
  const ChatResponse r = parse_response(Provider::gemini, assembled, false);
  EXPECT_EQ(r.text, "The quick brown fox jumps over the lazy dog.");
  EXPECT_EQ(r.finish_reason, "STOP");
  EXPECT_EQ(r.id, "streamResp42");
  EXPECT_EQ(
      r.usage,
      (Usage{.input_tokens = 12, .output_tokens = 111, .cache_read_tokens = 2048, .requests = 1}));
  // The chunks' text parts are joined into one part, as in a non-streamed response.
  EXPECT_EQ(
      json::parse(assembled).at("candidates").at(0).at("content").at("parts").as_array().size(),
      1u);
}

TEST(CodecGemini, ResponseToStreamAndBackKeepsPartsUsageAndFinish) {
  for (const char* name : {"gemini_response.json", "gemini_response_structured.json",
                           "gemini_response_function_call.json"}) {
    const std::string original = fixture(name);
    const std::string stream = response_to_sse(Provider::gemini, original);
    EXPECT_EQ(stream.rfind("data: {", 0), 0u);
    const json::value back = json::parse(sse_to_response(Provider::gemini, stream));
    const json::value expected = json::parse(original);
    EXPECT_EQ(back.at("candidates").at(0).at("content"),
              expected.at("candidates").at(0).at("content"))
        << name;
    EXPECT_EQ(back.at("usageMetadata"), expected.at("usageMetadata")) << name;
    const ChatResponse a = parse_response(Provider::gemini, original, false);
    const ChatResponse b = parse_response(Provider::gemini, json::serialize(back), false);
    EXPECT_EQ(a.text, b.text) << name;
    EXPECT_EQ(a.finish_reason, b.finish_reason) << name;
    EXPECT_EQ(a.usage, b.usage) << name;
    EXPECT_EQ(a.model, b.model) << name;
  }
}

TEST(CodecGemini, MultiPartResponseStreamsOneEventPerPart) {
  const std::string stream = response_to_sse(Provider::gemini, fixture("gemini_response.json"));
  std::size_t events = 0;
  for (std::size_t at = stream.find("data: "); at != std::string::npos;
       at = stream.find("data: ", at + 1)) {
    ++events;
  }
  EXPECT_EQ(events, 2u);
}

TEST(CodecGemini, TruncatedOrFailedStreamsAreProviderErrors) {
  const std::string stream = fixture("gemini_stream.sse");
  const std::size_t last = stream.rfind("data: ");
  EXPECT_THROW(sse_to_response(Provider::gemini, stream.substr(0, last)), ProviderError);
  EXPECT_THROW(sse_to_response(Provider::gemini, stream.substr(0, stream.size() - 10)),
               ProviderError);
  EXPECT_THROW(sse_to_response(Provider::gemini, ""), ProviderError);
  EXPECT_EQ(provider_error([] {
              sse_to_response(Provider::gemini,
                              "data: {\"error\":{\"code\":503,\"message\":\"The model is "
                              "overloaded.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n");
            }).error_type(),
            "UNAVAILABLE");
}

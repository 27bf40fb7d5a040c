// The fake provider answers as tools/fake-provider/README.md documents, on all three routes.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <optional>

#include "providers/http_client.hpp"
#include "support/fake_provider.hpp"

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using llm_caching::providers::HttpClient;
using llm_caching::providers::HttpClientOptions;
using llm_caching::providers::HttpRequest;
using llm_caching::providers::HttpResponse;
using llm_caching::providers::TransportError;
using llmc_test::FakeProvider;
using llmc_test::run_sync;
using namespace std::chrono_literals;

enum class Api { openai, anthropic, gemini };

constexpr const char* kSecret = "sk-fake-provider-secret-42";

/// One provider call as a test describes it.
struct Call {
  Api api = Api::openai;
  std::string model;  // default per API; may carry "+behavior" suffixes
  std::string text = "hello fake";
  bool stream = false;
  std::string behavior;  // x-fake-behavior header
  std::string extra;     // more top-level JSON fields, starting with ','
  bool with_key = true;
};

std::string default_model(Api api) {
  switch (api) {
    case Api::openai:
      return "gpt-4o-mini";
    case Api::anthropic:
      return "claude-3-5-haiku-latest";
    case Api::gemini:
      return "gemini-2.0-flash";
  }
  return "";
}

HttpRequest build(const Call& call, const std::string& base_url) {
  HttpRequest request;
  const std::string model = call.model.empty() ? default_model(call.api) : call.model;
  const std::string text = json::serialize(json::value(call.text));
  request.headers.emplace_back("Content-Type", "application/json");
  if (call.api == Api::openai) {
    request.url = base_url + "/v1/chat/completions";
    request.body = R"({"model":")" + model + R"(","messages":[{"role":"user","content":)" + text +
                   "}]" + (call.stream ? R"(,"stream":true)" : "") + call.extra + "}";
    if (call.with_key)
      request.headers.emplace_back("Authorization", std::string("Bearer ") + kSecret);
  } else if (call.api == Api::anthropic) {
    request.url = base_url + "/v1/messages";
    request.body = R"({"model":")" + model +
                   R"(","max_tokens":256,"messages":[{"role":"user","content":)" + text + "}]" +
                   (call.stream ? R"(,"stream":true)" : "") + call.extra + "}";
    if (call.with_key) request.headers.emplace_back("x-api-key", kSecret);
    request.headers.emplace_back("anthropic-version", "2023-06-01");
  } else {
    request.url = base_url + "/v1beta/models/" + model +
                  (call.stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
    request.body =
        R"({"contents":[{"role":"user","parts":[{"text":)" + text + "}]}]" + call.extra + "}";
    if (call.with_key) request.headers.emplace_back("x-goog-api-key", kSecret);
  }
  if (!call.behavior.empty()) request.headers.emplace_back("x-fake-behavior", call.behavior);
  return request;
}

/// The assistant text of a non-streaming answer.
std::string text_of(Api api, const json::value& body) {
  if (api == Api::openai)
    return std::string(body.at("choices").at(0).at("message").at("content").as_string());
  if (api == Api::anthropic) return std::string(body.at("content").at(0).at("text").as_string());
  return std::string(
      body.at("candidates").at(0).at("content").at("parts").at(0).at("text").as_string());
}

/// The text of a streamed answer, from each event's delta.
std::string streamed_text(Api api, const std::string& stream) {
  std::string text;
  const std::string separator = api == Api::gemini ? "\r\n\r\n" : "\n\n";
  std::size_t start = 0;
  for (std::size_t end; (end = stream.find(separator, start)) != std::string::npos;
       start = end + separator.size()) {
    const std::string event = stream.substr(start, end - start);
    const auto data = event.find("data: ");
    EXPECT_NE(data, std::string::npos) << event;
    const std::string payload = event.substr(data + 6);
    if (payload == "[DONE]") continue;
    const json::value chunk = json::parse(payload);
    if (api == Api::openai && !chunk.at("choices").as_array().empty()) {
      const auto* content =
          chunk.at("choices").at(0).at("delta").as_object().if_contains("content");
      if (content && content->is_string()) text += content->as_string();
    } else if (api == Api::anthropic && chunk.at("type") == "content_block_delta") {
      text += chunk.at("delta").at("text").as_string();
    } else if (api == Api::gemini) {
      text += chunk.at("candidates").at(0).at("content").at("parts").at(0).at("text").as_string();
    }
  }
  EXPECT_EQ(start, stream.size()) << "stream does not end with a complete event";
  return text;
}

std::string structured_extra(Api api) {
  const std::string schema =
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},)"
      R"("score":{"type":"number"},"ok":{"type":"boolean"},"tags":{"type":"array","items":{"type":"string"}},)"
      R"("kind":{"type":"string","enum":["alpha","beta"]},"inner":{"type":"object","properties":{"n":{"type":"integer"}}}},)"
      R"("required":["name","age","score","ok","tags","kind","inner"]})";
  if (api == Api::openai) {
    return R"(,"response_format":{"type":"json_schema","json_schema":{"name":"out","strict":true,"schema":)" +
           schema + "}}";
  }
  if (api == Api::anthropic) {
    return R"(,"tools":[{"name":"out","description":"answer","input_schema":)" + schema +
           R"(}],"tool_choice":{"type":"tool","name":"out"})";
  }
  return R"(,"generationConfig":{"responseMimeType":"application/json","responseSchema":{"type":"OBJECT",)"
         R"("properties":{"name":{"type":"STRING"},"age":{"type":"INTEGER"},"score":{"type":"NUMBER"},)"
         R"("ok":{"type":"BOOLEAN"},"tags":{"type":"ARRAY","items":{"type":"STRING"}},)"
         R"("kind":{"type":"STRING","enum":["alpha","beta"]},"inner":{"type":"OBJECT","properties":{"n":{"type":"INTEGER"}}}}}})";
}

json::value structured_output(Api api, const json::value& body) {
  if (api == Api::anthropic) {
    EXPECT_EQ(body.at("stop_reason"), "tool_use");
    EXPECT_EQ(body.at("content").at(0).at("type"), "tool_use");
    return body.at("content").at(0).at("input");
  }
  return json::parse(text_of(api, body));
}

bool fits_schema(const json::value& v) {
  const auto* o = v.if_object();
  return o && o->size() == 7 && o->at("name").is_string() && o->at("age").is_int64() &&
         o->at("score").is_double() && o->at("ok").is_bool() && o->at("tags").is_array() &&
         o->at("tags").as_array().size() == 1 && o->at("tags").at(0).is_string() &&
         o->at("kind") == "alpha" && o->at("inner").at("n").is_int64();
}

class FakeProviderTest : public ::testing::TestWithParam<Api> {
 protected:
  static void SetUpTestSuite() { server_ = new FakeProvider(); }
  static void TearDownTestSuite() { delete server_; }

  Call call() const { return Call{.api = GetParam()}; }
  HttpResponse send(const Call& call) { return send(build(call, server_->base_url())); }
  HttpResponse send(HttpRequest request) { return run_sync(io_, client_.send(std::move(request))); }
  json::value send_ok(const Call& call) {
    const auto response = send(call);
    EXPECT_EQ(response.status, 200) << response.body;
    return json::parse(response.body);
  }
  std::string error_type(const HttpResponse& response) const {
    const json::value body = json::parse(response.body);
    if (GetParam() == Api::anthropic) {
      EXPECT_EQ(body.at("type"), "error");
      return std::string(body.at("error").at("type").as_string());
    }
    if (GetParam() == Api::gemini) {
      EXPECT_EQ(body.at("error").at("code").as_int64(), response.status);
      return std::string(body.at("error").at("status").as_string());
    }
    EXPECT_TRUE(body.at("error").as_object().contains("message"));
    return std::string(body.at("error").at("type").as_string());
  }

  static inline FakeProvider* server_ = nullptr;
  asio::io_context io_;
  HttpClient client_{io_.get_executor()};
};

TEST_P(FakeProviderTest, EchoesTheLastUserMessageWithARequestHash) {
  auto first = call();
  first.text = "what is the answer?";
  const std::string text = text_of(GetParam(), send_ok(first));
  EXPECT_EQ(text.rfind("echo: what is the answer? [", 0), 0u) << text;
  auto other = first;
  other.text = "another question";
  EXPECT_NE(text_of(GetParam(), send_ok(other)), text);
}

TEST_P(FakeProviderTest, EchoedTextWithQuotesAndControlCharactersIsEscaped) {
  // The OpenAI answer is written out by hand, not by a JSON library: its escaping must hold.
  auto tricky = call();
  tricky.text = "say \"hi\" \\ back\n\tthen\r\x01\x1f caf\xc3\xa9 \xe2\x9c\x93 </end>";
  const std::string text = text_of(GetParam(), send_ok(tricky));
  EXPECT_EQ(text.rfind("echo: " + tricky.text + " [", 0), 0u) << text;
}

TEST_P(FakeProviderTest, SameRequestGivesTheSameAnswer) {
  const auto request = build(call(), server_->base_url());
  EXPECT_EQ(send(request).body, send(request).body);
}

TEST_P(FakeProviderTest, DifferentBodiesWithTheSameTextDifferInTheHash) {
  auto a = call();
  auto b = call();
  b.extra = R"(,"temperature":0.5)";
  if (GetParam() == Api::gemini) b.extra = R"(,"generationConfig":{"temperature":0.5})";
  EXPECT_NE(text_of(GetParam(), send_ok(a)), text_of(GetParam(), send_ok(b)));
}

TEST_P(FakeProviderTest, LongMessagesAreTruncatedTo200Characters) {
  auto long_call = call();
  long_call.text = std::string(500, 'a');
  const std::string text = text_of(GetParam(), send_ok(long_call));
  EXPECT_NE(text.find("echo: " + std::string(200, 'a') + " ["), std::string::npos);
  EXPECT_EQ(text.find(std::string(201, 'a')), std::string::npos);
}

TEST_P(FakeProviderTest, UsageFollowsTheRequestSizeAndCacheMarker) {
  auto plain = call();
  const auto request = build(plain, server_->base_url());
  const json::value body = send_ok(plain);
  auto cached_call = call();
  cached_call.text = "please cache-me";
  const json::value cached = send_ok(cached_call);
  const auto expected_prompt = static_cast<std::int64_t>(request.body.size() / 4);
  if (GetParam() == Api::openai) {
    EXPECT_EQ(body.at("usage").at("prompt_tokens").as_int64(), expected_prompt);
    EXPECT_GT(body.at("usage").at("completion_tokens").as_int64(), 0);
    EXPECT_EQ(body.at("usage").at("prompt_tokens_details").at("cached_tokens").as_int64(), 0);
    EXPECT_GT(cached.at("usage").at("prompt_tokens_details").at("cached_tokens").as_int64(), 0);
  } else if (GetParam() == Api::anthropic) {
    const auto& usage = body.at("usage");
    EXPECT_EQ(usage.at("input_tokens").as_int64(), expected_prompt);
    EXPECT_GT(usage.at("output_tokens").as_int64(), 0);
    EXPECT_EQ(usage.at("cache_read_input_tokens").as_int64(), 0);
    EXPECT_GT(cached.at("usage").at("cache_read_input_tokens").as_int64(), 0);
    EXPECT_GT(cached.at("usage").at("cache_creation_input_tokens").as_int64(), 0);
  } else {
    EXPECT_EQ(body.at("usageMetadata").at("promptTokenCount").as_int64(), expected_prompt);
    EXPECT_GT(body.at("usageMetadata").at("candidatesTokenCount").as_int64(), 0);
    EXPECT_FALSE(body.at("usageMetadata").as_object().contains("cachedContentTokenCount"));
    EXPECT_GT(cached.at("usageMetadata").at("cachedContentTokenCount").as_int64(), 0);
  }
}

TEST_P(FakeProviderTest, StreamingIsSseWithTheSameTextAsTheWholeAnswer) {
  auto whole = call();
  auto streamed = call();
  streamed.stream = true;
  if (GetParam() == Api::openai) streamed.extra = R"(,"stream_options":{"include_usage":true})";
  std::string stream;
  const auto response =
      run_sync(io_, client_.send_streaming(build(streamed, server_->base_url()),
                                           [&](std::string_view chunk) { stream += chunk; }));
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-type"), "text/event-stream");
  const std::string whole_text = text_of(GetParam(), send_ok(whole));
  // The hash covers the body, which differs by "stream": compare what precedes it.
  const std::string stream_text = streamed_text(GetParam(), stream);
  EXPECT_EQ(stream_text.substr(0, stream_text.find(" [")),
            whole_text.substr(0, whole_text.find(" [")));
  if (GetParam() == Api::openai) {
    EXPECT_TRUE(stream.ends_with("data: [DONE]\n\n"));
    EXPECT_NE(stream.find(R"("choices":[],"usage":{"prompt_tokens")"), std::string::npos);
  } else if (GetParam() == Api::anthropic) {
    EXPECT_EQ(stream.rfind("event: message_start\ndata: ", 0), 0u);
    EXPECT_NE(stream.find("event: message_stop\ndata: "), std::string::npos);
  } else {
    EXPECT_NE(stream.find(R"("finishReason":"STOP")"), std::string::npos);
  }
}

TEST_P(FakeProviderTest, StructuredOutputFitsTheSchema) {
  auto structured = call();
  structured.extra = structured_extra(GetParam());
  const json::value output = structured_output(GetParam(), send_ok(structured));
  EXPECT_TRUE(fits_schema(output)) << json::serialize(output);
}

TEST_P(FakeProviderTest, WrongSchemaBehaviorBreaksTheSchema) {
  auto structured = call();
  structured.extra = structured_extra(GetParam());
  structured.behavior = "wrong-schema";
  const json::value output = structured_output(GetParam(), send_ok(structured));
  EXPECT_TRUE(output.is_object());
  EXPECT_FALSE(fits_schema(output)) << json::serialize(output);
}

TEST_P(FakeProviderTest, MissingKeyIs401AndNoCredentialIsEchoed) {
  auto anonymous = call();
  anonymous.with_key = false;
  auto request = build(anonymous, server_->base_url());
  request.headers.emplace_back("Authorization", std::string("Basic ") + kSecret);
  const auto response = send(request);
  EXPECT_EQ(response.status, 401);
  const std::string expected = GetParam() == Api::openai      ? "invalid_request_error"
                               : GetParam() == Api::anthropic ? "authentication_error"
                                                              : "UNAUTHENTICATED";
  EXPECT_EQ(error_type(response), expected);
  EXPECT_EQ(response.body.find(kSecret), std::string::npos);
}

TEST_P(FakeProviderTest, RateLimitedForTheFirstKCallsOfABody) {
  auto limited = call();
  limited.behavior = "429-2";
  for (int i = 0; i < 2; ++i) {
    const auto response = send(limited);
    ASSERT_EQ(response.status, 429);
    EXPECT_EQ(response.header("retry-after"), "1");
    if (GetParam() == Api::openai) {
      EXPECT_EQ(response.header("x-ratelimit-reset-requests"), "1s");
      EXPECT_EQ(json::parse(response.body).at("error").at("code"), "rate_limit_exceeded");
    } else {
      EXPECT_EQ(error_type(response),
                GetParam() == Api::anthropic ? "rate_limit_error" : "RESOURCE_EXHAUSTED");
    }
  }
  EXPECT_EQ(send(limited).status, 200);
  auto other_body = limited;
  other_body.text = "a different body has its own budget";
  EXPECT_EQ(send(other_body).status, 429);
}

TEST_P(FakeProviderTest, RateLimitInMillisecondsUsesRetryAfterMs) {
  auto limited = call();
  limited.behavior = "429ms-1";
  limited.text = "milliseconds please";
  const auto response = send(limited);
  EXPECT_EQ(response.status, 429);
  EXPECT_EQ(response.header("retry-after-ms"), "50");
  EXPECT_EQ(response.header("retry-after"), "");
  EXPECT_EQ(send(limited).status, 200);
}

TEST_P(FakeProviderTest, BehaviorCanComeFromTheModelNameSuffix) {
  auto failing = call();
  failing.model = default_model(GetParam()) + "+500";
  const auto response = send(failing);
  EXPECT_EQ(response.status, 500);
  const std::string expected = GetParam() == Api::openai      ? "server_error"
                               : GetParam() == Api::anthropic ? "api_error"
                                                              : "INTERNAL";
  EXPECT_EQ(error_type(response), expected);
}

TEST_P(FakeProviderTest, OverloadedIs529ForAnthropicAnd503Elsewhere) {
  auto overloaded = call();
  overloaded.behavior = "529";
  const auto response = send(overloaded);
  if (GetParam() == Api::anthropic) {
    EXPECT_EQ(response.status, 529);
    EXPECT_EQ(error_type(response), "overloaded_error");
  } else {
    EXPECT_EQ(response.status, 503);
    EXPECT_EQ(error_type(response), GetParam() == Api::gemini ? "UNAVAILABLE" : "server_error");
  }
}

TEST_P(FakeProviderTest, InvalidJsonBehaviorSendsA200ThatDoesNotParse) {
  auto broken = call();
  broken.behavior = "invalid-json";
  const auto response = send(broken);
  EXPECT_EQ(response.status, 200);
  boost::system::error_code ec;
  json::parse(response.body, ec);
  EXPECT_TRUE(ec);
}

TEST_P(FakeProviderTest, TruncatedDroppedAndResetRepliesAreTransportErrors) {
  auto truncated = call();
  truncated.behavior = "truncated";
  try {
    send(truncated);
    ADD_FAILURE() << "truncated reply was accepted";
  } catch (const TransportError& error) {
    EXPECT_EQ(error.kind(), TransportError::Kind::protocol);
  }
  auto dropped = call();
  dropped.behavior = "drop";
  try {
    send(dropped);
    ADD_FAILURE() << "dropped connection gave a reply";
  } catch (const TransportError& error) {
    EXPECT_EQ(error.kind(), TransportError::Kind::reset);
  }
  auto reset = call();
  reset.behavior = "reset";
  try {
    send(reset);
    ADD_FAILURE() << "reset connection gave a reply";
  } catch (const TransportError& error) {
    EXPECT_EQ(error.kind(), TransportError::Kind::reset);
    EXPECT_NE(std::string(error.what()).find("reset"), std::string::npos) << error.what();
  }
}

TEST_P(FakeProviderTest, DelayBehaviorHoldsTheAnswerBack) {
  HttpClientOptions impatient;
  impatient.read_timeout = 100ms;
  HttpClient client(io_.get_executor(), impatient);
  auto slow = call();
  slow.behavior = "delay-1000";
  try {
    run_sync(io_, client.send(build(slow, server_->base_url())));
    ADD_FAILURE() << "a delayed answer beat a 100 ms read timeout";
  } catch (const TransportError& error) {
    EXPECT_EQ(error.kind(), TransportError::Kind::timeout);
  }
  auto quick = call();
  quick.model = default_model(GetParam()) + "+delay-10";
  EXPECT_EQ(send(quick).status, 200);
}

TEST_P(FakeProviderTest, UnknownBehaviorIsABadRequest) {
  auto typo = call();
  typo.behavior = "430-1";
  const auto response = send(typo);
  EXPECT_EQ(response.status, 400);
  EXPECT_NE(response.body.find("430-1"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    AllRoutes, FakeProviderTest, ::testing::Values(Api::openai, Api::anthropic, Api::gemini),
    [](const auto& info) {
      return default_model(info.param).substr(0, info.param == Api::openai ? 3 : 6);
    });

class FakeProviderServerTest : public ::testing::Test {
 protected:
  HttpResponse send(HttpRequest request) { return run_sync(io_, client_.send(std::move(request))); }
  FakeProvider server_;
  asio::io_context io_;
  HttpClient client_{io_.get_executor()};
};

TEST_F(FakeProviderServerTest, GeminiExhaustedCarriesRetryInfo) {
  Call exhausted{.api = Api::gemini, .behavior = "gemini-exhausted-1"};
  const auto response = send(build(exhausted, server_.base_url()));
  ASSERT_EQ(response.status, 429);
  const auto error = json::parse(response.body).at("error");
  EXPECT_EQ(error.at("status"), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(error.at("details").at(0).at("@type"), "type.googleapis.com/google.rpc.RetryInfo");
  EXPECT_EQ(error.at("details").at(0).at("retryDelay"), "1s");
  EXPECT_EQ(send(build(exhausted, server_.base_url())).status, 200);
}

TEST_F(FakeProviderServerTest, GeminiAcceptsTheKeyInTheQuery) {
  Call keyless{.api = Api::gemini, .with_key = false};
  auto request = build(keyless, server_.base_url());
  request.url += std::string("?key=") + kSecret;
  EXPECT_EQ(send(request).status, 200);
}

TEST_F(FakeProviderServerTest, AnthropicWantsAVersionHeader) {
  auto request = build(Call{.api = Api::anthropic}, server_.base_url());
  std::erase_if(request.headers, [](const auto& h) { return h.first == "anthropic-version"; });
  EXPECT_EQ(send(request).status, 400);
}

TEST_F(FakeProviderServerTest, StatsCountCallsPerRouteAndResetClearsThem) {
  HttpClient earlier(io_.get_executor());
  run_sync(io_, earlier.send(build(Call{.api = Api::openai}, server_.base_url())));
  server_.reset();  // forgets that call and its connection
  send(build(Call{.api = Api::openai}, server_.base_url()));
  send(build(Call{.api = Api::openai, .behavior = "500"}, server_.base_url()));
  send(build(Call{.api = Api::anthropic, .with_key = false}, server_.base_url()));
  send(build(Call{.api = Api::gemini}, server_.base_url()));
  send(build(Call{.api = Api::gemini, .stream = true}, server_.base_url()));
  HttpRequest stats;
  stats.method = "GET";
  stats.url = server_.base_url() + "/_stats";
  const auto body = json::parse(send(stats).body);
  EXPECT_EQ(body.at("total").as_int64(), 5);
  EXPECT_EQ(body.at("routes").at("/v1/chat/completions").as_int64(), 2);
  EXPECT_EQ(body.at("routes").at("/v1/messages").as_int64(), 1);
  EXPECT_EQ(body.at("routes").at("/v1beta/models:generateContent").as_int64(), 1);
  EXPECT_EQ(body.at("routes").at("/v1beta/models:streamGenerateContent").as_int64(), 1);
  EXPECT_EQ(body.at("behaviors").at("500").as_int64(), 1);
  EXPECT_EQ(body.at("connections").as_int64(), 1);  // keep-alive: all on one connection
}

TEST_F(FakeProviderServerTest, ListsModelsOpenAiStyle) {
  HttpRequest list;
  list.method = "GET";
  list.url = server_.base_url() + "/v1/models";
  const auto body = json::parse(send(list).body);
  EXPECT_EQ(body.at("object"), "list");
  EXPECT_FALSE(body.at("data").as_array().empty());
  EXPECT_EQ(body.at("data").at(0).at("object"), "model");
}

TEST_F(FakeProviderServerTest, UnknownRouteIs404) {
  HttpRequest request;
  request.url = server_.base_url() + "/v2/nothing";
  request.body = "{}";
  EXPECT_EQ(send(request).status, 404);
}

TEST_F(FakeProviderServerTest, ExitsCleanlyOnSigterm) {
  EXPECT_EQ(server_.stop(), 0);
}

TEST(FakeProviderCommandLine, RejectsBadArguments) {
  EXPECT_THROW(llmc_test::ChildProcess({llmc_test::kFakeProviderPath, "--listen", "nowhere"}),
               std::runtime_error);
}

}  // namespace

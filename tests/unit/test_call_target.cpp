// providers::recognise_call: which provider call an SDK's HTTP request is (the Python front's
// transport hands every request of an agent to cached_http_call, which starts here).
#include "providers/call_target.hpp"

#include <gtest/gtest.h>

using llm_caching::Api;
using llm_caching::Provider;
using llm_caching::providers::recognise_call;

TEST(CallTarget, OpenAiPathsKeepTheBaseUrlUpToTheVersion) {
  auto chat = recognise_call("POST", "https://api.openai.com/v1/chat/completions");
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->provider, Provider::openai);
  EXPECT_EQ(chat->api, Api::chat);
  EXPECT_EQ(chat->base_url, "https://api.openai.com/v1");

  auto responses = recognise_call("POST", "http://127.0.0.1:8080/openai/v1/responses");
  ASSERT_TRUE(responses);
  EXPECT_EQ(responses->api, Api::responses);
  EXPECT_EQ(responses->base_url, "http://127.0.0.1:8080/openai/v1");

  EXPECT_EQ(recognise_call("POST", "https://api.openai.com/v1/completions")->api, Api::completions);
  auto moderation = recognise_call("POST", "https://api.openai.com/v1/moderations");
  EXPECT_EQ(moderation->api, Api::moderations);
  EXPECT_EQ(moderation->model, "omni-moderation-latest");
}

TEST(CallTarget, AnthropicBaseUrlIsTheHostRoot) {
  auto messages = recognise_call("POST", "https://api.anthropic.com/v1/messages");
  ASSERT_TRUE(messages);
  EXPECT_EQ(messages->provider, Provider::anthropic);
  EXPECT_EQ(messages->api, Api::chat);
  EXPECT_EQ(messages->base_url, "https://api.anthropic.com");
  auto count = recognise_call("POST", "https://api.anthropic.com/v1/messages/count_tokens");
  EXPECT_EQ(count->api, Api::count_tokens);
}

TEST(CallTarget, GeminiCarriesModelStreamAndQueryKeyInTheUrl) {
  auto plain = recognise_call(
      "POST",
      "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->provider, Provider::gemini);
  EXPECT_EQ(plain->model, "gemini-2.0-flash");
  EXPECT_FALSE(plain->stream);
  EXPECT_EQ(plain->base_url, "https://generativelanguage.googleapis.com");

  auto stream = recognise_call(
      "POST", "http://h:1/v1/models/gemini-2.0-flash%2B429-1:streamGenerateContent?alt=sse&key=k1");
  ASSERT_TRUE(stream);
  EXPECT_TRUE(stream->stream);
  EXPECT_EQ(stream->model, "gemini-2.0-flash+429-1");  // percent-decoded, as the gateway reads it
  EXPECT_EQ(stream->query_key, "k1");
  EXPECT_EQ(recognise_call("POST", "http://h:1/v1beta/models/g:countTokens")->api,
            Api::count_tokens);
}

TEST(CallTarget, EverythingElseGoesToTheProviderAsItIs) {
  EXPECT_FALSE(recognise_call("GET", "https://api.openai.com/v1/models"));
  EXPECT_FALSE(recognise_call("POST", "https://api.openai.com/v1/embeddings"));
  EXPECT_FALSE(recognise_call("POST", "https://api.openai.com/v1/files"));
  EXPECT_FALSE(recognise_call("GET", "https://api.openai.com/v1/responses"));
  // Gemini's stream without alt=sse is one JSON array; v1alpha previews are not ours either.
  EXPECT_FALSE(recognise_call("POST", "http://h/v1beta/models/g:streamGenerateContent"));
  EXPECT_FALSE(recognise_call("POST", "http://h/v1alpha/models/g:generateContent"));
  EXPECT_FALSE(recognise_call("POST", "not a url"));
  EXPECT_FALSE(recognise_call("POST", "ftp://h/v1/chat/completions"));
}

TEST(CallTarget, UserInfoNeverReachesTheBaseUrl) {
  auto chat = recognise_call("POST", "https://user:secret@api.openai.com/v1/chat/completions");
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->base_url, "https://api.openai.com/v1");
}

// Cache key derivation: golden vectors, what changes a key and what must not, storage keys and
// provider names.
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace json = boost::json;
using llm_caching::ConfigurationError;
using llm_caching::derive_key;
using llm_caching::parse_provider;
using llm_caching::Provider;
using llm_caching::storage_key;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

json::array load_vectors() {
  std::ifstream file(LLMC_TEST_DATA_DIR "/key_vectors.json", std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return llm_caching::parse_json_exact(text.str()).as_array();
}

std::string hex_of(Provider provider, std::string_view model, std::string_view request_text,
                   std::string_view scope = {}) {
  return derive_key(provider, model, json::parse(request_text), scope).hex;
}

constexpr const char* chat_request = R"({"model":"gpt-4o-mini","temperature":0.7,"max_tokens":64,
  "messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"2+2?"}]})";

TEST(CacheKeyGoldenVectors, DeriveKeyReproducesEveryCheckedInVector) {
  const json::array vectors = load_vectors();
  ASSERT_GE(vectors.size(), 15u);
  std::set<std::string> names;
  for (const auto& entry : vectors) {
    const json::object& v = entry.as_object();
    const std::string name(v.at("name").as_string());
    EXPECT_TRUE(names.insert(name).second) << "duplicate vector " << name;
    const auto key =
        derive_key(parse_provider(v.at("provider").as_string()), v.at("model").as_string(),
                   v.at("request"), v.at("scope").as_string());
    EXPECT_EQ(key.canonical_request, v.at("canonical").as_string()) << name;
    EXPECT_EQ(key.hex, v.at("key").as_string()) << name;
  }
}

TEST(CacheKeyGoldenVectors, AnObjectKeysAsTheSameObjectHeldInAValue) {
  // NativeRequest::body is an object: its overload must key exactly as the value overload.
  for (const auto& entry : load_vectors()) {
    const json::object& v = entry.as_object();
    const Provider provider = parse_provider(v.at("provider").as_string());
    const std::string_view model = v.at("model").as_string();
    const std::string_view scope = v.at("scope").as_string();
    const auto from_value = derive_key(provider, model, v.at("request"), scope);
    const auto from_object = derive_key(provider, model, v.at("request").as_object(), scope);
    EXPECT_EQ(from_object.hex, from_value.hex) << v.at("name");
    EXPECT_EQ(from_object.canonical_request, from_value.canonical_request) << v.at("name");
    EXPECT_EQ(from_object.dropped, from_value.dropped) << v.at("name");
  }
}

TEST(CacheKey, MaterialIsVersionProviderModelScopeAndCanonicalRequest) {
  const auto key =
      derive_key(Provider::anthropic, "claude-x", json::parse(R"({"b":1,"a":2})"), "team");
  EXPECT_EQ(key.material, "llm-caching/v1\nanthropic\nclaude-x\nteam\n{\"a\":2,\"b\":1}");
  EXPECT_EQ(key.canonical_request, "{\"a\":2,\"b\":1}");
  EXPECT_THAT(key.hex, ::testing::MatchesRegex("[0-9a-f]{64}"));
  EXPECT_TRUE(key.dropped.empty());
}

TEST(CacheKey, KeyOrderWhitespaceAndNumberFormsDoNotChangeTheKey) {
  const std::string base = hex_of(Provider::openai, "gpt-4o-mini", chat_request);
  EXPECT_EQ(base, hex_of(Provider::openai, "gpt-4o-mini", R"({
      "messages": [ {"content":"Be brief.", "role":"system"}, {"content":"2+2?","role":"user"} ],
      "max_tokens": 6.4e1, "temperature": 70E-2, "model": "gpt-4o-mini" })"));
  EXPECT_EQ(hex_of(Provider::openai, "m", R"({"temperature":0,"seed":100})"),
            hex_of(Provider::openai, "m", R"({"seed":1e2,"temperature":0.0})"));
  EXPECT_EQ(hex_of(Provider::openai, "m", R"({"temperature":0E0})"),
            hex_of(Provider::openai, "m", R"({"temperature":-0.0})"));
}

struct KeyChange {
  const char* what;
  std::function<void(json::object&)> apply;
};

TEST(CacheKey, EveryFieldThatCanChangeTheAnswerChangesTheKey) {
  const json::value base = json::parse(chat_request);
  const std::string base_hex = derive_key(Provider::openai, "gpt-4o-mini", base).hex;
  const KeyChange changes[] = {
      {"temperature", [](json::object& r) { r["temperature"] = 0.8; }},
      {"seed", [](json::object& r) { r["seed"] = 1; }},
      {"tools", [](json::object& r) { r["tools"] = json::parse(R"([{"type":"function"}])"); }},
      {"response_format",
       [](json::object& r) { r["response_format"] = json::parse(R"({"type":"json_object"})"); }},
      {"max_tokens", [](json::object& r) { r["max_tokens"] = 65; }},
      {"stop", [](json::object& r) { r["stop"] = json::array{"\n"}; }},
      {"unknown field", [](json::object& r) { r["reasoning_effort_v9"] = "high"; }},
      {"message text",
       [](json::object& r) { r["messages"].as_array()[1].as_object()["content"] = "2+3?"; }},
      {"model in body", [](json::object& r) { r["model"] = "gpt-4o"; }},
      {"nested stream flag", [](json::object& r) { r["x"] = json::parse(R"({"stream":true})"); }},
  };
  std::set<std::string> seen = {base_hex};
  for (const auto& change : changes) {
    json::value changed = base;
    change.apply(changed.as_object());
    const std::string hex = derive_key(Provider::openai, "gpt-4o-mini", changed).hex;
    EXPECT_TRUE(seen.insert(hex).second) << change.what << " did not give a new key";
  }
}

TEST(CacheKey, ModelProviderAndScopeChangeTheKey) {
  const json::value request = json::parse(chat_request);
  const std::set<std::string> keys = {
      derive_key(Provider::openai, "gpt-4o-mini", request).hex,
      derive_key(Provider::openai, "gpt-4o", request).hex,
      derive_key(Provider::anthropic, "gpt-4o-mini", request).hex,
      derive_key(Provider::gemini, "gpt-4o-mini", request).hex,
      derive_key(Provider::openai, "gpt-4o-mini", request, "tenant-a").hex,
      derive_key(Provider::openai, "gpt-4o-mini", request, "tenant-b").hex,
  };
  EXPECT_EQ(keys.size(), 6u);
}

TEST(CacheKey, OpenAiVolatileFieldsAreDroppedAndReported) {
  const json::value request = json::parse(R"({"model":"m","stream":true,
      "stream_options":{"include_usage":true},"user":"u1","metadata":{"k":"v"},"store":true,
      "request_id":"abc","timestamp":17,"temperature":1})");
  const auto key = derive_key(Provider::openai, "m", request);
  EXPECT_EQ(key.hex, hex_of(Provider::openai, "m", R"({"model":"m","temperature":1})"));
  EXPECT_THAT(key.dropped, ElementsAre("/stream", "/stream_options", "/user", "/metadata", "/store",
                                       "/request_id", "/timestamp"));
}

TEST(CacheKey, VolatileFieldsAreProviderSpecific) {
  const char* plain = R"({"x":1})";
  const char* with_stream_and_metadata = R"({"x":1,"stream":true,"metadata":{"user_id":"u"}})";
  EXPECT_EQ(hex_of(Provider::anthropic, "c", plain),
            hex_of(Provider::anthropic, "c", with_stream_and_metadata));
  // Anthropic has no store/user fields we know to be volatile: they stay in the key.
  EXPECT_NE(hex_of(Provider::anthropic, "c", plain),
            hex_of(Provider::anthropic, "c", R"({"x":1,"store":true})"));
  // Gemini carries stream and model in the URL; body fields of those names are kept.
  EXPECT_NE(hex_of(Provider::gemini, "g", plain),
            hex_of(Provider::gemini, "g", with_stream_and_metadata));
  EXPECT_EQ(hex_of(Provider::gemini, "g", plain),
            hex_of(Provider::gemini, "g", R"({"x":1,"requestId":"r","timestamp":"now"})"));
}

TEST(CacheKey, DeriveKeyDoesNotModifyTheRequest) {
  const json::value request = json::parse(R"({"stream":true,"messages":[{"role":"tool",
      "tool_call_id":"call_zz","content":"x"}]})");
  const json::value copy = request;
  const auto key = derive_key(Provider::openai, "m", request);
  EXPECT_EQ(request, copy);
  EXPECT_THAT(key.dropped, ElementsAre("/stream", "/messages/0/tool_call_id"));
}

// Builds an OpenAI conversation with two tool calls and their results, ids as given.
std::string openai_conversation(const char* first_call, const char* second_call,
                                const char* first_result, const char* second_result) {
  std::ostringstream s;
  s << R"({"model":"gpt-4o","messages":[{"role":"user","content":"Paris and Rome?"},)"
    << R"({"role":"assistant","tool_calls":[{"id":")" << first_call
    << R"(","type":"function","function":{"name":"w","arguments":"{}"}},{"id":")" << second_call
    << R"(","type":"function","function":{"name":"w","arguments":"{}"}}]},)"
    << R"({"role":"tool","tool_call_id":")" << first_result << R"(","content":"18C"},)"
    << R"({"role":"tool","tool_call_id":")" << second_result << R"(","content":"24C"}]})";
  return s.str();
}

TEST(CacheKeyToolIds, OpenAiGeneratedIdsAreRenumberedByFirstAppearance) {
  const std::string a = openai_conversation("call_AAA", "call_BBB", "call_AAA", "call_BBB");
  const std::string b = openai_conversation("call_x1", "call_y2", "call_x1", "call_y2");
  EXPECT_EQ(hex_of(Provider::openai, "gpt-4o", a), hex_of(Provider::openai, "gpt-4o", b));
  // Same ids, different pattern: results swapped, or one id used for both calls.
  EXPECT_NE(hex_of(Provider::openai, "gpt-4o", a),
            hex_of(Provider::openai, "gpt-4o",
                   openai_conversation("call_AAA", "call_BBB", "call_BBB", "call_AAA")));
  EXPECT_NE(hex_of(Provider::openai, "gpt-4o", a),
            hex_of(Provider::openai, "gpt-4o",
                   openai_conversation("call_AAA", "call_AAA", "call_AAA", "call_AAA")));

  const auto key = derive_key(Provider::openai, "gpt-4o", json::parse(a));
  EXPECT_THAT(key.canonical_request, HasSubstr(R"("id":"call_1")"));
  EXPECT_THAT(key.canonical_request, HasSubstr(R"("tool_call_id":"call_2")"));
  EXPECT_THAT(key.canonical_request, ::testing::Not(HasSubstr("AAA")));
  EXPECT_THAT(key.dropped, ElementsAre("/messages/1/tool_calls/0/id", "/messages/1/tool_calls/1/id",
                                       "/messages/2/tool_call_id", "/messages/3/tool_call_id"));
}

std::string anthropic_conversation(const char* use_id, const char* result_id) {
  return std::string(R"({"model":"claude","max_tokens":100,"messages":[
      {"role":"user","content":"Weather?"},
      {"role":"assistant","content":[{"type":"text","text":"Let me check."},
        {"type":"tool_use","id":")") +
         use_id + R"(","name":"w","input":{}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":")" +
         result_id + R"(","content":"18C"}]}]})";
}

TEST(CacheKeyToolIds, AnthropicToolUseIdsAreRenumbered) {
  EXPECT_EQ(hex_of(Provider::anthropic, "claude", anthropic_conversation("toolu_01A", "toolu_01A")),
            hex_of(Provider::anthropic, "claude", anthropic_conversation("toolu_9Z", "toolu_9Z")));
  EXPECT_NE(
      hex_of(Provider::anthropic, "claude", anthropic_conversation("toolu_01A", "toolu_01A")),
      hex_of(Provider::anthropic, "claude", anthropic_conversation("toolu_01A", "toolu_01B")));
  const auto key = derive_key(Provider::anthropic, "claude",
                              json::parse(anthropic_conversation("toolu_01A", "toolu_01A")));
  EXPECT_THAT(key.dropped,
              ElementsAre("/messages/1/content/1/id", "/messages/2/content/0/tool_use_id"));
  // OpenAI's field names mean nothing in an Anthropic request and stay as they are.
  EXPECT_NE(hex_of(Provider::anthropic, "claude",
                   openai_conversation("call_A", "call_B", "call_A", "call_B")),
            hex_of(Provider::anthropic, "claude",
                   openai_conversation("call_C", "call_D", "call_C", "call_D")));
}

std::string gemini_conversation(const char* call_id, const char* response_id) {
  return std::string(R"({"contents":[{"role":"user","parts":[{"text":"Weather?"}]},
      {"role":"model","parts":[{"functionCall":{"id":")") +
         call_id + R"(","name":"w","args":{}}}]},
      {"role":"user","parts":[{"functionResponse":{"id":")" +
         response_id + R"(","name":"w","response":{"t":18}}}]}]})";
}

TEST(CacheKeyToolIds, GeminiFunctionCallIdsAreRenumbered) {
  EXPECT_EQ(hex_of(Provider::gemini, "gemini-2.5-pro", gemini_conversation("a1", "a1")),
            hex_of(Provider::gemini, "gemini-2.5-pro", gemini_conversation("q9", "q9")));
  EXPECT_NE(hex_of(Provider::gemini, "gemini-2.5-pro", gemini_conversation("a1", "a1")),
            hex_of(Provider::gemini, "gemini-2.5-pro", gemini_conversation("a1", "b2")));
  const auto key =
      derive_key(Provider::gemini, "gemini-2.5-pro", json::parse(gemini_conversation("a1", "a1")));
  EXPECT_THAT(key.dropped, ElementsAre("/contents/1/parts/0/functionCall/id",
                                       "/contents/2/parts/0/functionResponse/id"));
}

TEST(CacheKeyErrors, NonObjectRequestIsRejectedNamingWhatItGot) {
  for (const char* text : {"[1,2]", "\"hello\"", "null", "42"}) {
    try {
      derive_key(Provider::openai, "m", json::parse(text));
      ADD_FAILURE() << "accepted " << text;
    } catch (const ConfigurationError& e) {
      EXPECT_THAT(e.what(), HasSubstr("must be a JSON object, got"));
    }
  }
  try {
    derive_key(Provider::openai, "m", json::parse("[1]"));
  } catch (const ConfigurationError& e) {
    EXPECT_THAT(e.what(), HasSubstr("got array"));
  }
}

TEST(CacheKeyErrors, ModelAndScopeMustKeepTheMaterialUnambiguous) {
  const json::value request = json::parse("{}");
  EXPECT_THROW(derive_key(Provider::openai, "", request), ConfigurationError);
  EXPECT_THROW(derive_key(Provider::openai, "a\nb", request), ConfigurationError);
  EXPECT_THROW(derive_key(Provider::openai, "m", request, "x\ny"), ConfigurationError);
}

TEST(CacheKey, ThreadsDeriveTheSameKeys) {
  const json::value request = json::parse(chat_request);
  const std::string expected = derive_key(Provider::openai, "gpt-4o-mini", request).hex;
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i)
        results[t] = derive_key(Provider::openai, "gpt-4o-mini", request).hex;
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& hex : results) EXPECT_EQ(hex, expected);
}

const std::string some_hex(64, 'a');

TEST(StorageKey, HasVersionedLayoutAndDefaultNamespace) {
  EXPECT_EQ(storage_key("team-a", some_hex), "llm-caching:v1:team-a:" + some_hex);
  EXPECT_EQ(storage_key("", some_hex), "llm-caching:v1:default:" + some_hex);
  EXPECT_EQ(storage_key(std::string(128, 'n'), some_hex),
            "llm-caching:v1:" + std::string(128, 'n') + ":" + some_hex);
}

TEST(StorageKey, RejectsNamespacesThatWouldMakeKeysUnparseable) {
  const std::vector<std::string> unparseable = {
      "a:b", "a b", "a\tb", "a\nb", std::string("a\0b", 3), "\x7f", std::string(129, 'n')};
  for (const std::string& bad : unparseable) {
    EXPECT_THROW(storage_key(bad, some_hex), ConfigurationError) << bad;
  }
}

TEST(StorageKey, RejectsSomethingThatIsNotASha256Hex) {
  EXPECT_THROW(storage_key("ns", ""), ConfigurationError);
  EXPECT_THROW(storage_key("ns", std::string(64, 'A')), ConfigurationError);
  EXPECT_THROW(storage_key("ns", std::string(63, 'a')), ConfigurationError);
  EXPECT_THROW(storage_key("ns", std::string(63, 'a') + ":"), ConfigurationError);
}

TEST(ProviderNames, RoundTripAndAliases) {
  for (Provider p : {Provider::openai, Provider::anthropic, Provider::gemini}) {
    EXPECT_EQ(parse_provider(llm_caching::to_string(p)), p);
  }
  EXPECT_EQ(llm_caching::to_string(Provider::anthropic), "anthropic");
  EXPECT_EQ(parse_provider("google"), Provider::gemini);
  EXPECT_EQ(parse_provider("google-gla"), Provider::gemini);
}

TEST(ProviderNames, UnknownNameListsTheAcceptedOnes) {
  try {
    parse_provider("OpenAI ");
    ADD_FAILURE() << "accepted an unknown provider";
  } catch (const ConfigurationError& e) {
    EXPECT_THAT(e.what(), HasSubstr("\"OpenAI \""));
    EXPECT_THAT(e.what(), HasSubstr("openai, anthropic or gemini"));
  }
  try {
    parse_provider("bad\nname");
    ADD_FAILURE() << "accepted an unknown provider";
  } catch (const ConfigurationError& e) {
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("bad")));
  }
}

}  // namespace

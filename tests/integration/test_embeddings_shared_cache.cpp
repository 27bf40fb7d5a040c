// Embeddings on a shared cache (issue 30, issue 22): two `llm-caching serve` processes on one
// Redis, or one SQLite file, that receive overlapping new inputs at once send each input upstream
// once (the cross-process lock per input); each entry keeps its input's request, so a
// replay_only miss, through the gateway or the library, names the nearest recorded input and
// what differs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/gateway_harness.hpp"
#include "llm_caching/embed.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/runtime.hpp"
#include "support/redis_server.hpp"

#include <future>
#include <map>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr const char* kModel = "text-embedding-3-small";

std::string body_for(const std::vector<std::string>& inputs) {
  json::array list;
  for (const auto& input : inputs) list.emplace_back(input);
  return json::serialize(json::object{{"model", kModel}, {"input", list}});
}

/// The embedding the fake gives `input` alone.
json::value alone(const FakeProvider& fake, const std::string& input) {
  const HttpResponse answer = send(
      post(fake.base_url() + "/v1/embeddings", body_for({input}), {{"authorization", "Bearer k"}}));
  return json::parse(answer.body).at("data").at(0).at("embedding");
}

/// The M of "N cached, M sent".
int sent_of(const std::string& header) {
  return std::stoi(header.substr(header.find(", ") + 2));
}

/// Six requests at once, three to each of two gateways on `cache_url`, over overlapping inputs
/// (12 distinct): each input goes upstream once in all, and every answer holds every input's own
/// embedding in order. The upstream answers after a second, so the requests meet while the
/// first inputs are out.
void expect_each_input_sent_once(const std::string& cache_url) {
  FakeProvider fake{{.delay = 1000ms}};
  SharedCacheGateway first(fake, cache_url);
  SharedCacheGateway second(fake, cache_url);
  const std::vector<std::vector<std::string>> batches = {
      {"i0", "i1", "i2", "i3", "i4", "i5"},   {"i3", "i4", "i5", "i6", "i7", "i8"},
      {"i6", "i7", "i8", "i9", "i10", "i11"}, {"i0", "i2", "i4", "i6", "i8", "i10"},
      {"i1", "i3", "i5", "i7", "i9", "i11"},  {"i11", "i0", "i5", "i6"}};
  std::vector<std::future<HttpResponse>> pending;
  for (std::size_t r = 0; r < batches.size(); ++r) {
    const std::string url = (r % 2 == 0 ? first : second).base_url() + "/v1/embeddings";
    pending.push_back(std::async(std::launch::async, [url, body = body_for(batches[r])] {
      return send(post(url, body, {{"authorization", "Bearer sk-shared-embeddings"}}));
    }));
  }
  std::vector<HttpResponse> answers;
  int sent = 0;
  for (auto& p : pending) {
    answers.push_back(p.get());
    ASSERT_EQ(answers.back().status, 200) << answers.back().body;
    sent += sent_of(answers.back().header("x-llm-cache-inputs"));
  }
  EXPECT_EQ(fake.stats().at("embedding_inputs").as_int64(), 12);  // each input once, in all
  EXPECT_EQ(sent, 12);
  // The fake's embedding of a text is a function of the text: an undelayed one says what each
  // input's must be.
  const FakeProvider plain;
  std::map<std::string, json::value> expected;
  for (std::size_t r = 0; r < batches.size(); ++r) {
    const json::value answer = json::parse(answers[r].body);
    const json::array& data = answer.at("data").as_array();
    ASSERT_EQ(data.size(), batches[r].size());
    for (std::size_t i = 0; i < data.size(); ++i) {
      const std::string& input = batches[r][i];
      SCOPED_TRACE(input);
      if (!expected.contains(input)) expected.emplace(input, alone(plain, input));
      EXPECT_EQ(data[i].at("embedding"), expected.at(input));
    }
  }
}

TEST(EmbeddingsAcrossProcesses, TwoGatewaysOnOneRedisSendEachInputOnce) {
  llmc_test::RedisServer redis;
  expect_each_input_sent_once(redis.url());
  // Every lock was released once its input's entry landed.
  EXPECT_EQ(redis.cli({"--scan", "--pattern", "llm-caching:lock:*"}), "");
}

TEST(EmbeddingsAcrossProcesses, TwoGatewaysOnOneSqliteFileSendEachInputOnce) {
  llmc_test::TempDir dir;
  expect_each_input_sent_once("sqlite://" + dir.file("shared.db"));
}

TEST(EmbeddingsReplayMiss, TheGateway504NamesTheNearestInputAndWhatDiffers) {
  FakeProvider fake;
  GatewayProcess gateway{fake};
  const auto embed = [&](const std::vector<std::string>& inputs, const std::string& extra) {
    return curl(
        "-H 'Authorization: Bearer sk-replay-embeddings' "
        "-H 'content-type: application/json' " +
        extra + " --data-binary " + quoted(body_for(inputs)) + " " + gateway.base_url() +
        "/v1/embeddings");
  };
  ASSERT_EQ(embed({"a poem about cats", "the weather in Paris"}, "").status, 200);
  const CurlResult missed =
      embed({"the weather in Paris", "a poem about dogs"}, "-H 'x-llm-cache: only-if-cached'");
  ASSERT_EQ(missed.status, 504) << missed.body;
  const std::string message(json::parse(missed.body).at("error").at("message").as_string());
  EXPECT_THAT(message, HasSubstr("no cached embedding for 1 of 2 inputs"));
  EXPECT_THAT(message, HasSubstr("nearest recorded entry: llm-caching:v1:"));
  EXPECT_THAT(message, HasSubstr("nearest of 2 openai embeddings entries"));
  EXPECT_THAT(message, HasSubstr(R"(input: "a poem about cats" → "a poem about dogs")"));
  EXPECT_EQ(fake.stats().at("embedding_inputs").as_int64(), 2);  // the replay sent nothing
}

TEST(EmbeddingsReplayMiss, TheLibraryNamesTheNearestInputAndItsFileShowsTheRequest) {
  using namespace llm_caching;
  FakeProvider fake;
  llmc_test::TempDir dir;
  Runtime runtime;
  const Embedder embedder{.model = std::string("openai:") + kModel,
                          .dimensions = 64,
                          .base_url = fake.base_url() + "/v1",
                          .api_key = "sk-embed"};
  RunOptions options;
  options.cache_url = "dir://" + dir.file("recorded");
  options.runtime = &runtime;
  options.namespace_ = "suite";
  cached_embed_sync(embedder, {"a passage about cats", "a recipe for bread"}, "index", options);

  options.mode = CacheMode::replay_only;
  std::string message;
  try {
    cached_embed_sync(embedder, {"a recipe for bread", "a passage about dogs"}, "index", options);
    ADD_FAILURE() << "no CacheMissError";
  } catch (const CacheMissError& e) {
    message = e.what();
  }
  EXPECT_THAT(message, HasSubstr("nearest recorded entry: llm-caching:v1:suite:"));
  EXPECT_THAT(message, HasSubstr(" in " + dir.file("recorded") + "/suite/"));
  EXPECT_THAT(message, HasSubstr("1 field differs from it:"));
  EXPECT_THAT(message, HasSubstr(R"(input: "a passage about cats" → "a passage about dogs")"));
  // The entries' files show their requests (entry format 3), for review.
  const auto listed =
      llmc_test::run_shell("grep -rl '\"a passage about cats\"' " + quoted(dir.file("recorded")));
  EXPECT_THAT(listed.output, HasSubstr("/suite/"));
  // ... and the task that recorded them (entry format 4), in every file.
  const auto tasked = llmc_test::run_shell("grep -rL '\"task\": \"index\"' " +
                                           quoted(dir.file("recorded")) + " --include=*.json");
  EXPECT_EQ(tasked.output, "");
  const auto files = llmc_test::run_shell("grep -rl '\"task\": \"index\"' " +
                                          quoted(dir.file("recorded")) + " | wc -l");
  EXPECT_EQ(files.output, "2\n");
  EXPECT_EQ(fake.stats().at("embedding_inputs").as_int64(), 2);
}

}  // namespace

// cached_embed against the fake provider over sockets: per-input entries (of 100 texts with 90
// cached only 10 go upstream, the answer keeps the order), Gemini too, the awaitable form,
// replay_only, the ledger, and the gateway's keys: an embedding the gateway recorded is a hit.
#include "integration/gateway_harness.hpp"
#include "llm_caching/embed.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/runtime.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace {

using namespace gateway_test;
using namespace llm_caching;
using namespace std::chrono_literals;
using llmc_test::FakeProvider;

std::vector<std::string> texts(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back("passage number " + std::to_string(i));
  return out;
}

class LibraryEmbed : public ::testing::Test {
 protected:
  FakeProvider fake;
  llmc_test::TempDir dir;
  Runtime runtime;

  Embedder openai() const {
    return {.model = "openai:text-embedding-3-small",
            .base_url = fake.base_url() + "/v1",
            .api_key = "sk-embed"};
  }
  RunOptions options() {
    RunOptions o;
    o.cache_url = "sqlite://" + dir.file("cache.db");
    o.runtime = &runtime;
    o.initial_wait = 1ms;
    o.max_wait = 2s;
    return o;
  }
  std::int64_t inputs_sent() const { return fake.stats().at("embedding_inputs").as_int64(); }
  /// The embedding the fake gives `text` alone (OpenAI wire).
  std::vector<double> alone(const std::string& text) {
    const HttpResponse answer = send(
        post(fake.base_url() + "/v1/embeddings",
             json::serialize(json::object{{"model", "text-embedding-3-small"}, {"input", text}}),
             {{"authorization", "Bearer k"}}));
    const json::value parsed = json::parse(answer.body);  // kept: the loop reads into it
    std::vector<double> out;
    for (const json::value& v : parsed.at("data").at(0).at("embedding").as_array())
      out.push_back(v.to_number<double>());
    return out;
  }
};

TEST_F(LibraryEmbed, NinetyCachedOfAHundredSendOnlyTheTenOthersInOrder) {
  const EmbedResult first = cached_embed_sync(openai(), texts(0, 90), "rag", options());
  EXPECT_EQ(first.sent, 90u);
  EXPECT_EQ(first.cached, 0u);
  EXPECT_GT(first.cost_nano_usd, 0);
  EXPECT_GT(first.usage.input_tokens, 0);
  EXPECT_EQ(inputs_sent(), 90);

  const std::vector<std::string> all = texts(0, 100);
  const EmbedResult second = cached_embed_sync(openai(), all, "rag", options());
  EXPECT_EQ(second.sent, 10u);
  EXPECT_EQ(second.cached, 90u);
  EXPECT_EQ(inputs_sent(), 100);  // only the 10 new texts went upstream
  EXPECT_EQ(upstream_calls(fake), 2);
  ASSERT_EQ(second.embeddings.size(), 100u);
  ASSERT_EQ(second.cache_keys.size(), 100u);
  for (std::size_t i = 0; i < 90; ++i) EXPECT_EQ(second.embeddings[i], first.embeddings[i]) << i;
  EXPECT_EQ(second.embeddings[95], alone(all[95]));
  EXPECT_EQ(second.embeddings[3], alone(all[3]));
  // Billed for the 10 sent; the 90 cached avoided 90 shares of the first call's cost.
  EXPECT_GT(second.cost_nano_usd, 0);
  EXPECT_LT(second.cost_nano_usd, first.cost_nano_usd);
  EXPECT_GT(second.avoided_cost_nano_usd, second.cost_nano_usd);
  EXPECT_LE(second.avoided_cost_nano_usd, first.cost_nano_usd);
  EXPECT_EQ(second.cache_keys[0], first.cache_keys[0]);

  const EmbedResult third = cached_embed_sync(openai(), {all[99], all[0]}, "rag", options());
  EXPECT_EQ(third.sent, 0u);
  EXPECT_EQ(third.cost_nano_usd, 0);
  EXPECT_EQ(third.usage.requests, 0);
  EXPECT_EQ(third.embeddings[0], second.embeddings[99]);
  EXPECT_EQ(inputs_sent(), 100 + 2);  // the two alone() calls above
}

TEST_F(LibraryEmbed, TheAwaitableFormAndTheModes) {
  boost::asio::io_context io;
  const Embedder embedder = openai();
  const std::vector<std::string> some = texts(0, 3);
  RunOptions replay = options();
  replay.mode = CacheMode::replay_only;
  EXPECT_THROW(cached_embed_sync(embedder, some, "t", replay), CacheMissError);
  EXPECT_EQ(inputs_sent(), 0);

  const RunOptions use = options();
  auto pending =
      boost::asio::co_spawn(io, cached_embed(embedder, some, "t", use), boost::asio::use_future);
  io.run();
  const EmbedResult ran = pending.get();
  EXPECT_EQ(ran.sent, 3u);
  EXPECT_EQ(cached_embed_sync(embedder, some, "t", replay).cached, 3u);

  RunOptions bypass = options();
  bypass.mode = CacheMode::bypass;
  EXPECT_EQ(cached_embed_sync(embedder, some, "t", bypass).sent, 3u);
  EXPECT_EQ(inputs_sent(), 6);
  EXPECT_THROW(cached_embed_sync(embedder, {}, "t", options()), ConfigurationError);
  EXPECT_THROW(
      cached_embed_sync(Embedder{.model = "anthropic:claude-3-5-haiku-latest", .api_key = "k"},
                        some, "t", options()),
      ConfigurationError);
}

TEST_F(LibraryEmbed, GeminiBatchesTheInputsTheCacheDoesNotHold) {
  const Embedder gemini{.model = "google-gla:gemini-embedding-001",
                        .base_url = fake.base_url(),
                        .api_key = "AIza-embed"};
  const EmbedResult first = cached_embed_sync(gemini, {"red", "green", "blue"}, "t", options());
  EXPECT_EQ(first.sent, 3u);
  const EmbedResult second = cached_embed_sync(gemini, {"blue", "violet", "red"}, "t", options());
  EXPECT_EQ(second.sent, 1u);
  EXPECT_EQ(second.cached, 2u);
  EXPECT_EQ(inputs_sent(), 4);
  EXPECT_EQ(second.embeddings[0], first.embeddings[2]);
  EXPECT_EQ(second.embeddings[2], first.embeddings[0]);
  EXPECT_EQ(second.embeddings[1].size(), 8u);  // the fake's default dimensions
}

TEST_F(LibraryEmbed, TheLedgerRecordsEachCallWithItsCostAndAvoidedCost) {
  const std::string cache_url = "sqlite://" + dir.file("ledger.db");
  std::int64_t spent = 0;
  std::int64_t avoided = 0;
  {
    RuntimeOptions runtime_options;
    runtime_options.ledger_spill_dir = dir.file("spill");
    Runtime own(runtime_options);
    RunOptions o = options();
    o.cache_url = cache_url;
    o.runtime = &own;
    o.ledger = true;
    o.tenant = "team-rag";
    for (const auto& batch : {texts(0, 5), texts(3, 8), texts(0, 8)}) {
      const EmbedResult r = cached_embed_sync(openai(), batch, "embed-task", o);
      spent += r.cost_nano_usd;
      avoided += r.avoided_cost_nano_usd;
    }
  }  // the runtime's end flushes the ledger
  const auto printed =
      llmc_test::run_shell(std::string(kCliPath) +
                           " costs --json --since 1d --by outcome --cache-url '" + cache_url + "'");
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  const json::value report = json::parse(printed.output);
  const json::object& total = report.at("total").as_object();
  EXPECT_EQ(total.at("calls").as_int64(), 3);
  EXPECT_EQ(total.at("hits").as_int64(), 1);  // the third: all 8 cached
  EXPECT_GT(spent, 0);
  EXPECT_GT(avoided, 0);
  EXPECT_EQ(total.at("spent_nano_usd").as_int64(), spent);
  EXPECT_EQ(total.at("avoided_nano_usd").as_int64(), avoided);
}

TEST(LibraryEmbedKeys, AnEmbeddingTheGatewayRecordedIsALibraryHit) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--share-cache-across-keys"});
  const HttpResponse recorded =
      send(post(gateway.base_url() + "/v1/embeddings",
                R"({"model":"text-embedding-3-small","input":["shared one","shared two"]})",
                {{"authorization", "Bearer sk-gateway"}}));
  ASSERT_EQ(recorded.status, 200) << recorded.body;
  const json::value answer = json::parse(recorded.body);

  // The library at the gateway's upstream (one scope rule: a non-public endpoint is in both
  // scopes), without a key, replaying only: every input must be found under the gateway's key.
  for (const char* name : {"OPENAI_API_KEY", "OPENAI_BASE_URL"}) ::unsetenv(name);
  Runtime runtime;
  RunOptions options;
  options.cache_url = gateway.cache_url();
  options.runtime = &runtime;
  options.mode = CacheMode::replay_only;
  const EmbedResult hit = cached_embed_sync(
      Embedder{.model = "openai:text-embedding-3-small", .base_url = fake.base_url() + "/v1"},
      {"shared two", "shared one"}, "t", options);
  EXPECT_EQ(hit.cached, 2u);
  ASSERT_EQ(hit.embeddings.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    std::vector<double> expected;
    for (const json::value& v : answer.at("data").at(1 - i).at("embedding").as_array())
      expected.push_back(v.to_number<double>());
    EXPECT_EQ(hit.embeddings[i], expected) << i;
  }
  EXPECT_EQ(fake.stats().at("embedding_inputs").as_int64(), 2);
}

}  // namespace

// `llm-caching serve` caching OpenAI embeddings per input, in front of the fake provider: a batch
// whose inputs are partly cached sends only the others upstream and answers every input in
// order; float and base64 answers are kept apart; the cost is what was sent.
#include <gtest/gtest.h>

#include "integration/gateway_harness.hpp"

#include <future>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;
using namespace std::chrono_literals;

class GatewayEmbeddings : public ::testing::Test {
 protected:
  FakeProvider fake;
  GatewayProcess gateway{fake};

  CurlResult embed(const std::string& body, const std::string& extra = {}) {
    return curl(
        "-H 'Authorization: Bearer sk-embeddings-test' -H 'content-type: application/json' " +
        extra + " --data-binary " + quoted(body) + " " + gateway.base_url() + "/v1/embeddings");
  }
  std::int64_t inputs_sent() const { return fake.stats().at("embedding_inputs").as_int64(); }
};

std::string body_for(const std::vector<std::string>& inputs, const std::string& format = "float") {
  json::array list;
  for (const auto& input : inputs) list.emplace_back(input);
  return json::serialize(json::object{
      {"model", "text-embedding-3-small"}, {"input", list}, {"encoding_format", format}});
}

/// The embedding the fake gives `input` alone.
json::value alone(FakeProvider& fake, const std::string& input, const std::string& format) {
  const HttpResponse answer =
      send(post(fake.base_url() + "/v1/embeddings", body_for({input}, format),
                {{"authorization", "Bearer k"}}));
  return json::parse(answer.body).at("data").at(0).at("embedding");
}

TEST_F(GatewayEmbeddings, OnlyTheNewInputsGoUpstreamAndTheAnswerKeepsTheOrder) {
  const CurlResult first = embed(body_for({"alpha", "beta", "gamma"}));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.headers.at("x-llm-cache"), "MISS");
  EXPECT_EQ(first.headers.at("x-llm-cache-inputs"), "0 cached, 3 sent");
  EXPECT_EQ(inputs_sent(), 3);

  const std::vector<std::string> second_inputs = {"delta", "alpha", "beta", "epsilon", "gamma"};
  const CurlResult second = embed(body_for(second_inputs));
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.headers.at("x-llm-cache"), "MISS");
  EXPECT_EQ(second.headers.at("x-llm-cache-inputs"), "3 cached, 2 sent");
  EXPECT_EQ(inputs_sent(), 5);  // exactly the 2 new ones went upstream
  EXPECT_EQ(upstream_calls(fake), 2);
  const json::value answer = json::parse(second.body);
  const json::array& data = answer.at("data").as_array();
  ASSERT_EQ(data.size(), second_inputs.size());
  for (std::size_t i = 0; i < data.size(); ++i) {
    SCOPED_TRACE(second_inputs[i]);
    EXPECT_EQ(data[i].at("index").as_int64(), static_cast<std::int64_t>(i));
    EXPECT_EQ(data[i].at("embedding"), alone(fake, second_inputs[i], "float"));
  }
  // Billed for what was sent; the cached inputs' share is what was avoided.
  EXPECT_NE(second.headers.at("x-llm-cost-usd"), "0");
  EXPECT_NE(second.headers.at("x-llm-avoided-usd"), "0");

  const std::int64_t sent_before = inputs_sent();  // the loop above asked the fake directly
  const CurlResult third = embed(body_for({"gamma", "alpha"}));
  EXPECT_EQ(third.headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(third.headers.at("x-llm-cost-usd"), "0");
  EXPECT_EQ(json::parse(third.body).at("usage").at("prompt_tokens").as_int64(), 0);
  EXPECT_EQ(inputs_sent(), sent_before);
}

TEST_F(GatewayEmbeddings, Base64AndFloatAreAnsweredAsAskedAndCachedApart) {
  const CurlResult floats = embed(body_for({"one", "two"}));
  const CurlResult encoded = embed(body_for({"one", "two"}, "base64"));
  const CurlResult again = embed(body_for({"two", "one"}, "base64"));
  ASSERT_EQ(encoded.status, 200) << encoded.body;
  EXPECT_EQ(encoded.headers.at("x-llm-cache-inputs"), "0 cached, 2 sent");
  EXPECT_EQ(again.headers.at("x-llm-cache"), "HIT");
  const json::value first = json::parse(encoded.body).at("data").at(0).at("embedding");
  EXPECT_TRUE(first.is_string());
  EXPECT_EQ(first, alone(fake, "one", "base64"));
  EXPECT_EQ(json::parse(again.body).at("data").at(1).at("embedding"), first);
  EXPECT_TRUE(json::parse(floats.body).at("data").at(0).at("embedding").is_array());
  EXPECT_EQ(inputs_sent(), 2 + 2 + 1);  // 2 + 2 through the gateway, then "one" directly
}

TEST_F(GatewayEmbeddings, BadInputAndTheCacheControls) {
  EXPECT_EQ(embed(R"({"model":"text-embedding-3-small"})").status, 400);
  EXPECT_EQ(embed(R"({"model":"text-embedding-3-small","input":[]})").status, 400);
  EXPECT_EQ(embed(R"({"input":"x"})").status, 400);
  const std::string body = body_for({"kept"});
  EXPECT_EQ(embed(body, "-H 'x-llm-cache: only-if-cached'").status, 504);
  EXPECT_EQ(embed(body, "-H 'x-llm-cache: no-store'").headers.at("x-llm-cache"), "MISS");
  EXPECT_EQ(embed(body, "-H 'x-llm-cache: only-if-cached'").status, 504);  // nothing stored
  EXPECT_EQ(embed(body).headers.at("x-llm-cache"), "MISS");
  EXPECT_EQ(embed(body, "-H 'x-llm-cache: only-if-cached'").headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(inputs_sent(), 2);
}

std::string gemini_item(const std::string& text) {
  return R"({"model":"models/gemini-embedding-001","content":{"parts":[{"text":)" +
         json::serialize(json::value(text)) + "}]}}";
}

std::string gemini_batch(const std::vector<std::string>& texts) {
  std::string body = R"({"requests":[)";
  for (std::size_t i = 0; i < texts.size(); ++i) body += (i ? "," : "") + gemini_item(texts[i]);
  return body + "]}";
}

TEST_F(GatewayEmbeddings, GeminiBatchAndSingleShareTheirInputsEntries) {
  const std::string base = gateway.base_url() + "/v1beta/models/gemini-embedding-001:";
  auto gemini = [&](const std::string& action, const std::string& body) {
    return curl(
        "-H 'x-goog-api-key: AIza-embeddings-test' -H 'content-type: application/json' "
        "--data-binary " +
        quoted(body) + " " + base + action);
  };
  const CurlResult batch = gemini("batchEmbedContents", gemini_batch({"red", "green", "blue"}));
  ASSERT_EQ(batch.status, 200) << batch.body;
  EXPECT_EQ(batch.headers.at("x-llm-cache-inputs"), "0 cached, 3 sent");
  EXPECT_EQ(json::parse(batch.body).at("embeddings").as_array().size(), 3u);
  EXPECT_EQ(inputs_sent(), 3);

  // :embedContent of an input the batch had: a hit, answered in embedContent's shape.
  const CurlResult one = gemini("embedContent", R"({"content":{"parts":[{"text":"green"}]}})");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.headers.at("x-llm-cache"), "HIT");
  EXPECT_EQ(json::parse(one.body).at("embedding"), json::parse(batch.body).at("embeddings").at(1));

  const CurlResult mixed = gemini("batchEmbedContents", gemini_batch({"blue", "violet", "red"}));
  ASSERT_EQ(mixed.status, 200) << mixed.body;
  EXPECT_EQ(mixed.headers.at("x-llm-cache-inputs"), "2 cached, 1 sent");
  EXPECT_EQ(inputs_sent(), 4);                               // only "violet" went upstream
  const json::value mixed_answer = json::parse(mixed.body);  // kept: `got` points into it
  const json::value batch_answer = json::parse(batch.body);
  const json::array& got = mixed_answer.at("embeddings").as_array();
  const json::array& first = batch_answer.at("embeddings").as_array();
  EXPECT_EQ(got.at(0), first.at(2));
  EXPECT_EQ(got.at(2), first.at(0));
  const CurlResult direct =
      curl("-H 'x-goog-api-key: k' -H 'content-type: application/json' --data-binary " +
           quoted(R"({"content":{"parts":[{"text":"violet"}]}})") + " " + fake.base_url() +
           "/v1beta/models/gemini-embedding-001:embedContent");
  EXPECT_EQ(got.at(1), json::parse(direct.body).at("embedding"));
  EXPECT_EQ(gemini("batchEmbedContents", R"({"requests":[{"nocontent":1}]})").status, 400);
}

// Single-flight per input: 20 concurrent requests for the same inputs (the upstream answers
// after 300 ms, so they all arrive while the first is out) send each input upstream once.
TEST(GatewayEmbeddingsFlight, TwentyConcurrentRequestsSendEachInputOnce) {
  FakeProvider fake{{.delay = 300ms}};
  GatewayProcess gateway{fake};
  const std::string body = body_for({"one", "two", "three"});
  std::vector<std::future<HttpResponse>> pending;
  for (int i = 0; i < 20; ++i) {
    pending.push_back(std::async(std::launch::async, [&] {
      return send(post(gateway.base_url() + "/v1/embeddings", body,
                       {{"authorization", "Bearer sk-flight"}}));
    }));
  }
  int misses = 0;
  int coalesced = 0;
  std::string first_body;
  for (auto& p : pending) {
    const HttpResponse r = p.get();
    ASSERT_EQ(r.status, 200) << r.body;
    const json::value answer = json::parse(r.body);
    if (first_body.empty()) first_body = json::serialize(answer.at("data"));
    EXPECT_EQ(json::serialize(answer.at("data")), first_body);
    misses += r.header("x-llm-cache") == "MISS";
    coalesced += r.header("x-llm-cache") == "COALESCED";
  }
  EXPECT_EQ(fake.stats().at("embedding_inputs").as_int64(), 3);  // each input once
  EXPECT_EQ(upstream_calls(fake), 1);
  EXPECT_EQ(misses, 1);
  EXPECT_GT(coalesced, 0);
}

// Each embeddings call writes a ledger record with its real and avoided cost.
TEST(GatewayEmbeddingsLedger, EachCallIsARecordWithItsCostAndAvoidedCost) {
  FakeProvider fake;
  llmc_test::TempDir spill;
  std::int64_t spent = 0;
  std::int64_t avoided = 0;
  GatewayProcess gateway{fake, {"--ledger-spill-dir", spill.path().string()}};
  const std::string cache_url = gateway.cache_url();  // in the gateway's folder: kept till the end
  {
    for (const auto& inputs :
         std::vector<std::vector<std::string>>{{"a", "b", "c"}, {"b", "c", "d", "e"}, {"e", "a"}}) {
      const CurlResult r = curl(
          "-H 'Authorization: Bearer sk-ledger' -H 'x-llm-task: embed-task' "
          "-H 'content-type: application/json' --data-binary " +
          quoted(body_for(inputs)) + " " + gateway.base_url() + "/v1/embeddings");
      ASSERT_EQ(r.status, 200) << r.body;
      spent += std::llround(std::stod(r.headers.at("x-llm-cost-usd")) * 1e9);
      avoided += std::llround(std::stod(r.headers.at("x-llm-avoided-usd")) * 1e9);
    }
    EXPECT_EQ(gateway.stop(), 0);  // its end flushes the ledger
  }
  const auto printed = llmc_test::run_shell(
      std::string(kCliPath) + " costs --json --since 1d --by task --cache-url '" + cache_url + "'");
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  const json::value report = json::parse(printed.output);
  const json::object& total = report.at("total").as_object();
  EXPECT_EQ(total.at("calls").as_int64(), 3);
  EXPECT_EQ(total.at("hits").as_int64(), 1);
  EXPECT_GT(spent, 0);
  EXPECT_GT(avoided, 0);
  EXPECT_EQ(total.at("spent_nano_usd").as_int64(), spent);
  EXPECT_EQ(total.at("avoided_nano_usd").as_int64(), avoided);
  EXPECT_EQ(report.at("rows").as_array().at(0).at("key").as_string(), "embed-task");
}

}  // namespace

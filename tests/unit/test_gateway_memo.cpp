// Repeated hits answered from the per-thread memo of prepared responses (gateway/hit_memo.hpp):
// the same bytes as the full path, and never an answer the cache no longer holds or that belongs
// to another caller.
#include "gateway/gateway.hpp"
#include "gateway/hit_memo.hpp"
#include "gateway/worker_state.hpp"
#include "providers/endpoint.hpp"

#include "cache/memory_backend.hpp"
#include "gateway/controls.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include "support/scripted_model.hpp"
#include "support/test_env.hpp"

namespace {

using namespace llm_caching;
using namespace llm_caching::gateway;
namespace asio = boost::asio;

/// Records what the gateway answered, and whether it came as prepared bytes.
class RecordingStream final : public ResponseStream {
 public:
  OutgoingResponse last;
  int prepared = 0;

  asio::awaitable<bool> send(OutgoingResponse response) override {
    last = std::move(response);
    co_return true;
  }
  asio::awaitable<bool> send_prepared(std::shared_ptr<const PreparedResponse> p) override {
    ++prepared;
    last = p->response;
    co_return true;
  }
  asio::awaitable<bool> begin_chunked(int, Headers) override { co_return false; }
  asio::awaitable<bool> write_chunk(std::string_view) override { co_return false; }
  asio::awaitable<bool> end_chunked(Headers) override { co_return false; }
  void abort() override {}
};

constexpr std::string_view kBody =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"memo"}]})";

class GatewayMemo : public ::testing::Test {
 protected:
  GatewayMemo() {
    GatewayConfig config;
    config.upstreams[Provider::openai].base_url = "http://127.0.0.1:1/v1";  // refused: 502
    config.retry.initial_wait = std::chrono::milliseconds(1);
    config.retry.max_wait = std::chrono::milliseconds(0);
    gateway_ = std::make_shared<Gateway>(config, exchange_);
  }

  /// Stores an answer under the key the gateway derives for kBody from `caller_key`.
  std::string store(const std::string& caller_key) {
    exchange::ExchangeRequest r;
    r.native = NativeRequest{Provider::openai, "gpt-4o-mini", boost::json::parse(kBody).as_object(),
                             false};
    // The gateway's scope rule (providers::key_scope): the tenant, then the upstream (not a
    // public service here).
    const std::string tenant = tenant_scope(caller_key);
    const std::string endpoint =
        providers::cache_scope(gateway_->config().upstreams[Provider::openai]);
    r.scope = providers::key_scope(providers::ScopeParts{.tenant = tenant, .endpoint = endpoint});
    return llmc_test::run_sync(io_, exchange_->run(model_, std::move(r))).storage_key;
  }

  OutgoingResponse ask(const std::string& caller_key, Headers extra = {}) {
    IncomingRequest request{"POST", "/v1/chat/completions", std::move(extra), std::string(kBody)};
    request.headers.emplace_back("content-type", "application/json");
    request.headers.emplace_back("authorization", "Bearer " + caller_key);
    llmc_test::run_sync(io_, gateway_->handle(worker_, request, stream_));
    return stream_.last;
  }

  std::shared_ptr<cache::TieredCache> cache_ = std::make_shared<cache::TieredCache>(
      std::make_shared<cache::MemoryBackend>(MemoryOptions{}), 64 * kMiB, false);
  std::shared_ptr<exchange::Exchange> exchange_ = std::make_shared<exchange::Exchange>(cache_);
  std::shared_ptr<Gateway> gateway_;
  llm_caching::testing::ScriptedModel model_;
  asio::io_context io_;
  providers::HttpClient client_{io_.get_executor()};
  WorkerState worker_{client_};
  RecordingStream stream_;
};

TEST_F(GatewayMemo, ARepeatedHitIsTheSameAnswerServedAsPreparedBytes) {
  store("sk-a");
  const OutgoingResponse first = ask("sk-a");
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(find_header(first.headers, "x-llm-cache"), "HIT");
  const int prepared_before = stream_.prepared;
  const OutgoingResponse second = ask("sk-a");
  EXPECT_EQ(stream_.prepared, prepared_before + 1);
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(second.headers, first.headers);
  EXPECT_EQ(model_.calls(), 1);
}

TEST_F(GatewayMemo, AnErasedEntryIsNotServedFromTheMemo) {
  const std::string key = store("sk-a");
  ask("sk-a");
  ask("sk-a");
  llmc_test::run_sync(io_, cache_->erase(key));
  const OutgoingResponse after = ask("sk-a");
  EXPECT_EQ(after.status, 502);  // a miss, sent to the (unreachable) upstream
  EXPECT_EQ(find_header(after.headers, "x-llm-cache"), "");
}

TEST_F(GatewayMemo, AReplacedEntryIsServedInsteadOfTheRememberedOne) {
  const std::string key = store("sk-a");
  ask("sk-a");
  const OutgoingResponse old_answer = ask("sk-a");
  auto replacement =
      std::make_shared<core::CacheEntry>(*llmc_test::run_sync(io_, cache_->get(key, 0)));
  replacement->response = R"({"replaced":true})";
  llmc_test::run_sync(io_, cache_->put(key, replacement, std::chrono::milliseconds(0)));
  const OutgoingResponse after = ask("sk-a");
  EXPECT_EQ(after.body, R"({"replaced":true})");
  EXPECT_NE(after.body, old_answer.body);
}

TEST_F(GatewayMemo, AnotherCallersKeyDoesNotGetTheRememberedAnswer) {
  store("sk-a");
  ask("sk-a");
  ask("sk-a");
  const OutgoingResponse other = ask("sk-b");
  EXPECT_EQ(other.status, 502);  // sk-b's partition is empty: a miss
}

TEST_F(GatewayMemo, RequestsWithCacheControlsTakeTheFullPath) {
  store("sk-a");
  ask("sk-a");
  ask("sk-a");
  const int prepared_before = stream_.prepared;
  const OutgoingResponse refreshed = ask("sk-a", {{"x-llm-cache", "no-store"}});
  EXPECT_EQ(refreshed.status, 200);
  EXPECT_EQ(stream_.prepared, prepared_before);
  const OutgoingResponse bypassed = ask("sk-a", {{"cache-control", "no-cache"}});
  EXPECT_EQ(bypassed.status, 502);  // no-cache must call the provider, memo or not
}

TEST(HitMemo, FindsOnlyTheExactTargetAndBody) {
  HitMemo memo;
  auto hit = std::make_shared<HitMemo::Hit>();
  hit->response =
      prepare_response(OutgoingResponse{200, {{"content-type", "application/json"}}, "{}"});
  memo.remember("/v1/chat/completions", "{\"a\":1}", hit);
  EXPECT_EQ(memo.find("/v1/chat/completions", "{\"a\":1}"), hit);
  EXPECT_EQ(memo.find("/v1/chat/completions", "{\"a\": 1}"), nullptr);
  EXPECT_EQ(memo.find("/v1/messages", "{\"a\":1}"), nullptr);
  EXPECT_EQ(hit->response->head,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n");
}

TEST(HitMemo, StaysBounded) {
  HitMemo memo;
  auto hit = std::make_shared<HitMemo::Hit>();
  hit->response = prepare_response(OutgoingResponse{200, {}, "{}"});
  for (std::size_t i = 0; i < 3 * HitMemo::kMaxEntries; ++i) {
    memo.remember("/t", std::to_string(i), hit);
  }
  EXPECT_LE(memo.size(), HitMemo::kMaxEntries);
  memo.remember("/t", std::string(HitMemo::kMaxBodyBytes + 1, 'x'), hit);
  EXPECT_EQ(memo.find("/t", std::string(HitMemo::kMaxBodyBytes + 1, 'x')), nullptr);
}

}  // namespace

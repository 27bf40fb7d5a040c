// The exchange paths the gateway needs: a streamed miss relayed chunk by chunk and stored whole,
// no retry once bytes were relayed, unpriced models allowed on request, timeouts told apart.
#include "exchange/exchange.hpp"

#include "cache/memory_backend.hpp"
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"

#include "support/codec_fixtures.hpp"
#include "support/scripted_streaming_model.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include <deque>
#include <fstream>
#include <sstream>

#include "support/test_env.hpp"

namespace {

using namespace llm_caching;
namespace asio = boost::asio;

using llmc_test::fixture;

class GatewayExchange : public ::testing::Test {
 protected:
  std::shared_ptr<cache::TieredCache> cache_ = std::make_shared<cache::TieredCache>(
      std::make_shared<cache::MemoryBackend>(MemoryOptions{}), 64 * kMiB, false);
  exchange::Exchange exchange_{cache_};
  llmc_test::ScriptedStreamingModel model_{3};  // three chunks a stream
  asio::io_context io_;
  std::string relayed_;

  exchange::ExchangeRequest streaming_request(std::string model = "gpt-4o-mini") {
    exchange::ExchangeRequest r;
    r.native.provider = Provider::openai;
    r.native.model = std::move(model);
    r.native.body = {
        {"model", r.native.model},
        {"stream", true},
        {"messages", boost::json::array{boost::json::object{{"role", "user"}, {"content", "hi"}}}}};
    r.native.stream = true;
    r.retry.initial_wait = std::chrono::milliseconds(1);
    r.retry.max_wait = std::chrono::milliseconds(50);
    r.relay = [this](std::string_view chunk) { relayed_.append(chunk); };
    return r;
  }
  exchange::ExchangeResult run(exchange::ExchangeRequest r) {
    return llmc_test::run_sync(io_, exchange_.run(model_, std::move(r)));
  }
};

TEST_F(GatewayExchange, StreamedMissIsRelayedAndStoredWhole) {
  const std::string sse = fixture("openai_stream.sse");
  model_.replies.push_back({200, sse, true});
  const exchange::ExchangeResult miss = run(streaming_request());
  EXPECT_TRUE(miss.relayed);
  EXPECT_EQ(relayed_, sse);
  EXPECT_EQ(miss.entry->stream, sse);
  EXPECT_EQ(miss.entry->response, providers::sse_to_response(Provider::openai, sse));

  relayed_.clear();
  const exchange::ExchangeResult hit = run(streaming_request());
  EXPECT_TRUE(hit.cache_hit);
  EXPECT_FALSE(hit.relayed);  // the gateway replays hits itself
  EXPECT_EQ(relayed_, "");
  EXPECT_EQ(hit.entry->stream, sse);
  EXPECT_EQ(model_.calls, 1);
}

TEST_F(GatewayExchange, ErrorsBeforeAnyByteAreRetriedAndNothingIsRelayed) {
  model_.replies.push_back(
      {429, fixture("openai_error_rate_limit.json"), false, std::chrono::milliseconds(1)});
  model_.replies.push_back({200, fixture("openai_stream.sse"), true});
  const exchange::ExchangeResult result = run(streaming_request());
  EXPECT_EQ(result.attempts, 2);
  EXPECT_EQ(relayed_, fixture("openai_stream.sse"));
}

TEST_F(GatewayExchange, AStreamThatBreaksAfterRelayingIsNotRetriedOrStored) {
  NativeResponse broken{0, "data: {\"partial\": true}\n\n"};
  broken.transport_error = "connection reset";
  model_.replies.push_back(std::move(broken));
  model_.replies.push_back({200, fixture("openai_stream.sse"), true});
  EXPECT_THROW(run(streaming_request()), ProviderError);
  EXPECT_EQ(model_.calls, 1);
  EXPECT_EQ(relayed_, "data: {\"partial\": true}\n\n");

  relayed_.clear();
  const exchange::ExchangeResult next = run(streaming_request());
  EXPECT_FALSE(next.cache_hit);  // nothing was stored by the broken call
  EXPECT_EQ(model_.calls, 2);
}

TEST_F(GatewayExchange, UnpricedModelsAreRefusedUnlessAllowed) {
  EXPECT_THROW(run(streaming_request("my-local-llama")), ConfigurationError);
  EXPECT_EQ(model_.calls, 0);

  model_.replies.push_back({200, fixture("openai_stream.sse"), true});
  exchange::ExchangeRequest allowed = streaming_request("my-local-llama");
  allowed.allow_unpriced = true;
  const exchange::ExchangeResult result = run(std::move(allowed));
  EXPECT_FALSE(result.priced);
  EXPECT_EQ(result.cost_nano_usd, 0);
}

TEST_F(GatewayExchange, TimeoutsAreToldApartFromUnreachableUpstreams) {
  struct Case {
    std::string transport_error;
    TransportFailure failure;
    std::string type;
  };
  const std::vector<Case> cases = {
      {"no byte for 400 ms", TransportFailure::timeout, "timeout"},
      {"connecting to 127.0.0.1:9 failed", TransportFailure::connect, "transport"}};
  for (const auto& [transport_error, failure, type] : cases) {
    NativeResponse reply{0, ""};
    reply.transport_error = transport_error;
    reply.transport_failure = failure;
    model_.replies.push_back(reply);
    exchange::ExchangeRequest r = streaming_request();
    r.retry.max_wait = std::chrono::milliseconds(0);
    try {
      run(std::move(r));
      ADD_FAILURE() << "no error for " << transport_error;
    } catch (const ProviderError& e) {
      EXPECT_EQ(e.http_status(), 0);
      EXPECT_EQ(e.error_type(), type);
    }
  }
}

}  // namespace

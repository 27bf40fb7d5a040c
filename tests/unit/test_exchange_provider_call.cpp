// The exchange's provider call on its own (src/exchange/provider_call.hpp): the answer as a
// priced, dated entry; which failures are retried and until when; the errors that say why; a
// caller that hung up; a relayed stream. The provider is a fake Model (no sockets).
#include "exchange/provider_call.hpp"

#include "cache/redactor.hpp"
#include "cache/run_blocking.hpp"
#include "llm_caching/errors.hpp"

#include "support/codec_fixtures.hpp"
#include "support/scripted_streaming_model.hpp"

#include <gtest/gtest.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "support/scripted_model.hpp"

namespace {

using namespace llm_caching;
namespace asio = boost::asio;
using namespace std::chrono_literals;

using llmc_test::fixture;

using StreamingFake = llmc_test::ScriptedStreamingModel;  // two chunks a stream

NativeResponse failure(int status, std::string transport_error = "",
                       TransportFailure kind = TransportFailure::none) {
  NativeResponse r;
  r.status = status;
  if (status != 0) r.body = R"({"error": {"message": "try later", "type": "server_error"}})";
  r.transport_error = std::move(transport_error);
  r.transport_failure = kind;
  return r;
}

class ProviderCall : public ::testing::Test {
 protected:
  llm_caching::testing::ScriptedModel model_;
  exchange::FlightTable flights_;
  exchange::Clock clock_ = [] { return std::int64_t{1'700'000'000'000}; };
  ModelCosts price_{.cost_per_million_input_tokens = 2.5, .cost_per_million_output_tokens = 10.0};
  const std::string key_ = "llm-caching:v1::key";
  cache::Redactor redact_;  // LLM_CACHE_REDACT's patterns: none unless a test sets some

  static exchange::ExchangeRequest request(std::chrono::milliseconds max_wait = 10'000ms) {
    exchange::ExchangeRequest r;
    r.native.provider = Provider::openai;
    r.native.model = "gpt-4o-mini";
    r.native.body = {
        {"model", "gpt-4o-mini"},
        {"messages", boost::json::array{boost::json::object{{"role", "user"}, {"content", "Hi"}}}}};
    r.retry.initial_wait = 1ms;
    r.retry.max_wait = max_wait;
    return r;
  }
  exchange::ProviderAnswer call(Model& model, const exchange::ExchangeRequest& r) {
    return cache::run_blocking(
        exchange::call_provider(model, r, key_, price_, clock_, flights_, redact_));
  }
  exchange::ProviderAnswer call(const exchange::ExchangeRequest& r) { return call(model_, r); }
  /// The ProviderError that `r` ends with (a failed expectation when it answers).
  ProviderError provider_error(const exchange::ExchangeRequest& r) {
    try {
      call(r);
    } catch (const ProviderError& e) {
      return e;
    }
    ADD_FAILURE() << "no ProviderError";
    return ProviderError("none", -1, "", "");
  }
};

TEST_F(ProviderCall, AnAnswerBecomesAPricedDatedEntry) {
  auto r = request();
  r.ttl = 1h;
  const exchange::ProviderAnswer answer = call(r);
  ASSERT_NE(answer.entry, nullptr);
  const core::CacheEntry& entry = *answer.entry;
  EXPECT_EQ(entry.provider, "openai");
  EXPECT_EQ(entry.model, "gpt-4o-mini");
  EXPECT_EQ(entry.created_at_ms, 1'700'000'000'000);
  EXPECT_EQ(entry.ttl_ms, 3'600'000);
  EXPECT_NE(entry.response.find(llm_caching::testing::ScriptedModel::answer_text("Hi")),
            std::string::npos);
  EXPECT_TRUE(entry.stream.empty());
  EXPECT_EQ(entry.usage.requests, 1);
  EXPECT_GT(entry.cost_nano_usd, 0);
  EXPECT_EQ(entry.cost_nano_usd, cost_nano_usd(price_, entry.usage));
  EXPECT_EQ(answer.attempts, 1);
  EXPECT_FALSE(answer.relayed);
}

TEST_F(ProviderCall, TheEntryNamesTheTaskAndKeepsTheRequestScrubbed) {
  auto r = request();
  r.native.body["messages"].as_array()[0].as_object()["content"] = "my key is tok-4242";
  r.task = std::string("summaries\n") + std::string(200, 'x');
  const core::CacheEntry plain = *call(r).entry;
  EXPECT_EQ(plain.task, "summaries?" + std::string(core::kMaxEntryTaskBytes - 10, 'x'))
      << "as core::entry_task_name keeps it";
  EXPECT_NE(plain.request.find("my key is tok-4242"), std::string::npos) << "as keyed";
  EXPECT_EQ(plain.api, "chat");

  redact_ = cache::Redactor({"tok-[0-9]+"}, "LLM_CACHE_REDACT");
  r.task.clear();
  const core::CacheEntry scrubbed = *call(r).entry;
  EXPECT_EQ(scrubbed.request.find("tok-4242"), std::string::npos) << scrubbed.request;
  EXPECT_NE(scrubbed.request.find("my key is [REDACTED]"), std::string::npos);
  EXPECT_EQ(scrubbed.task, "") << "no task given: the entry names none (format 3)";
}

TEST_F(ProviderCall, RetryableFailuresAreRetriedUntilTheProviderAnswers) {
  for (const int status : {0, 408, 429, 500, 502, 503, 504, 529}) model_.script(failure(status));
  const exchange::ProviderAnswer answer = call(request());
  EXPECT_EQ(answer.attempts, 9);
  EXPECT_EQ(model_.calls(), 9);
  ASSERT_NE(answer.entry, nullptr);
}

TEST_F(ProviderCall, ARequestTheProviderRefusesIsNotRetried) {
  for (const int status : {400, 401, 403, 404, 422, 501}) {
    SCOPED_TRACE(status);
    const int calls = model_.calls();
    NativeResponse refused{status, R"({"error": {"message": "bad request", "type": "invalid"}})"};
    model_.script(refused);
    const ProviderError e = provider_error(request());
    EXPECT_EQ(e.http_status(), status);
    EXPECT_EQ(e.error_type(), "invalid");
    EXPECT_NE(std::string(e.what()).find("openai gpt-4o-mini: HTTP " + std::to_string(status)),
              std::string::npos)
        << e.what();
    EXPECT_EQ(model_.calls(), calls + 1);
  }
}

TEST_F(ProviderCall, RateLimitsPastMaxWaitAreARateLimitErrorThatSaysHowLong) {
  for (const int status : {429, 529}) {
    SCOPED_TRACE(status);
    for (int i = 0; i < 2; ++i) {
      NativeResponse limited = failure(status);
      limited.retry_after = 2ms;
      model_.script(limited);
    }
    try {
      call(request(3ms));  // the second 2 ms wait would pass max_wait
      ADD_FAILURE() << "answered";
    } catch (const RateLimitError& e) {
      EXPECT_EQ(e.attempts(), 2);
      EXPECT_EQ(e.waited(), 2ms);
      EXPECT_EQ(e.last_retry_after(), 2ms);
      EXPECT_NE(std::string(e.what()).find("rate limited (HTTP " + std::to_string(status)),
                std::string::npos)
          << e.what();
    }
  }
}

TEST_F(ProviderCall, AProviderThatStaysDownIsAProviderErrorWithItsStatus) {
  model_.script(failure(503));
  const ProviderError e = provider_error(request(0ms));
  EXPECT_EQ(e.http_status(), 503);
  EXPECT_NE(std::string(e.what()).find("after 1 attempts"), std::string::npos) << e.what();
}

TEST_F(ProviderCall, NoResponseIsATimeoutOrATransportError) {
  model_.script(failure(0, "no byte for 400 ms", TransportFailure::timeout));
  const ProviderError timed_out = provider_error(request(0ms));
  EXPECT_EQ(timed_out.http_status(), 0);
  EXPECT_EQ(timed_out.error_type(), "timeout");

  model_.script(failure(0, "connection refused"));
  const ProviderError unreachable = provider_error(request(0ms));
  EXPECT_EQ(unreachable.http_status(), 0);
  EXPECT_EQ(unreachable.error_type(), "transport");
  EXPECT_NE(std::string(unreachable.what()).find("no response"), std::string::npos);
}

TEST_F(ProviderCall, ACertificateThatDoesNotVerifyIsFinal) {
  model_.script(failure(0, "certificate verify failed", TransportFailure::tls_verify));
  model_.script(failure(0, "certificate verify failed", TransportFailure::tls_verify));
  const ProviderError e = provider_error(request());  // a retry budget left, and no retry
  EXPECT_EQ(e.error_type(), "tls_verify");
  EXPECT_EQ(model_.calls(), 1);
}

TEST_F(ProviderCall, ACallerThatHungUpGetsNoMoreRetries) {
  model_.script(failure(503));
  model_.script(failure(503));
  auto r = request();
  r.caller_gone = [] { return true; };
  const ProviderError e = provider_error(r);
  EXPECT_EQ(e.error_type(), "abandoned");
  EXPECT_EQ(model_.calls(), 1);
}

TEST_F(ProviderCall, ACallerThatHungUpIsStillAnsweredWhenAnotherCallerWaitsForIt) {
  model_.script(failure(503));
  model_.script(failure(503));
  auto r = request();
  r.caller_gone = [] { return true; };
  asio::io_context waiters;
  auto flight = flights_.join(key_).first;
  NativeRequest waiting = request().native;
  flight->async_wait(waiting, asio::bind_executor(waiters, [](boost::system::error_code,
                                                              exchange::FlightOutcome) {}));
  EXPECT_TRUE(exchange::abandoned(r, flights_, "another key"));
  EXPECT_FALSE(exchange::abandoned(r, flights_, key_));
  const exchange::ProviderAnswer answer = call(r);
  EXPECT_EQ(answer.attempts, 3);
  exchange::FlightGuard(flights_, flight, key_).finish(answer.entry, nullptr, false);
  waiters.run();
}

TEST_F(ProviderCall, AStreamedAnswerIsRelayedAsItArrivesAndStoredWithItsStream) {
  StreamingFake model;
  const std::string sse = fixture("openai_stream.sse");
  ASSERT_FALSE(sse.empty());
  model.replies.push_back({200, sse, true});
  auto r = request();
  r.native.stream = true;
  std::string relayed;
  r.relay = [&](std::string_view chunk) { relayed += chunk; };
  const exchange::ProviderAnswer answer = call(model, r);
  EXPECT_TRUE(answer.relayed);
  EXPECT_EQ(relayed, sse);
  EXPECT_EQ(model.streamed_calls, 1);
  EXPECT_EQ(answer.entry->stream, sse);
  EXPECT_EQ(answer.entry->response.front(), '{');  // the stream made whole
  EXPECT_GT(answer.entry->usage.input_tokens, 0);
}

TEST_F(ProviderCall, OnceBytesWereRelayedAFailureIsNotRetried) {
  StreamingFake model;
  NativeResponse broke_off{0, "data: {\"partial\": true}\n\n"};
  broke_off.transport_error = "connection reset";
  model.replies.push_back(broke_off);
  model.replies.push_back({200, fixture("openai_stream.sse"), true});
  auto r = request();
  r.native.stream = true;
  r.relay = [](std::string_view) {};
  try {
    call(model, r);
    ADD_FAILURE() << "answered";
  } catch (const ProviderError& e) {
    EXPECT_NE(std::string(e.what()).find("in the middle of a relayed stream"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(model.calls, 1);  // status 0 is retryable, but a second answer cannot follow
}

TEST_F(ProviderCall, AnAnswerThatIsGarbageOrRefusedByValidateIsNotReturned) {
  model_.script(NativeResponse{200, "not json"});
  EXPECT_THROW(call(request()), ProviderError);

  auto r = request();
  r.validate = [](const core::CacheEntry&) { throw std::invalid_argument("not the schema"); };
  EXPECT_THROW(call(r), std::invalid_argument);
}

TEST(ProviderStatus, OnlyFailuresThatMayPassAreRetryable) {
  for (const int status : {0, 408, 429, 500, 502, 503, 504, 529}) {
    EXPECT_TRUE(exchange::is_retryable_status(status)) << status;
  }
  for (const int status : {200, 301, 400, 401, 403, 404, 409, 413, 422, 501, 505, 530}) {
    EXPECT_FALSE(exchange::is_retryable_status(status)) << status;
  }
}

}  // namespace

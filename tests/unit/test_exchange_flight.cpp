// In-process single-flight at the exchange: a waiter's request is parked while it waits
// (docs/SINGLE_FLIGHT.md) and must come back whole when the flight is handed over to it.
#include "exchange/exchange.hpp"

#include "cache/memory_backend.hpp"

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/scripted_model.hpp"

namespace {

using namespace llm_caching;
namespace asio = boost::asio;
using namespace std::chrono_literals;

/// Keeps a copy of every request it is sent, then answers as ScriptedModel does.
class RecordingModel final : public llm_caching::testing::ScriptedModel {
 public:
  std::vector<NativeRequest> requests;
  asio::awaitable<NativeResponse> call(const NativeRequest& request) override {
    requests.push_back(request);
    co_return co_await ScriptedModel::call(request);
  }
};

/// An OpenAI request for `prompt`; `user` is left out of the cache key, so requests that differ
/// only in it share one flight while their bodies stay different.
exchange::ExchangeRequest request_from(const std::string& user, const std::string& prompt) {
  exchange::ExchangeRequest r;
  r.native.provider = Provider::openai;
  r.native.model = "gpt-4o-mini";
  r.native.body = {
      {"model", "gpt-4o-mini"},
      {"user", user},
      {"messages", boost::json::array{boost::json::object{{"role", "user"}, {"content", prompt}}}}};
  return r;
}

struct Outcome {
  std::optional<exchange::ExchangeResult> result;
  std::exception_ptr error;
};

std::shared_ptr<cache::TieredCache> memory_tiers() {
  return std::make_shared<cache::TieredCache>(
      std::make_shared<cache::MemoryBackend>(MemoryOptions{}), 64 * kMiB, false);
}

auto record_into(Outcome& outcome) {
  return [&outcome](std::exception_ptr error, exchange::ExchangeResult result) {
    outcome.error = error;
    if (!error) outcome.result = std::move(result);
  };
}

TEST(ExchangeFlight, AWaiterHandedTheCallSendsItsOwnRequestWhole) {
  exchange::Exchange exchange(memory_tiers());
  RecordingModel model;
  model.set_delay(300ms);
  asio::io_context io;

  asio::cancellation_signal leader_signal;
  Outcome leader;
  asio::co_spawn(io, exchange.run(model, request_from("leader", "Same")),
                 asio::bind_cancellation_slot(leader_signal.slot(), record_into(leader)));
  const std::vector<std::string> waiter_users = {"w1", "w2", "w3"};
  std::vector<Outcome> waiters(waiter_users.size());
  for (std::size_t i = 0; i < waiter_users.size(); ++i) {
    asio::co_spawn(io, exchange.run(model, request_from(waiter_users[i], "Same")),
                   record_into(waiters[i]));
  }
  // Cancel the leader once the waiters have joined its flight (the model answers after 300 ms).
  asio::steady_timer cancel_soon(io, 50ms);
  cancel_soon.async_wait(
      [&](boost::system::error_code) { leader_signal.emit(asio::cancellation_type::terminal); });
  io.run();

  ASSERT_TRUE(leader.error);  // operation_aborted
  ASSERT_EQ(model.requests.size(), 2U);
  EXPECT_EQ(model.requests[0].body.at("user").as_string(), "leader");
  // The second call is a waiter's own request, as that waiter built it: its own user, its
  // messages and model, nothing emptied by the wait.
  const NativeRequest& taken_over = model.requests[1];
  const std::string user(taken_over.body.at("user").as_string());
  EXPECT_TRUE(std::set<std::string>(waiter_users.begin(), waiter_users.end()).contains(user));
  EXPECT_EQ(taken_over.model, "gpt-4o-mini");
  EXPECT_EQ(taken_over.body, request_from(user, "Same").native.body);

  int billed = 0;
  int coalesced = 0;
  for (const Outcome& w : waiters) {
    ASSERT_FALSE(w.error);
    ASSERT_TRUE(w.result && w.result->entry);
    EXPECT_NE(
        w.result->entry->response.find(llm_caching::testing::ScriptedModel::answer_text("Same")),
        std::string::npos);
    if (w.result->cost_nano_usd > 0) ++billed;
    if (w.result->coalesced) ++coalesced;
  }
  EXPECT_EQ(billed, 1);  // the waiter that took over paid; the two others shared its answer
  EXPECT_EQ(coalesced, 2);
}

TEST(ExchangeFlight, WaitersAnsweredByTheLeaderAreBilledNothingAndTheLeaderOnce) {
  exchange::Exchange exchange(memory_tiers());
  RecordingModel model;
  model.set_delay(50ms);
  asio::io_context io;
  std::vector<Outcome> calls(20);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    asio::co_spawn(io, exchange.run(model, request_from("u" + std::to_string(i), "Same")),
                   record_into(calls[i]));
  }
  io.run();

  ASSERT_EQ(model.requests.size(), 1U);
  int coalesced = 0;
  for (const Outcome& c : calls) {
    ASSERT_FALSE(c.error);
    ASSERT_TRUE(c.result && c.result->entry);
    if (c.result->coalesced) {
      ++coalesced;
      EXPECT_EQ(c.result->cost_nano_usd, 0);
      EXPECT_EQ(c.result->avoided_nano_usd, c.result->entry->cost_nano_usd);
    }
  }
  EXPECT_EQ(coalesced, 19);
}

}  // namespace

// The exchange's in-process flights on their own (src/exchange/flight.hpp, docs/SINGLE_FLIGHT.md
// "In one process"): who leads and who joins, how a flight ends for its waiters (answered,
// failed, handed over), a cancelled wait, and where waiters resume. No cache, no model.
#include "exchange/flight.hpp"

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/system_error.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace llm_caching;
using exchange::Flight;
using exchange::FlightGuard;
using exchange::FlightOutcome;
using exchange::FlightTable;
namespace asio = boost::asio;

NativeRequest request_of(const std::string& user) {
  NativeRequest r;
  r.provider = Provider::openai;
  r.model = "gpt-4o-mini";
  r.body = {{"model", "gpt-4o-mini"}, {"user", user}};
  return r;
}

std::shared_ptr<const core::CacheEntry> answer(const std::string& text) {
  auto entry = std::make_shared<core::CacheEntry>();
  entry->response = text;
  return entry;
}

/// One waiter's wait: its request (parked while it waits) and how the wait ended.
struct Wait {
  NativeRequest request;
  std::optional<boost::system::error_code> ec;  // set once resumed
  FlightOutcome outcome{};
};

/// Starts `wait` on `flight` with a handler that resumes on `io`.
void start_wait(Flight& flight, Wait& wait, asio::io_context& io) {
  flight.async_wait(wait.request,
                    asio::bind_executor(io, [&wait](boost::system::error_code ec, FlightOutcome o) {
                      wait.ec = ec;
                      wait.outcome = o;
                    }));
}

TEST(FlightTable, TheFirstCallerLeadsAndTheOthersJoinUntilItsFlightEnds) {
  FlightTable table;
  const std::string key = "k";
  auto [leader, leads] = table.join(key);
  EXPECT_TRUE(leads);
  auto [joined, joiner_leads] = table.join(key);
  EXPECT_FALSE(joiner_leads);
  EXPECT_EQ(joined, leader);
  EXPECT_TRUE(table.join("another key").second);  // keys are independent
  EXPECT_EQ(table.start(key), nullptr);           // a refresh does not start beside a flight

  FlightGuard(table, leader, key).finish(answer("a"), nullptr, false);
  auto [next, next_leads] = table.join(key);
  EXPECT_TRUE(next_leads);
  EXPECT_NE(next, leader);
}

TEST(FlightTable, AnEndedFlightDoesNotRemoveItsSuccessor) {
  FlightTable table;
  const std::string key = "k";
  auto first = table.join(key).first;
  table.remove(key, first);
  auto second = table.start(key);
  ASSERT_NE(second, nullptr);
  table.remove(key, first);  // the first flight's late end
  EXPECT_FALSE(table.join(key).second);
  EXPECT_EQ(table.join(key).first, second);
}

TEST(FlightTable, KnowsWhetherACallerWaitsForAKey) {
  FlightTable table;
  asio::io_context io;
  EXPECT_FALSE(table.has_waiters("k"));  // no flight
  auto flight = table.join("k").first;
  EXPECT_FALSE(table.has_waiters("k"));  // a leader alone
  Wait wait{request_of("w")};
  start_wait(*flight, wait, io);
  EXPECT_TRUE(table.has_waiters("k"));
  FlightGuard(table, flight, "k").finish(answer("a"), nullptr, false);
  io.run();
  EXPECT_FALSE(table.has_waiters("k"));
}

TEST(Flight, WaitersGetTheLeadersAnswerAndNotTheirRequestsBack) {
  FlightTable table;
  asio::io_context io;
  auto flight = table.join("k").first;
  std::vector<Wait> waits(5);
  for (std::size_t i = 0; i < waits.size(); ++i) {
    waits[i].request = request_of("w" + std::to_string(i));
    start_wait(*flight, waits[i], io);
  }
  io.poll();
  for (const Wait& w : waits) EXPECT_FALSE(w.ec) << "resumed before the flight ended";

  const auto entry = answer("the answer");
  FlightGuard(table, flight, "k").finish(entry, nullptr, false);
  io.run();
  for (const Wait& w : waits) {
    ASSERT_TRUE(w.ec);
    EXPECT_FALSE(*w.ec);
    EXPECT_EQ(w.outcome, FlightOutcome::answered);
    EXPECT_TRUE(w.request.body.empty());  // parked, and freed with the wait
  }
  EXPECT_EQ(flight->entry, entry);
  EXPECT_FALSE(flight->error);
  EXPECT_FALSE(flight->from_cache);
}

TEST(Flight, ALeaderThatEndsUnfinishedHandsTheFlightOverWithEachRequestBackWhole) {
  FlightTable table;
  asio::io_context io;
  std::vector<Wait> waits(3);
  const std::string key = "k";  // the guard keeps a reference to it
  {
    FlightGuard guard(table, table.join(key).first, key);
    auto flight = table.join(key).first;
    for (std::size_t i = 0; i < waits.size(); ++i) {
      waits[i].request = request_of("w" + std::to_string(i));
      start_wait(*flight, waits[i], io);
    }
  }  // the leader's frame destroyed while suspended
  io.run();
  for (std::size_t i = 0; i < waits.size(); ++i) {
    ASSERT_TRUE(waits[i].ec);
    EXPECT_FALSE(*waits[i].ec);
    EXPECT_EQ(waits[i].outcome, FlightOutcome::handed_over);
    EXPECT_EQ(waits[i].request.body, request_of("w" + std::to_string(i)).body);
  }
  EXPECT_TRUE(table.join(key).second);  // the first to come back leads a new flight
}

TEST(Flight, ALeaderCancelledWithOperationAbortedHandsTheFlightOver) {
  FlightTable table;
  asio::io_context io;
  auto flight = table.join("k").first;
  Wait wait{request_of("w")};
  start_wait(*flight, wait, io);
  FlightGuard(table, flight, "k")
      .finish(answer("ignored"),
              std::make_exception_ptr(boost::system::system_error(asio::error::operation_aborted)),
              true);
  io.run();
  EXPECT_EQ(wait.outcome, FlightOutcome::handed_over);
  EXPECT_EQ(flight->entry, nullptr);
  EXPECT_FALSE(flight->error);
  EXPECT_FALSE(flight->from_cache);
}

TEST(Flight, ALeadersErrorFailsEveryWaiterAndAnL2FindIsAHitOnlyWithoutOne) {
  FlightTable table;
  asio::io_context io;
  auto failing = table.join("failing").first;
  Wait failed{request_of("w")};
  start_wait(*failing, failed, io);
  FlightGuard(table, failing, "failing")
      .finish(nullptr, std::make_exception_ptr(std::runtime_error("HTTP 400")), true);
  io.run();
  EXPECT_EQ(failed.outcome, FlightOutcome::failed);
  ASSERT_TRUE(failing->error);
  EXPECT_THROW(std::rethrow_exception(failing->error), std::runtime_error);
  EXPECT_FALSE(failing->from_cache);

  auto found = table.join("found").first;
  FlightGuard(table, found, "found").finish(answer("from the L2"), nullptr, true);
  EXPECT_TRUE(found->from_cache);
}

TEST(Flight, ACancelledWaitEndsThatWaiterOnlyWithItsRequestBack) {
  FlightTable table;
  asio::io_context io;
  auto flight = table.join("k").first;
  asio::cancellation_signal signal;
  Wait cancelled{request_of("cancelled")};
  flight->async_wait(
      cancelled.request,
      asio::bind_cancellation_slot(
          signal.slot(), asio::bind_executor(io, [&](boost::system::error_code ec, FlightOutcome) {
            cancelled.ec = ec;
          })));
  Wait other{request_of("other")};
  start_wait(*flight, other, io);

  signal.emit(asio::cancellation_type::terminal);
  io.poll();  // not run(): the other waiter's tracked work keeps the io_context running
  ASSERT_TRUE(cancelled.ec);
  EXPECT_EQ(*cancelled.ec, asio::error::operation_aborted);
  EXPECT_EQ(cancelled.request.body, request_of("cancelled").body);
  EXPECT_FALSE(other.ec);  // still waiting
  EXPECT_TRUE(flight->has_waiters());

  io.restart();
  FlightGuard(table, flight, "k").finish(answer("a"), nullptr, false);
  io.run();
  ASSERT_TRUE(other.ec);
  EXPECT_EQ(other.outcome, FlightOutcome::answered);
}

TEST(Flight, AWaitOnAnEndedFlightCompletesAtOnceWithItsOutcome) {
  FlightTable table;
  asio::io_context io;
  auto flight = table.join("k").first;
  FlightOutcome outcome{};
  EXPECT_FALSE(flight->is_over(outcome));
  FlightGuard(table, flight, "k")
      .finish(nullptr, std::make_exception_ptr(std::logic_error("x")), false);
  ASSERT_TRUE(flight->is_over(outcome));
  EXPECT_EQ(outcome, FlightOutcome::failed);
  Wait late{request_of("late")};
  start_wait(*flight, late, io);
  io.run();
  ASSERT_TRUE(late.ec);
  EXPECT_EQ(late.outcome, FlightOutcome::failed);
}

TEST(Flight, EachWaiterResumesOnItsOwnExecutor) {
  FlightTable table;
  auto flight = table.join("k").first;
  constexpr int kContexts = 3;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<Wait> waits(2 * kContexts);
  // Not vector<bool>: its bits share words, which waiters on different threads would both write.
  std::vector<char> on_its_own(waits.size(), 0);
  for (int c = 0; c < kContexts; ++c) contexts.push_back(std::make_unique<asio::io_context>());
  for (std::size_t i = 0; i < waits.size(); ++i) {
    asio::io_context& io = *contexts[i % kContexts];
    waits[i].request = request_of("w" + std::to_string(i));
    flight->async_wait(
        waits[i].request,
        asio::bind_executor(io, [&, i](boost::system::error_code ec, FlightOutcome outcome) {
          waits[i].ec = ec;
          waits[i].outcome = outcome;
          on_its_own[i] = io.get_executor().running_in_this_thread() ? 1 : 0;
        }));
  }
  // Each io_context runs on its own thread; a waiter's tracked work keeps its context running
  // until it has resumed.
  std::vector<std::thread> threads;
  for (auto& io : contexts) threads.emplace_back([&io] { io->run(); });
  FlightGuard(table, flight, "k").finish(answer("a"), nullptr, false);
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < waits.size(); ++i) {
    ASSERT_TRUE(waits[i].ec) << i;
    EXPECT_EQ(waits[i].outcome, FlightOutcome::answered) << i;
    EXPECT_EQ(on_its_own[i], 1) << i;
  }
}

}  // namespace

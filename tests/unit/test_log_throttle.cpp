// core::LogThrottle: the "logged at most every 30 s" of the cache's backend failures and of the
// write-behind's overflow; core::LogOncePerName: the gateway's one warning per unpriced model;
// core::printable: what of a caller's name reaches a log line.
#include "core/log_throttle.hpp"

#include "core/printable.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace llm_caching::core {
namespace {

using namespace std::chrono_literals;

TEST(LogThrottle, TheFirstCallLogsAndTheNextOnesWaitForTheInterval) {
  LogThrottle throttle(1h);
  EXPECT_TRUE(throttle.allow());
  EXPECT_FALSE(throttle.allow());
  EXPECT_FALSE(throttle.allow());

  LogThrottle every_time(0ms);
  EXPECT_TRUE(every_time.allow());
  EXPECT_TRUE(every_time.allow());
}

TEST(LogThrottle, OfCallersThatRaceOneLogs) {
  LogThrottle throttle(1h);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] { allowed += throttle.allow() ? 1 : 0; });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(allowed.load(), 1);
}

TEST(LogOncePerName, EachNameIsLoggedOnceAndPastTheLimitOneLineSaysTheNamesStop) {
  LogOncePerName once(2);
  EXPECT_EQ(once.see("a"), LogOncePerName::Verdict::log);
  EXPECT_EQ(once.see("a"), LogOncePerName::Verdict::skip);
  EXPECT_EQ(once.see("b"), LogOncePerName::Verdict::log);
  EXPECT_EQ(once.see("c"), LogOncePerName::Verdict::log_that_names_stop);
  EXPECT_EQ(once.see("d"), LogOncePerName::Verdict::skip);
  EXPECT_EQ(once.see("c"), LogOncePerName::Verdict::skip);  // not remembered, never logged again
  EXPECT_EQ(once.see("a"), LogOncePerName::Verdict::skip);
}

TEST(LogOncePerName, OfCallersThatRaceWithOneNameOneLogs) {
  LogOncePerName once(8);
  std::atomic<int> logged{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 1000; ++j) {
        if (once.see("same") == LogOncePerName::Verdict::log) ++logged;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(logged.load(), 1);
}

TEST(Printable, ControlAndNonAsciiBytesBecomeQuestionMarksAndLongTextIsCut) {
  EXPECT_EQ(printable("gpt-4o-mini"), "gpt-4o-mini");
  EXPECT_EQ(printable("evil\nFORGED line\r\t\x1b[31m"), "evil?FORGED line???[31m");
  EXPECT_EQ(printable("caf\xc3\xa9"), "caf??");  // UTF-8 bytes: not ASCII
  EXPECT_EQ(printable(std::string_view("a\0b", 3)), "a?b");
  EXPECT_EQ(printable("\x7f"), "?");
  EXPECT_EQ(printable(std::string(300, 'x')), std::string(200, 'x') + "...");
  EXPECT_EQ(printable("abcdef", 3), "abc...");
  EXPECT_EQ(printable("abc", 3), "abc");
  EXPECT_EQ(printable(""), "");
}

}  // namespace
}  // namespace llm_caching::core

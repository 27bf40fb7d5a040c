// core::LogThrottle: the "logged at most every 30 s" of the cache's backend failures and of the
// write-behind's overflow.
#include "core/log_throttle.hpp"

#include <gtest/gtest.h>

#include <atomic>
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

}  // namespace
}  // namespace llm_caching::core

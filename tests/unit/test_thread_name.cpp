// core::name_this_thread: the name a thread shows in `top -H`, `ps -L` and /proc; and
// core::make_this_thread_idle, which marks the thread for yield_if_idle. Its TU also makes
// spdlog's registry before main (core/thread_name.cpp).
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <pthread.h>
#include <sched.h>

#include <array>
#include <atomic>
#include <string>
#include <string_view>
#include <thread>

#include "core/thread_name.hpp"

namespace {

std::string name_of_this_thread() {
  std::array<char, 64> name{};
  pthread_getname_np(pthread_self(), name.data(), name.size());
  return name.data();
}

/// The name a new thread reads back after naming itself `name`.
std::string name_seen_by_a_thread_named(std::string_view name) {
  std::string seen;
  std::thread([&] {
    llm_caching::core::name_this_thread(name);
    seen = name_of_this_thread();
  }).join();
  return seen;
}

TEST(ThreadName, NamesTheCallingThreadOnly) {
  const std::string before = name_of_this_thread();
  EXPECT_EQ(name_seen_by_a_thread_named("llmc-worker"), "llmc-worker");
  EXPECT_EQ(name_of_this_thread(), before);
}

TEST(ThreadName, ANameLongerThanLinuxKeepsIsCutTo15Bytes) {
  EXPECT_EQ(name_seen_by_a_thread_named("llmc-a-name-longer-than-fifteen"), "llmc-a-name-lon");
}

TEST(IdleThread, OnlyAThreadMadeIdleIsIdleAndYields) {
  int policy = -1;
  bool marked = false;
  bool made_idle = false;
  std::thread([&] {
    made_idle = llm_caching::core::make_this_thread_idle();
    policy = sched_getscheduler(0);
    marked = llm_caching::core::this_thread_is_idle;
    llm_caching::core::yield_if_idle();  // a sched_yield: returns at once on an idle machine
  }).join();
  ASSERT_TRUE(made_idle);
  EXPECT_EQ(policy, SCHED_IDLE);
  EXPECT_TRUE(marked);
  // This thread, and any other not made idle, keeps its policy and does not yield.
  EXPECT_FALSE(llm_caching::core::this_thread_is_idle);
  EXPECT_NE(sched_getscheduler(0), SCHED_IDLE);
}

// Each test runs in a process of its own (ctest), so these logs are the process's first. Made
// lazily by the first of two threads, spdlog's registry was a data race under ThreadSanitizer
// (the tsan preset runs this test): the order the static's guard gives is checked inside
// libspdlog, which TSan does not instrument. Made before main, it is ordered before both.
TEST(LogRegistry, IsMadeBeforeMainSoThreadsWhoseLogsAreTheFirstNeedNoOrder) {
  std::atomic<int> arrived{0};
  std::array<spdlog::logger*, 2> seen{};
  auto log_first = [&](std::size_t i) {
    arrived.fetch_add(1);
    while (arrived.load() < 2) std::this_thread::yield();  // both log at once
    spdlog::debug("below the default level: checked, not printed");
    seen[i] = spdlog::default_logger_raw();
  };
  std::thread first(log_first, 0);
  std::thread second(log_first, 1);
  first.join();
  second.join();
  ASSERT_NE(seen[0], nullptr);
  EXPECT_EQ(seen[0], seen[1]);
}

}  // namespace

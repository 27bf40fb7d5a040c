// core::name_this_thread: the name a thread shows in `top -H`, `ps -L` and /proc.
#include <gtest/gtest.h>

#include <pthread.h>

#include <array>
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

}  // namespace

// core::name_this_thread: the name a thread shows in `top -H`, `ps -L` and /proc.
#include <gtest/gtest.h>

#include <pthread.h>

#include <array>
#include <string>
#include <thread>

#include "core/thread_name.hpp"

namespace {

std::string name_of_this_thread() {
  std::array<char, 64> name{};
  pthread_getname_np(pthread_self(), name.data(), name.size());
  return name.data();
}

TEST(ThreadName, NamesTheCallingThreadOnly) {
  const std::string before = name_of_this_thread();
  std::string seen;
  std::thread([&] {
    llm_caching::core::name_this_thread("llmc-worker");
    seen = name_of_this_thread();
  }).join();
  EXPECT_EQ(seen, "llmc-worker");
  EXPECT_EQ(name_of_this_thread(), before);
}

TEST(ThreadName, ANameLongerThanLinuxKeepsIsCutTo15Bytes) {
  std::string seen;
  std::thread([&] {
    llm_caching::core::name_this_thread("llmc-a-name-longer-than-fifteen");
    seen = name_of_this_thread();
  }).join();
  EXPECT_EQ(seen, "llmc-a-name-lon");
}

}  // namespace

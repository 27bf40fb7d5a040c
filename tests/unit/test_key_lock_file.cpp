// The SQLite cache's cross-process key locks (cache/key_lock_file.hpp), taken and released from
// several threads of one process, seen from a second descriptor of the same file (what another
// process would see).
#include "cache/key_lock_file.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "support/test_env.hpp"

namespace llm_caching::cache {
namespace {

using namespace std::chrono_literals;

TEST(KeyLockFile, ThreadsTakingAndReleasingOneKeyNeverLeaveItFreeWhileOneHoldsIt) {
  // unlock releases the file lock outside the object's mutex (its caller may be an idle-priority
  // thread). A try_lock that ran between the unlock's bookkeeping and its fcntl, and took the
  // byte, would then lose it to that fcntl: it would hold the key while another process could
  // take it too.
  const llmc_test::TempDir dir;
  KeyLockFile locks(dir.path() / "cache.db-locks");
  KeyLockFile other_process(dir.path() / "cache.db-locks");
  std::atomic<int> taken{0};
  std::atomic<int> free_while_held{0};
  const auto take_and_release = [&](const std::string& token) {
    for (int i = 0; i < 20'000; ++i) {
      if (!locks.try_lock("key", token, 60s, 0)) continue;
      ++taken;
      if (other_process.try_lock("key", "other", 60s, 0)) {
        ++free_while_held;
        other_process.unlock("key", "other");
      }
      locks.unlock("key", token);
    }
  };
  std::thread first(take_and_release, "first");
  std::thread second(take_and_release, "second");
  first.join();
  second.join();
  EXPECT_GT(taken.load(), 0);
  EXPECT_EQ(free_while_held.load(), 0);
  // Nothing is left half-released: the other descriptor can take the key, and then this one
  // cannot.
  EXPECT_TRUE(other_process.try_lock("key", "other", 60s, 0));
  EXPECT_FALSE(locks.try_lock("key", "first", 60s, 0));
  EXPECT_TRUE(locks.is_locked("key", 0));
}

TEST(KeyLockFile, AReleasedKeyIsFreeForAnotherDescriptorAndAWrongTokenReleasesNothing) {
  const llmc_test::TempDir dir;
  KeyLockFile locks(dir.path() / "cache.db-locks");
  KeyLockFile other_process(dir.path() / "cache.db-locks");
  ASSERT_TRUE(locks.try_lock("key", "token", 60s, 0));
  EXPECT_FALSE(other_process.try_lock("key", "other", 60s, 0));
  locks.unlock("key", "not-the-token");
  EXPECT_FALSE(other_process.try_lock("key", "other", 60s, 0));
  EXPECT_TRUE(other_process.is_locked("key", 0));
  locks.unlock("key", "token");
  EXPECT_FALSE(other_process.is_locked("key", 0));
  EXPECT_TRUE(other_process.try_lock("key", "other", 60s, 0));
  EXPECT_FALSE(locks.try_lock("key", "token", 60s, 0));
}

}  // namespace
}  // namespace llm_caching::cache

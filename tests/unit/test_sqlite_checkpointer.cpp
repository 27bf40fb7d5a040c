// When the SQLite backend checkpoints its WAL (cache/sqlite_checkpointer.hpp): the background
// thread is asked once per kWalPages new pages, and past kRestartWalPages the committing
// connection checkpoints itself. Pure: the thread is exercised by test_sqlite_backend.cpp.
#include "cache/sqlite_checkpointer.hpp"

#include <gtest/gtest.h>

namespace llm_caching::cache {
namespace {

using Action = WalCheckpointPolicy::Action;
constexpr int kPages = WalCheckpointPolicy::kWalPages;
constexpr int kRestart = WalCheckpointPolicy::kRestartWalPages;

TEST(WalCheckpointPolicy, ASmallWalAsksForNothing) {
  WalCheckpointPolicy policy;
  EXPECT_EQ(policy.after_commit(1), Action::none);
  EXPECT_EQ(policy.after_commit(kPages - 1), Action::none);
}

TEST(WalCheckpointPolicy, AsksTheThreadOncePerThousandNewPages) {
  WalCheckpointPolicy policy;
  EXPECT_EQ(policy.after_commit(kPages), Action::ask_background);
  // Not after every commit past the threshold: each checkpoint costs two fsyncs.
  EXPECT_EQ(policy.after_commit(kPages + 10), Action::none);
  EXPECT_EQ(policy.after_commit(2 * kPages - 1), Action::none);
  EXPECT_EQ(policy.after_commit(2 * kPages), Action::ask_background);
}

TEST(WalCheckpointPolicy, AWalThatRestartedCountsFromTheStartAgain) {
  WalCheckpointPolicy policy;
  EXPECT_EQ(policy.after_commit(kPages), Action::ask_background);
  EXPECT_EQ(policy.after_commit(5), Action::none);  // the WAL was reset by a checkpoint
  EXPECT_EQ(policy.after_commit(kPages), Action::ask_background);
}

TEST(WalCheckpointPolicy, AWalTheThreadCannotKeepDownIsCheckpointedByTheCommitter) {
  WalCheckpointPolicy policy;
  EXPECT_EQ(policy.after_commit(kRestart), Action::checkpoint_here);
  EXPECT_EQ(policy.after_commit(kRestart + 1), Action::checkpoint_here);
}

}  // namespace
}  // namespace llm_caching::cache

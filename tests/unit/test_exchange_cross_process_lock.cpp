// The exchange's cross-process lock on its own (src/exchange/cross_process_lock.hpp,
// docs/SINGLE_FLIGHT.md "Across processes"): a free lock is taken, an answer already in the L2
// is served, a waiter gets the holder's answer or takes over its lock, the bounded wait, the
// rounds of a waiter, a lock store that is down, and the release of a held lock. The other
// "process" is a second token on the same in-memory L2.
#include "exchange/cross_process_lock.hpp"

#include "cache/memory_backend.hpp"
#include "cache/run_blocking.hpp"
#include "llm_caching/errors.hpp"
#include "support/memory_backed_backend.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cctype>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace llm_caching;
using exchange::LockTurn;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

/// An in-memory L2 that counts its lock calls, remembers how long each wait for a release was
/// allowed to last, and can be told that its locks fail or that it signals releases.
class LockLedgerBackend final : public llmc_test::MemoryBackedBackend {
 public:
  bool locks_fail = false;
  bool notifies = false;
  std::vector<milliseconds> waits;  // wait_for_unlock's at_most, in order
  /// Runs at the start of each wait for a release (the other process's next move).
  std::function<void(std::size_t round)> on_wait;

  asio::awaitable<bool> try_lock(std::string k, std::string t, milliseconds ttl) override {
    if (locks_fail) throw CacheError("lock store down");
    co_return store.try_lock_now(k, t, ttl);
  }
  asio::awaitable<void> wait_for_unlock(std::string, milliseconds at_most) override {
    waits.push_back(at_most);
    if (on_wait) on_wait(waits.size());
    co_return;  // returns at once: the rounds are counted, not waited
  }
  bool notifies_unlock() const noexcept override { return notifies; }
};

class CrossProcessLock : public ::testing::Test {
 protected:
  std::shared_ptr<LockLedgerBackend> backend_ = std::make_shared<LockLedgerBackend>();
  cache::TieredCache tiers_{backend_, kMiB, false};
  std::function<std::int64_t()> now_ = cache::system_now_ms;
  const std::string key_ = "llm-caching:v1::key";
  const std::string lock_key_ = cache::TieredCache::lock_key(key_);

  LockTurn turn(bool l2_unread = false, milliseconds lock_wait = 60'000ms) {
    return cache::run_blocking(
        exchange::lock_across_processes(tiers_, key_, 30'000ms, lock_wait, now_, l2_unread));
  }
  /// The holder's answer, landed in the L2.
  void land(const std::string& text) {
    core::CacheEntry entry;
    entry.provider = "openai";
    entry.model = "gpt-4o-mini";
    entry.created_at_ms = now_();
    entry.response = text;
    entry.cost_nano_usd = 42;
    backend_->store.put_now(key_, core::encode_entry(entry), 0ms);
  }
  /// Another process takes the lock.
  void hold_elsewhere() { ASSERT_TRUE(backend_->store.try_lock_now(lock_key_, "other", 60'000ms)); }
  bool lock_is_free() {
    if (!backend_->store.try_lock_now(lock_key_, "probe", 1000ms)) return false;
    backend_->store.unlock_now(lock_key_, "probe");
    return true;
  }
};

TEST_F(CrossProcessLock, AFreeLockIsTakenForTheProviderCall) {
  const LockTurn t = turn();
  EXPECT_EQ(t.entry, nullptr);
  ASSERT_TRUE(t.token);
  EXPECT_FALSE(lock_is_free());
  backend_->store.unlock_now(lock_key_, *t.token);  // the token is the one that holds it
  EXPECT_TRUE(lock_is_free());
}

TEST_F(CrossProcessLock, AnAnswerThatLandedBeforeTheLockIsServedAndTheLockReleased) {
  land("landed");
  for (const bool l2_unread : {false, true}) {
    const LockTurn t = turn(l2_unread);
    ASSERT_NE(t.entry, nullptr);
    EXPECT_EQ(t.entry->response, "landed");
    // Read before the lock (l2_unread false), it is the previous holder's answer; read first
    // under the lock, it is this call's own lookup: a hit.
    EXPECT_EQ(t.own_lookup, l2_unread);
    EXPECT_FALSE(t.token);
    EXPECT_TRUE(lock_is_free());
  }
}

TEST_F(CrossProcessLock, AWaiterGetsTheHoldersAnswerOnceItLands) {
  hold_elsewhere();
  backend_->on_wait = [&](std::size_t round) {
    if (round != 3) return;
    land("the holder's");
    backend_->store.unlock_now(lock_key_, "other");
  };
  const LockTurn t = turn();
  ASSERT_NE(t.entry, nullptr);
  EXPECT_EQ(t.entry->response, "the holder's");
  EXPECT_FALSE(t.own_lookup);  // coalesced: another process's call
  EXPECT_FALSE(t.token);
  EXPECT_EQ(backend_->waits.size(), 3U);
}

TEST_F(CrossProcessLock, AWaiterTakesOverALockReleasedWithoutAnAnswer) {
  hold_elsewhere();
  backend_->on_wait = [&](std::size_t round) {
    if (round == 2) backend_->store.unlock_now(lock_key_, "other");  // the holder failed
  };
  const LockTurn t = turn();
  EXPECT_EQ(t.entry, nullptr);
  ASSERT_TRUE(t.token);
  EXPECT_NE(*t.token, "other");
  EXPECT_FALSE(lock_is_free());
}

TEST_F(CrossProcessLock, APollingWaiterDoublesItsRoundsUpTo50Ms) {
  hold_elsewhere();
  backend_->on_wait = [&](std::size_t round) {
    if (round == 7) land("late");
  };
  turn();
  const std::vector<milliseconds> expected = {5ms, 10ms, 20ms, 40ms, 50ms, 50ms, 50ms};
  EXPECT_EQ(backend_->waits, expected);
}

TEST_F(CrossProcessLock, AWaiterWhoseL2SignalsTheReleaseWaitsInRoundsOfASecond) {
  backend_->notifies = true;
  hold_elsewhere();
  backend_->on_wait = [&](std::size_t round) {
    if (round == 2) land("signalled");
  };
  turn();
  const std::vector<milliseconds> expected = {1000ms, 1000ms};
  EXPECT_EQ(backend_->waits, expected);
}

TEST_F(CrossProcessLock, AfterLockWaitTheCallGoesOnWithoutTheLock) {
  hold_elsewhere();
  // A wait that lasts what it was allowed, as a backend without a release signal does.
  backend_->on_wait = [&](std::size_t) { std::this_thread::sleep_for(backend_->waits.back()); };
  const auto started = std::chrono::steady_clock::now();
  const LockTurn t = turn(false, 60ms);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(t.entry, nullptr);
  EXPECT_FALSE(t.token);
  EXPECT_GE(took, 60ms);
  EXPECT_LT(took, 10s);
  // The last round was cut to what was left of the wait, never under 1 ms.
  for (const milliseconds wait : backend_->waits) {
    EXPECT_GE(wait, 1ms);
    EXPECT_LE(wait, 50ms);
  }
  EXPECT_FALSE(backend_->store.try_lock_now(lock_key_, "probe", 1000ms));  // still the other's
}

TEST_F(CrossProcessLock, UnderTheLockAnAnswerBehindAnotherHoldersLockIsServedAtOnce) {
  land("already there");
  hold_elsewhere();  // another process refreshes it, say
  const LockTurn t = turn(true);
  ASSERT_NE(t.entry, nullptr);
  EXPECT_TRUE(t.own_lookup);
  EXPECT_TRUE(backend_->waits.empty());  // no wait for the other holder
}

TEST_F(CrossProcessLock, ALockStoreThatIsDownLeavesTheCallUnlocked) {
  backend_->locks_fail = true;
  const LockTurn t = turn();
  EXPECT_EQ(t.entry, nullptr);
  EXPECT_FALSE(t.token);
  EXPECT_EQ(cache::run_blocking(tiers_.stats()).backend_errors, 1U);
  // Under the lock, the L2 is still read: an entry there is the call's hit.
  land("readable");
  const LockTurn under = turn(true);
  ASSERT_NE(under.entry, nullptr);
  EXPECT_TRUE(under.own_lookup);
}

TEST_F(CrossProcessLock, StrictCachesRaiseWhenTheLockStoreIsDown) {
  backend_->locks_fail = true;
  cache::TieredCache strict(backend_, kMiB, true);
  EXPECT_THROW(cache::run_blocking(
                   exchange::lock_across_processes(strict, key_, 30'000ms, 60'000ms, now_, false)),
               CacheError);
}

TEST_F(CrossProcessLock, AHeldLockIsReleasedInTheBackgroundUnlessHandedOn) {
  auto tiers = std::shared_ptr<cache::TieredCache>(backend_, &tiers_);  // not owned
  exchange::WriteBehind writes(tiers, {});
  ASSERT_TRUE(backend_->store.try_lock_now(lock_key_, "mine", 60'000ms));
  { exchange::HeldLock held(writes, key_, "mine"); }  // the call ended: an error, a cancellation
  writes.finish();
  EXPECT_TRUE(lock_is_free());

  ASSERT_TRUE(backend_->store.try_lock_now(lock_key_, "mine", 60'000ms));
  std::optional<std::string> handed;
  {
    exchange::HeldLock held(writes, key_, "mine");
    handed = held.take();
    EXPECT_FALSE(held.take());
  }
  writes.finish();
  EXPECT_EQ(handed, "mine");
  EXPECT_FALSE(lock_is_free());  // its release is the caller's now
  { exchange::HeldLock none(writes, key_, std::nullopt); }
  writes.finish();
  EXPECT_FALSE(lock_is_free());
}

TEST(LockToken, Is128RandomBitsInHex) {
  const std::string a = exchange::new_lock_token();
  const std::string b = exchange::new_lock_token();
  EXPECT_EQ(a.size(), 32U);
  for (const char c : a) EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(c))) << a;
  EXPECT_NE(a, b);
}

}  // namespace

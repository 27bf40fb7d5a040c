// The HTTP client's pool of idle connections (providers/idle_pool.hpp), stepped with invented
// times: the cap per key, the most recent taken first, expiry on take and on sweep, close.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "providers/idle_pool.hpp"

namespace {

using namespace std::chrono_literals;
using Pool = llm_caching::providers::detail::IdlePool<int>;
using Clock = Pool::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1h;

Pool::Handle connection(int id) {
  return std::make_unique<int>(id);
}

/// Parks connection `id` for `key` at `at`; true when parked.
bool park(Pool& pool, const std::string& key, int id, Clock::time_point at) {
  Pool::Handle handle = connection(id);
  const bool parked = pool.put(key, handle, at);
  EXPECT_EQ(parked, handle == nullptr) << "a connection not parked stays with the caller";
  return parked;
}

/// The ids of `handles`, sorted (keys are visited in no particular order).
std::vector<int> ids(const std::vector<Pool::Handle>& handles) {
  std::vector<int> out;
  for (const auto& handle : handles) out.push_back(*handle);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(IdlePool, KeepsAtMostTheCapPerKeyAndHandsBackTheMostRecentFirst) {
  Pool pool(2, 30s);
  EXPECT_TRUE(park(pool, "a", 1, t0));
  EXPECT_TRUE(park(pool, "a", 2, t0 + 1s));
  EXPECT_FALSE(park(pool, "a", 3, t0 + 2s));  // a full key
  EXPECT_TRUE(park(pool, "b", 4, t0 + 2s));   // another key has its own cap
  EXPECT_EQ(pool.size(), 3u);
  std::vector<Pool::Handle> expired;
  EXPECT_EQ(*pool.take("a", t0 + 3s, expired), 2);
  EXPECT_EQ(*pool.take("a", t0 + 3s, expired), 1);
  EXPECT_EQ(pool.take("a", t0 + 3s, expired), nullptr);
  EXPECT_EQ(pool.take("c", t0 + 3s, expired), nullptr);
  EXPECT_TRUE(expired.empty());
  EXPECT_EQ(pool.size(), 1u);
}

TEST(IdlePool, ATakeFindingTheMostRecentExpiredClosesTheKeysConnections) {
  Pool pool(8, 30s);
  park(pool, "a", 1, t0);
  park(pool, "a", 2, t0 + 10s);
  park(pool, "b", 3, t0);
  std::vector<Pool::Handle> expired;
  // 1 has been idle 30 s, 2 only 20 s: 2 is taken, 1 waits for the sweep.
  EXPECT_EQ(*pool.take("a", t0 + 30s, expired), 2);
  EXPECT_TRUE(expired.empty());
  // Now 1 has been idle 40 s: closed, and nothing handed out.
  EXPECT_EQ(pool.take("a", t0 + 40s, expired), nullptr);
  EXPECT_EQ(ids(expired), std::vector<int>({1}));
  EXPECT_EQ(pool.size(), 1u);  // b's is another key's
}

TEST(IdlePool, ASweepClosesTheExpiredAndSaysWhenTheNextExpires) {
  Pool pool(8, 30s);
  park(pool, "a", 1, t0);
  park(pool, "a", 2, t0 + 5s);
  park(pool, "b", 3, t0 + 2s);
  park(pool, "b", 4, t0 + 20s);
  std::vector<Pool::Handle> expired;
  EXPECT_EQ(pool.sweep(t0 + 29s, expired), t0 + 30s);  // none yet; 1 is next
  EXPECT_TRUE(expired.empty());
  EXPECT_EQ(pool.sweep(t0 + 33s, expired), t0 + 35s);  // 1 and 3 go; 2 is next
  EXPECT_EQ(ids(expired), std::vector<int>({1, 3}));
  expired.clear();
  EXPECT_EQ(pool.sweep(t0 + 60s, expired), std::nullopt);  // all gone: nothing to wait for
  EXPECT_EQ(ids(expired), std::vector<int>({2, 4}));
  EXPECT_EQ(pool.size(), 0u);
}

TEST(IdlePool, WithoutATimeoutNothingExpires) {
  Pool pool(8, 0ms);
  EXPECT_FALSE(pool.expires());
  park(pool, "a", 1, t0);
  std::vector<Pool::Handle> expired;
  EXPECT_EQ(pool.sweep(t0 + 24h, expired), std::nullopt);
  EXPECT_EQ(*pool.take("a", t0 + 24h, expired), 1);
  EXPECT_TRUE(expired.empty());
}

TEST(IdlePool, CloseHandsBackEveryConnectionAndParksNoneAfter) {
  Pool pool(8, 30s);
  park(pool, "a", 1, t0);
  park(pool, "b", 2, t0);
  std::vector<Pool::Handle> closed;
  pool.close(closed);
  EXPECT_EQ(closed.size(), 2u);
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_FALSE(park(pool, "a", 3, t0 + 1s));
  EXPECT_EQ(pool.size(), 0u);
}

}  // namespace

// MemoryBackend (`memory://`): LRU order, byte bound, TTL on read, thread safety.
#include "cache/lru_map.hpp"
#include "cache/memory_backend.hpp"
#include "cache/run_blocking.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace llm_caching::cache {
namespace {

using std::chrono::milliseconds;

/// A clock the test moves by hand.
struct FakeClock {
  std::shared_ptr<std::atomic<std::int64_t>> now =
      std::make_shared<std::atomic<std::int64_t>>(1000);
  NowMs fn() const {
    return [now = now] { return now->load(); };
  }
  void advance(std::int64_t ms) { *now += ms; }
};

/// Bytes charged for one entry with this key and value.
std::uint64_t charge(std::string_view key, std::string_view value) {
  return key.size() + value.size() + kLruEntryOverhead;
}

TEST(MemoryBackend, PutThenGetReturnsTheValue) {
  MemoryBackend backend(MemoryOptions{});
  backend.put_now("k", "value bytes", milliseconds(0));
  EXPECT_EQ(backend.get_now("k"), "value bytes");
  EXPECT_EQ(backend.get_now("absent"), std::nullopt);
  const BackendStats stats = backend.stats_now();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.writes, 1u);
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_EQ(stats.bytes, charge("k", "value bytes"));
}

TEST(MemoryBackend, PutReplacesAndKeepsOneCharge) {
  MemoryBackend backend(MemoryOptions{});
  backend.put_now("k", "first", milliseconds(0));
  backend.put_now("k", "second!", milliseconds(0));
  EXPECT_EQ(backend.get_now("k"), "second!");
  EXPECT_EQ(backend.stats_now().entries, 1u);
  EXPECT_EQ(backend.stats_now().bytes, charge("k", "second!"));
}

TEST(MemoryBackend, EvictsLeastRecentlyUsedFirstAndStaysUnderTheBound) {
  const std::string value(100, 'v');
  // Room for exactly three entries of this shape.
  MemoryBackend backend(MemoryOptions{.max_bytes = 3 * charge("k1", value)});
  backend.put_now("k1", value, milliseconds(0));
  backend.put_now("k2", value, milliseconds(0));
  backend.put_now("k3", value, milliseconds(0));
  ASSERT_TRUE(backend.get_now("k1"));  // k1 is now the most recent; k2 the least
  backend.put_now("k4", value, milliseconds(0));
  EXPECT_FALSE(backend.get_now("k2"));
  EXPECT_TRUE(backend.get_now("k1"));
  EXPECT_TRUE(backend.get_now("k3"));
  EXPECT_TRUE(backend.get_now("k4"));
  // k3 was read before k4 and k1 came before it: the least recent now is k1.
  backend.put_now("k5", value, milliseconds(0));
  EXPECT_FALSE(backend.get_now("k1"));
  const BackendStats stats = backend.stats_now();
  EXPECT_EQ(stats.evictions, 2u);
  EXPECT_EQ(stats.entries, 3u);
  EXPECT_LE(stats.bytes, 3 * charge("k1", value));
}

TEST(MemoryBackend, OneLargeEntryEvictsSeveralSmallOnes) {
  MemoryBackend backend(MemoryOptions{.max_bytes = 1000});
  for (int i = 0; i < 5; ++i) backend.put_now("s" + std::to_string(i), "x", milliseconds(0));
  EXPECT_EQ(backend.stats_now().entries, 5u);
  backend.put_now("big", std::string(600, 'b'), milliseconds(0));
  const BackendStats stats = backend.stats_now();
  EXPECT_LE(stats.bytes, 1000u);
  EXPECT_TRUE(backend.get_now("big"));
  EXPECT_FALSE(backend.get_now("s0"));  // oldest went first
  EXPECT_TRUE(backend.get_now("s4"));   // newest small one survived
}

TEST(MemoryBackend, EntryLargerThanTheBoundIsNotStored) {
  MemoryBackend backend(MemoryOptions{.max_bytes = 500});
  backend.put_now("small", "x", milliseconds(0));
  backend.put_now("huge", std::string(1000, 'h'), milliseconds(0));
  EXPECT_FALSE(backend.get_now("huge"));
  EXPECT_TRUE(backend.get_now("small"));
  EXPECT_EQ(backend.stats_now().evictions, 1u);
}

TEST(MemoryBackend, ExpiredEntryIsAMissAndIsRemoved) {
  FakeClock clock;
  MemoryBackend backend(MemoryOptions{}, clock.fn());
  backend.put_now("short", "v", milliseconds(50));
  backend.put_now("forever", "v", milliseconds(0));
  clock.advance(49);
  EXPECT_TRUE(backend.get_now("short"));
  clock.advance(1);
  EXPECT_FALSE(backend.get_now("short"));
  clock.advance(1'000'000'000);
  EXPECT_TRUE(backend.get_now("forever"));
  const BackendStats stats = backend.stats_now();
  EXPECT_EQ(stats.expired, 1u);
  EXPECT_EQ(stats.entries, 1u);
}

TEST(MemoryBackend, PruneRemovesOnlyExpiredEntries) {
  FakeClock clock;
  MemoryBackend backend(MemoryOptions{}, clock.fn());
  backend.put_now("a", "v", milliseconds(10));
  backend.put_now("b", "v", milliseconds(20));
  backend.put_now("c", "v", milliseconds(0));
  clock.advance(15);
  EXPECT_EQ(backend.prune_now(), 1u);
  EXPECT_EQ(backend.stats_now().entries, 2u);
  EXPECT_TRUE(backend.get_now("b"));
  EXPECT_TRUE(backend.get_now("c"));
}

TEST(MemoryBackend, NegativeTtlStoresNothing) {
  MemoryBackend backend(MemoryOptions{});
  backend.put_now("k", "v", milliseconds(-1));
  EXPECT_FALSE(backend.get_now("k"));
}

TEST(MemoryBackend, EraseAndClearByPrefix) {
  MemoryBackend backend(MemoryOptions{});
  for (const char* key : {"ns1:a", "ns1:b", "ns10:c", "ns2:d"}) {
    backend.put_now(key, "v", milliseconds(0));
  }
  EXPECT_TRUE(backend.erase_now("ns2:d"));
  EXPECT_FALSE(backend.erase_now("ns2:d"));
  EXPECT_EQ(backend.clear_now("ns1:"), 2u);
  EXPECT_TRUE(backend.get_now("ns10:c"));
  EXPECT_EQ(backend.clear_now(""), 1u);
  EXPECT_EQ(backend.stats_now().entries, 0u);
  EXPECT_EQ(backend.stats_now().bytes, 0u);
}

TEST(MemoryBackend, AwaitableInterfaceMatchesTheSynchronousOne) {
  MemoryBackend backend(MemoryOptions{});
  Backend& l2 = backend;
  run_blocking(l2.put("k", "v", milliseconds(0)));
  EXPECT_EQ(run_blocking(l2.get("k")), "v");
  EXPECT_TRUE(run_blocking(l2.erase("k")));
  EXPECT_EQ(run_blocking(l2.get("k")), std::nullopt);
  EXPECT_EQ(run_blocking(l2.stats()).writes, 1u);
  EXPECT_EQ(l2.describe(), "memory://?max_bytes=67108864");
}

TEST(MemoryBackend, ConcurrentWritersAndReadersKeepTheBound) {
  MemoryBackend backend(MemoryOptions{.max_bytes = 32 * 1024});
  std::vector<std::thread> threads;
  std::atomic<int> wrong_values{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string key = "k" + std::to_string((i * 7 + t) % 500);
        backend.put_now(key, "value-of-" + key, milliseconds(0));
        if (auto got = backend.get_now(key); got && *got != "value-of-" + key) ++wrong_values;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong_values.load(), 0);
  const BackendStats stats = backend.stats_now();
  EXPECT_LE(stats.bytes, 32u * 1024u);
  EXPECT_EQ(stats.writes, 8000u);
  EXPECT_GT(stats.evictions, 0u);
}

}  // namespace
}  // namespace llm_caching::cache

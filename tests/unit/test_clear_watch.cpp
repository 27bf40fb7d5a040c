// The clear watch (cache/clear_watch.*) as a TieredCache runs it: the L1 is dropped when the
// store's clear mark moves, and not by a first read of a store never cleared (mark 0), which can
// come after the cache has stored a miss's answer.
#include "cache/memory_backend.hpp"
#include "cache/run_blocking.hpp"
#include "cache/tiered_cache.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace llm_caching::cache {
namespace {

using std::chrono::milliseconds;

const std::string kKey = "llm-caching:v1:default:0123456789abcdef0123456789abcdef";

/// A memory store with a clear mark the test sets, whose reads wait until the test opens them,
/// and that counts the reads done.
class MarkedBackend final : public Backend {
 public:
  asio::awaitable<std::optional<std::string>> get(std::string key) override {
    co_return co_await store_.get(std::move(key));
  }
  asio::awaitable<void> put(std::string key, std::string value, milliseconds ttl) override {
    co_await store_.put(std::move(key), std::move(value), ttl);
  }
  asio::awaitable<bool> erase(std::string key) override {
    co_return co_await store_.erase(std::move(key));
  }
  asio::awaitable<std::uint64_t> clear(std::string prefix) override {
    co_return co_await store_.clear(std::move(prefix));
  }
  asio::awaitable<std::uint64_t> prune() override { co_return co_await store_.prune(); }
  asio::awaitable<BackendStats> stats() override { co_return co_await store_.stats(); }
  std::string describe() const override { return "marked://"; }
  bool keeps_clear_mark() const noexcept override { return true; }

  asio::awaitable<std::uint64_t> read_clear_mark() override {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return open_; });
    ++reads_;
    changed_.notify_all();
    co_return mark_;
  }

  /// Lets reads through from now on, with this mark.
  void open(std::uint64_t mark) {
    std::lock_guard lock(mutex_);
    open_ = true;
    mark_ = mark;
    changed_.notify_all();
  }
  /// Waits until two more reads have been done with the mark last opened: the watch reads
  /// again only once it has acted on the previous read, so the first of the two is settled.
  void wait_for_two_reads() {
    std::unique_lock lock(mutex_);
    const int until = reads_ + 2;
    changed_.wait(lock, [&] { return reads_ >= until; });
  }

 private:
  MemoryBackend store_{MemoryOptions{}};
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
  std::uint64_t mark_ = 0;
  int reads_ = 0;
};

TieredCache::EntryPtr make_entry() {
  auto entry = std::make_shared<core::CacheEntry>();
  entry->provider = "openai";
  entry->model = "gpt-4o-mini";
  entry->created_at_ms = system_now_ms();
  entry->response = R"({"id":"chatcmpl-1","choices":[]})";
  return entry;
}

class ClearWatchTest : public ::testing::Test {
 protected:
  std::shared_ptr<MarkedBackend> store_ = std::make_shared<MarkedBackend>();
  TieredCache cache_{store_, 64 * kMiB, false};

  /// A miss's answer stored while the watch's first read is still held back.
  void store_before_the_first_read() {
    cache_.watch_clears(milliseconds(1));
    run_blocking(cache_.put(kKey, make_entry(), milliseconds(60'000)));
    ASSERT_NE(cache_.peek_l1(kKey, system_now_ms()), nullptr);
  }
};

TEST_F(ClearWatchTest, AFirstReadOfAStoreNeverClearedKeepsWhatTheL1Holds) {
  store_before_the_first_read();
  store_->open(0);
  store_->wait_for_two_reads();
  EXPECT_NE(cache_.peek_l1(kKey, system_now_ms()), nullptr);
}

TEST_F(ClearWatchTest, AFirstReadOfAStoreClearedOnceDropsTheL1) {
  store_before_the_first_read();
  store_->open(42);  // cleared at some time: before this cache opened, or since
  store_->wait_for_two_reads();
  EXPECT_EQ(cache_.peek_l1(kKey, system_now_ms()), nullptr);
}

TEST_F(ClearWatchTest, AMarkThatMovesDropsTheL1) {
  store_before_the_first_read();
  store_->open(0);
  store_->wait_for_two_reads();
  ASSERT_NE(cache_.peek_l1(kKey, system_now_ms()), nullptr);
  store_->open(7);  // another process cleared the store
  store_->wait_for_two_reads();
  EXPECT_EQ(cache_.peek_l1(kKey, system_now_ms()), nullptr);
}

}  // namespace
}  // namespace llm_caching::cache

// The write-behind of the exchange (docs/SINGLE_FLIGHT.md, "Write-behind"): answers already in
// the L1 wait here for their L2 write, then the release of their cross-process lock, which two
// writer threads do off the requests' path: an idle-priority writer that gathers them into
// batches, and a catch-up writer at normal priority for writes the idle one left waiting.
#pragma once

#include "cache/tiered_cache.hpp"
#include "core/entry.hpp"
#include "core/log_throttle.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace llm_caching::exchange {

/// How long the writer thread gathers write-behinds into one L2 write.
inline constexpr std::chrono::milliseconds kWriteBehindLinger{20};

struct WriteBehindOptions {
  /// At most this many answers wait for their L2 write (ExchangeOptions::write_behind_limit).
  std::size_t limit = 10'000;
  /// A write that waited this long is written at normal priority
  /// (ExchangeOptions::write_behind_catch_up).
  std::chrono::milliseconds catch_up{250};
};

class WriteBehind {
 public:
  WriteBehind(std::shared_ptr<cache::TieredCache> cache, WriteBehindOptions options);
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;
  /// finish().
  ~WriteBehind();

  /// Queues a write-behind of `entry` (as queue()) unless `limit` writes already wait; false
  /// then (logged at most every 30 s), and nothing was queued: `lock_token` is left to the caller.
  bool try_queue(const std::string& key, std::shared_ptr<const core::CacheEntry> entry,
                 std::chrono::milliseconds ttl, std::optional<std::string>& lock_token);
  /// On the writer thread: encodes `entry` and writes it to the L2 (if any), then releases the
  /// lock (if any). Never refused: a lock release must happen.
  void queue(std::string key, std::shared_ptr<const core::CacheEntry> entry,
             std::chrono::milliseconds ttl, std::optional<std::string> lock_token);
  /// Waits for the queued writes and lock releases (each bounded by the backend's timeouts),
  /// writing them at once rather than after the catch-up delay, and joins the writer threads.
  void finish();

 private:
  struct Item {
    std::string key;
    /// Encoded on the writer thread; null: release the lock only.
    std::shared_ptr<const core::CacheEntry> entry;
    std::chrono::milliseconds ttl{0};
    std::optional<std::string> lock_token;
    std::chrono::steady_clock::time_point queued_at;
  };

  /// queue()'s work, for a caller that holds mutex_.
  void queue_locked(const std::lock_guard<std::mutex>& lock, std::string key,
                    std::shared_ptr<const core::CacheEntry> entry, std::chrono::milliseconds ttl,
                    std::optional<std::string> lock_token);
  /// The idle writer thread's loop: every kWriteBehindLinger, the queued writes (up to
  /// kIdleBatch) in one put_l2_many, then their unlocks; ends when the queue is empty or the
  /// catch-up writer has taken over.
  boost::asio::awaitable<void> drain_loop();
  /// The catch-up thread's loop (normal priority): sleeps until the oldest queued write is
  /// `catch_up` old, then writes the whole queue, until it is empty. On finish() it writes what
  /// is left at once.
  boost::asio::awaitable<void> catch_up_loop();
  /// Takes the first chunk of the queue, and the next ones while the writes taken stay within
  /// `most` (their order is kept). The queue must not be empty.
  std::vector<Item> take(const std::lock_guard<std::mutex>& lock, std::size_t most);
  /// Writes the batch (write_batch or write_each) and counts it as landed.
  boost::asio::awaitable<void> land(std::vector<Item> batch);
  /// One Backend::put_many for the batch, then the unlocks.
  boost::asio::awaitable<void> write_batch(std::vector<Item> batch);
  /// Every write of the batch at once (each then its unlock); returns when all are done.
  boost::asio::awaitable<void> write_each(std::vector<Item> batch);

  std::shared_ptr<cache::TieredCache> cache_;
  const WriteBehindOptions options_;
  // Write-behinds and lock releases still running on the writers; finish() waits for them.
  std::mutex mutex_;
  std::condition_variable done_;
  std::size_t pending_ = 0;   // guarded by mutex_
  std::size_t unlanded_ = 0;  // write-behinds queued or being written; guarded by mutex_
  core::LogThrottle overflow_log_;
  /// Queued for the writers, in chunks of up to kIdleBatch (only the last one shorter), so that
  /// the idle writer takes its batch in O(1); guarded by mutex_.
  std::deque<std::vector<Item>> queue_;
  bool draining_ = false;        // a drain_loop() runs; guarded by mutex_
  bool catch_up_armed_ = false;  // a catch_up_loop() runs; guarded by mutex_
  bool stopping_ = false;        // finish() runs; guarded by mutex_
  /// Set while the catch-up writer writes (under mutex_); read without it by the idle writer,
  /// which then stops yielding its CPU between entries.
  std::atomic<bool> catching_up_{false};
  /// Cancels the catch-up loop's wait; set and called on the catch-up thread only.
  std::function<void()> cancel_catch_up_wait_;
  core::LogThrottle catch_up_log_;
  // Last: destroyed first, before the state their loops use.
  std::unique_ptr<boost::asio::thread_pool> writer_;    // started on first use, under mutex_
  std::unique_ptr<boost::asio::thread_pool> catch_up_;  // the same, at normal priority
};

}  // namespace llm_caching::exchange

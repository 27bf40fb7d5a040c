#include "exchange/write_behind.hpp"

#include "core/thread_name.hpp"
#include "exchange/named_thread.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iterator>
#include <string_view>
#include <utility>

namespace llm_caching::exchange {

namespace asio = boost::asio;

namespace {

/// The most writes the idle writer takes at once (the queue's chunk). It can be preempted and then
/// starved while it holds them (and, inside the L2 write, the backend's write lock): few, so that
/// the catch-up writer waits little for them.
constexpr std::size_t kIdleBatch = 64;
/// The most writes of one catch-up L2 write (one SQLite transaction).
constexpr std::size_t kCatchUpBatch = 1024;
// How often the write-behind's overflow may be logged.
constexpr std::chrono::seconds kOverflowLogInterval{30};

void log_write_behind_failure(std::string_view what, std::string_view key) {
  try {
    throw;
  } catch (const std::exception& e) {
    spdlog::warn("cache write-behind: {} of {} failed: {}", what, key, e.what());
  } catch (...) {
    spdlog::warn("cache write-behind: {} of {} failed", what, key);
  }
}

}  // namespace

WriteBehind::WriteBehind(std::shared_ptr<cache::TieredCache> cache, WriteBehindOptions options)
    : cache_(std::move(cache)),
      options_(options),
      overflow_log_(kOverflowLogInterval),
      catch_up_log_(kOverflowLogInterval) {}

WriteBehind::~WriteBehind() {
  finish();
}

void WriteBehind::finish() {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  // The catch-up loop may sleep until its next write is due: wake it to write what is left now.
  if (catch_up_armed_) {
    asio::post(catch_up_->get_executor(), [this] {
      if (cancel_catch_up_wait_) cancel_catch_up_wait_();
    });
  }
  done_.wait(lock, [this] { return pending_ == 0; });
  auto writer = std::move(writer_);
  auto catch_up = std::move(catch_up_);
  lock.unlock();
  writer.reset();  // joins the thread: the last completion handler has returned
  catch_up.reset();
}

bool WriteBehind::try_queue(const std::string& key, std::shared_ptr<const core::CacheEntry> entry,
                            std::chrono::milliseconds ttl, std::optional<std::string>& lock_token) {
  // One lock for the check and the queueing, so that racing misses cannot pass the limit.
  std::lock_guard lock(mutex_);
  if (unlanded_ >= options_.limit) {
    if (overflow_log_.allow()) {
      spdlog::warn(
          "cache write-behind: {} answers already wait for their L2 write (the writer thread "
          "is behind: a busy machine or a slow cache backend); {} stays in memory only, and so "
          "do the next ones until it catches up (logged at most every 30 s)",
          unlanded_, key);
    }
    return false;
  }
  queue_locked(lock, key, std::move(entry), ttl, std::exchange(lock_token, std::nullopt));
  return true;
}

void WriteBehind::queue(std::string key, std::shared_ptr<const core::CacheEntry> entry,
                        std::chrono::milliseconds ttl, std::optional<std::string> lock_token) {
  std::lock_guard lock(mutex_);
  queue_locked(lock, std::move(key), std::move(entry), ttl, std::move(lock_token));
}

void WriteBehind::queue_locked(const std::lock_guard<std::mutex>& /*mutex_ held*/, std::string key,
                               std::shared_ptr<const core::CacheEntry> entry,
                               std::chrono::milliseconds ttl,
                               std::optional<std::string> lock_token) {
  // Idle priority: a batch of SQLite writes is a burst of CPU that would otherwise hold up the
  // requests (and, on a shared machine, the upstream) that wake on its CPU.
  if (!writer_) writer_ = named_thread("llmc-l2-writer", true);
  ++pending_;
  ++unlanded_;
  if (queue_.empty() || queue_.back().size() >= kIdleBatch) queue_.emplace_back();
  queue_.back().push_back({std::move(key), std::move(entry), ttl, std::move(lock_token),
                           std::chrono::steady_clock::now()});
  const auto loop_ended = [this](std::exception_ptr) {
    std::lock_guard done(mutex_);
    --pending_;
    done_.notify_all();
  };
  // Each loop counts in pending_ while it runs: finish() waits for it to end.
  if (!catch_up_armed_) {
    if (!catch_up_) catch_up_ = named_thread("llmc-l2-catchup");
    catch_up_armed_ = true;
    ++pending_;
    asio::co_spawn(catch_up_->get_executor(), catch_up_loop(), loop_ended);
  }
  if (draining_ || catching_up_) return;
  draining_ = true;
  ++pending_;
  asio::co_spawn(writer_->get_executor(), drain_loop(), loop_ended);
}

std::vector<WriteBehind::Item> WriteBehind::take(const std::lock_guard<std::mutex>& /*mutex_ held*/,
                                                 std::size_t most) {
  std::vector<Item> taken = std::move(queue_.front());
  queue_.pop_front();
  // Only the last chunk can be short, so the idle writer (most = kIdleBatch) takes one chunk
  // here: O(1) under the mutex that workers wait for, as it may be preempted holding it.
  while (!queue_.empty() && taken.size() + queue_.front().size() <= most) {
    std::move(queue_.front().begin(), queue_.front().end(), std::back_inserter(taken));
    queue_.pop_front();
  }
  return taken;
}

asio::awaitable<void> WriteBehind::drain_loop() {
  asio::steady_timer linger(co_await asio::this_coro::executor);
  bool more_queued = false;
  for (;;) {
    // Misses that land within the linger share one L2 write: on SQLite one transaction, so
    // the pages every write touches (totals, the access-time index) are written once for all,
    // and this thread wakes once per batch instead of once per miss.
    if (!more_queued) {
      linger.expires_after(kWriteBehindLinger);
      co_await linger.async_wait(asio::use_awaitable);
    }
    std::vector<Item> batch;
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty() || catching_up_) {
        draining_ = false;
        co_return;
      }
      batch = take(lock, kIdleBatch);
      more_queued = !queue_.empty();
    }
    co_await land(std::move(batch));
  }
}

asio::awaitable<void> WriteBehind::land(std::vector<Item> batch) {
  const std::size_t done = batch.size();
  if (cache_->l2_writes_batches()) {
    co_await write_batch(std::move(batch));
  } else {
    co_await write_each(std::move(batch));
  }
  {
    std::lock_guard lock(mutex_);
    pending_ -= done;
    unlanded_ -= done;
  }
  done_.notify_all();
}

asio::awaitable<void> WriteBehind::catch_up_loop() {
  asio::steady_timer due(co_await asio::this_coro::executor);
  cancel_catch_up_wait_ = [&due] { due.cancel(); };
  for (;;) {
    std::vector<Item> batch;
    std::size_t waiting = 0;  // for the log: queued, or taken and not yet landed
    bool late = false;        // not only written because finish() runs
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) {
        catch_up_armed_ = false;
        catching_up_ = false;
        break;
      }
      const auto oldest_due = queue_.front().front().queued_at + options_.catch_up;
      // Once late, it writes until the queue is empty; then the idle writer has it again.
      if (stopping_ || catching_up_ || std::chrono::steady_clock::now() >= oldest_due) {
        late = !stopping_;
        catching_up_ = true;
        batch = take(lock, kCatchUpBatch);
        waiting = unlanded_;
      } else {
        due.expires_at(oldest_due);
      }
    }
    if (batch.empty()) {
      boost::system::error_code cancelled;  // by finish(): the next turn writes what is left
      co_await due.async_wait(asio::redirect_error(asio::use_awaitable, cancelled));
      continue;
    }
    if (late && catch_up_log_.allow()) {
      spdlog::info(
          "cache write-behind: the idle-priority writer is behind (a busy machine: the oldest of "
          "{} answers waiting for their L2 write waited over {} ms); writing at normal priority "
          "until it catches up (logged at most every 30 s)",
          waiting, options_.catch_up.count());
    }
    co_await land(std::move(batch));
  }
  cancel_catch_up_wait_ = nullptr;
}

asio::awaitable<void> WriteBehind::write_batch(std::vector<Item> batch) {
  std::vector<cache::Backend::PutItem> puts;
  puts.reserve(batch.size());
  for (const Item& write : batch) {
    // put_l1 checked entry_fits, so no length_error; the encoding may still fail (zstd).
    if (!write.entry) continue;
    try {
      puts.push_back({write.key, core::encode_entry(*write.entry), write.ttl});
    } catch (...) {
      log_write_behind_failure("the encoding", write.key);
    }
    // Not while the catch-up writer runs: these writes are late already.
    if (!catching_up_.load(std::memory_order_relaxed)) core::yield_if_idle();
  }
  // The L2 writes land before the locks go: a process that finds a lock free finds its entry.
  // TieredCache absorbs and counts backend failures; anything else is logged, and the batch
  // still counts as done (finish() waits for pending_).
  try {
    if (!puts.empty()) co_await cache_->put_l2_many(std::move(puts));
  } catch (...) {
    log_write_behind_failure("the write", std::to_string(batch.size()) + " entries");
  }
  for (const Item& write : batch) {
    if (!write.lock_token) continue;
    try {
      co_await cache_->unlock(write.key, *write.lock_token);
    } catch (...) {
      log_write_behind_failure("the unlock", write.key);
    }
  }
}

asio::awaitable<void> WriteBehind::write_each(std::vector<Item> batch) {
  // A backend without batched writes (Redis: one round trip each) gets them all at once, each
  // write followed by its own unlock. The writer is one thread, so the counter needs no lock
  // and no completion runs before this coroutine waits (co_spawn starts with a post).
  const auto executor = co_await asio::this_coro::executor;
  std::size_t left = batch.size();
  asio::steady_timer all_done(executor, asio::steady_timer::time_point::max());
  auto write_one = [](std::shared_ptr<cache::TieredCache> cache,
                      Item write) -> asio::awaitable<void> {
    try {
      if (write.entry)
        co_await cache->put_l2(write.key, core::encode_entry(*write.entry), write.ttl);
    } catch (...) {
      log_write_behind_failure("the write", write.key);
    }
    try {
      if (write.lock_token) co_await cache->unlock(write.key, *write.lock_token);
    } catch (...) {
      log_write_behind_failure("the unlock", write.key);
    }
  };
  for (Item& write : batch) {
    asio::co_spawn(executor, write_one(cache_, std::move(write)), [&](std::exception_ptr) {
      if (--left == 0) all_done.cancel();
    });
  }
  boost::system::error_code ignored;
  co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

}  // namespace llm_caching::exchange

// Reaching every process's L1 after a clear (DESIGN §5, Backend's clear mark): a thread that
// reads the L2's clear mark every interval and calls on_change when it moved, so a cleared cache
// stops being served from memory within about one interval plus one read of the mark. It runs
// off the requests' path: a hit never waits for it. Reading the mark also lets a backend store
// what it counts in batches (Redis's counters), and the watch reads it once more when it stops.
#pragma once

#include "cache/backend.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace llm_caching::cache {

class ClearWatch {
 public:
  struct Callbacks {
    /// The mark differs from the last one read; before the first read, from 0 (never cleared).
    std::function<void()> on_change;
    std::function<void()> on_failure;  ///< a read of the mark failed (called from the catch)
  };
  /// Starts the thread; its first read comes at once. interval must be positive.
  ClearWatch(std::shared_ptr<Backend> backend, std::chrono::milliseconds interval,
             Callbacks callbacks);
  /// Stops the thread after one last read (Redis: the counters counted since the previous).
  ~ClearWatch();
  ClearWatch(const ClearWatch&) = delete;
  ClearWatch& operator=(const ClearWatch&) = delete;

 private:
  void run();
  /// One read of the mark: on_change when it differs from the last one read.
  void check();

  std::shared_ptr<Backend> backend_;
  const std::chrono::milliseconds interval_;
  Callbacks callbacks_;
  // Only the thread touches it. 0 to begin with, the mark of a store never cleared
  // (new_clear_mark is never 0): a first read of 0 is no clear, so it does not drop what the L1
  // took in since the cache opened (a miss's answer, stored before the thread's first read came).
  std::uint64_t last_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;     // last: started once everything above exists
};

}  // namespace llm_caching::cache

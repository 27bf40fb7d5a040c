// Warnings that repeat: "logged at most every N seconds", for a failure repeating under load,
// and "logged once per name", for names that callers choose.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace llm_caching::core {

/// allow() is true on the first call, then at most once per `interval`. Thread-safe: of callers
/// that race, one gets true.
class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::milliseconds interval) noexcept
      : interval_ms_(interval.count()) {}

  bool allow() noexcept {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
    std::int64_t last = last_ms_.load();
    return now - last >= interval_ms_ && last_ms_.compare_exchange_strong(last, now);
  }

 private:
  std::int64_t interval_ms_;
  std::atomic<std::int64_t> last_ms_{INT64_MIN / 2};  // long enough ago, without overflow
};

/// "Logged once per name", for names that callers choose (an unpriced model): the first
/// `most` names are remembered and logged once each; after them one line says that further
/// names go unlogged, and nothing more. A caller sending endless new names then costs neither
/// memory nor log lines. Thread-safe.
class LogOncePerName {
 public:
  enum class Verdict { log, skip, log_that_names_stop };

  explicit LogOncePerName(std::size_t most) : most_(most) {}

  Verdict see(std::string_view name) {
    std::lock_guard lock(mutex_);
    if (seen_.contains(name)) return Verdict::skip;
    if (seen_.size() < most_) {
      seen_.emplace(name);
      return Verdict::log;
    }
    if (stopped_) return Verdict::skip;
    stopped_ = true;
    return Verdict::log_that_names_stop;
  }

 private:
  std::size_t most_;
  std::mutex mutex_;
  std::set<std::string, std::less<>> seen_;  // guarded by mutex_
  bool stopped_ = false;                     // guarded by mutex_
};

}  // namespace llm_caching::core

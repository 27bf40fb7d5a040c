// "Logged at most every N seconds": for warnings that a failure repeating under load would
// otherwise turn into a flood of identical lines.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

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

}  // namespace llm_caching::core

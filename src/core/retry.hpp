// The retry decision (DESIGN §2, issue 2): exponential backoff with full jitter, overridden by a
// provider's Retry-After, bounded by a total budget. A pure state machine: the caller sleeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace llm_caching::core {

struct RetryOptions {
  std::chrono::milliseconds initial_wait{1000};
  std::chrono::milliseconds max_wait{10000};  ///< total time spent waiting, across all attempts
  /// Upper bound of a single computed (not provider-given) wait.
  std::chrono::milliseconds max_single_wait{60000};
};

/// What the provider said about when to come back, already parsed.
struct RetryHint {
  std::optional<std::chrono::milliseconds> retry_after;
};

struct RetryDecision {
  bool give_up = false;
  std::chrono::milliseconds wait{0};
};

class RetryPolicy {
 public:
  /// `seed` feeds the jitter generator so tests are deterministic.
  explicit RetryPolicy(RetryOptions opts, std::uint64_t seed = 0x9e3779b97f4a7c15ULL);

  /// Called after a failed attempt that may be retried. Returns the wait before the next attempt,
  /// or give_up when that wait would push the total past max_wait.
  /// A computed wait is uniform in [1 ms, backoff] ("full jitter", with a 1 ms floor so every
  /// retry spends budget); backoff starts at initial_wait and doubles per retry up to
  /// max_single_wait. A hint replaces the computed wait (no jitter, at least 1 ms). Once it has
  /// given up, the policy keeps giving up.
  RetryDecision next(const RetryHint& hint = {});

  int attempts() const noexcept { return attempts_; }
  std::chrono::milliseconds waited() const noexcept { return waited_; }
  std::optional<std::chrono::milliseconds> last_retry_after() const noexcept {
    return last_retry_after_;
  }

 private:
  RetryOptions opts_;
  std::uint64_t rng_state_;
  int attempts_ = 1;  ///< attempts made so far (the first call counts)
  std::chrono::milliseconds waited_{0};
  std::chrono::milliseconds backoff_;
  std::optional<std::chrono::milliseconds> last_retry_after_;
  bool given_up_ = false;  ///< once the budget is spent, every later next() gives up too
};

/// Parses an HTTP Retry-After value: delta-seconds ("120", "1.5") or an HTTP-date
/// ("Wed, 21 Oct 2026 07:28:00 GMT", relative to `now`). nullopt if unparseable; never negative.
/// Also accepts the obsolete RFC 850 ("Wednesday, 21-Oct-26 07:28:00 GMT") and asctime
/// ("Wed Oct 21 07:28:00 2026") date forms. Fractions round up to the next millisecond; a date
/// in the past gives 0; negative values and values above one day give nullopt.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);
/// Parses `retry-after-ms` ("1500"; a decimal rounds up). Same bounds as parse_retry_after.
std::optional<std::chrono::milliseconds> parse_retry_after_ms(std::string_view value);
/// Parses Go-style durations as in OpenAI's x-ratelimit-reset-* ("6m0s", "1.5s", "20ms", "1h2m").
/// Units h, m, s, ms, us/µs, ns; sub-millisecond remainders round up; "0" alone is valid.
/// Negative or overflowing durations give nullopt.
std::optional<std::chrono::milliseconds> parse_go_duration(std::string_view value);

}  // namespace llm_caching::core

// What the gateway refuses to hold for its callers: a budget of request-body bytes, and the
// reasons a limit refuses something (each counted and logged). Pure but for log_refusal.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <string_view>

namespace llm_caching::gateway {

/// Why a request or a connection was refused before it reached a route (or, upstream_too_large,
/// why an upstream answer was).
enum class Refusal {
  body_too_large,         ///< 413: over --body-limit
  body_budget,            ///< 503: the bodies in flight would pass --max-body-bytes-in-flight
  connections,            ///< 503: --max-connections connections already open
  header_fields,          ///< 431: more header fields than the limit
  header_too_large,       ///< 431: a head over the byte limit
  framing,                ///< 400/501: a Transfer-Encoding the gateway will not frame by
  no_key,                 ///< 401: --require-key and the caller sent no credential
  request_line_too_long,  ///< 414: a request line over --max-request-line
  header_timeout,         ///< 408: a head begun but not finished in --header-timeout-ms
  upstream_too_large,     ///< 502: an upstream answer over --max-upstream-response-bytes
};
inline constexpr std::array<std::string_view, 10> kRefusalNames = {
    "body_too_large",   "body_budget",       "connections", "header_fields",
    "header_too_large", "framing",           "no_key",      "request_line_too_long",
    "header_timeout",   "upstream_too_large"};

/// Logs a refusal: one warning per reason at most every 10 s (server_limits.cpp).
void log_refusal(Refusal reason, std::string_view message);

/// Bytes shared by every worker (request bodies in memory). Lock-free.
class ByteBudget {
 public:
  explicit ByteBudget(std::size_t limit) noexcept : limit_(limit) {}
  /// Takes `bytes` if they fit; false (nothing taken) otherwise.
  bool try_take(std::size_t bytes) noexcept {
    std::size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_ - used) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }
  void give_back(std::size_t bytes) noexcept { used_.fetch_sub(bytes, std::memory_order_relaxed); }
  std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
  std::size_t limit() const noexcept { return limit_; }

 private:
  const std::size_t limit_;
  std::atomic<std::size_t> used_{0};
};

/// One request's share of a ByteBudget, given back when it ends.
class ByteCharge {
 public:
  explicit ByteCharge(ByteBudget& budget) noexcept : budget_(budget) {}
  ~ByteCharge() { budget_.give_back(held_); }
  ByteCharge(const ByteCharge&) = delete;
  ByteCharge& operator=(const ByteCharge&) = delete;

  /// Holds `bytes` in all: takes the difference, or gives back the excess. False when more were
  /// needed and the budget had no room (what was held stays held).
  bool hold(std::size_t bytes) noexcept {
    if (bytes <= held_) {
      budget_.give_back(held_ - bytes);
      held_ = bytes;
      return true;
    }
    if (!budget_.try_take(bytes - held_)) return false;
    held_ = bytes;
    return true;
  }
  std::size_t held() const noexcept { return held_; }

 private:
  ByteBudget& budget_;
  std::size_t held_ = 0;
};

}  // namespace llm_caching::gateway

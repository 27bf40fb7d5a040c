// The gateway's stale policies (docs/SINGLE_FLIGHT.md): the windows in force for a request (the
// server's defaults, then the request's own directives) and, once an expired entry was served,
// why. Pure; unit-tested without sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace llm_caching::gateway {

/// How long an expired entry may still be served, 0 = off. stale_while_revalidate: at once, while
/// one background call refreshes it; stale_if_error: when the upstream call fails. The exchange
/// keeps an entry in the L2 for its TTL plus the larger window of the request that stores it.
struct StaleWindows {
  std::chrono::milliseconds stale_while_revalidate{0};
  std::chrono::milliseconds stale_if_error{0};
};

/// The longest window a flag, config field or header may set: a year, in seconds.
inline constexpr std::int64_t kMaxStaleSeconds = 366LL * 24 * 3600;

/// Reads a request's stale directives over the gateway's defaults (--stale-while-revalidate,
/// --stale-if-error): `Cache-Control: stale-while-revalidate=<s>` and `stale-if-error=<s>` replace
/// a default (narrower or wider), `max-stale=<s>` caps both (the most staleness the caller
/// accepts, in whatever order the directives come), `x-llm-cache: no-stale` turns both off.
class StaleDirectives {
 public:
  explicit StaleDirectives(StaleWindows defaults) : windows_(defaults) {}
  /// One lowercased Cache-Control token; others than the three above are ignored. Throws
  /// BadRequest naming the directive for a value that is not whole seconds up to a year.
  void read(std::string_view token);
  /// x-llm-cache: no-stale.
  void turn_off() { max_stale_ = std::chrono::milliseconds(0); }
  StaleWindows windows() const;

 private:
  StaleWindows windows_;
  std::optional<std::chrono::milliseconds> max_stale_;
};

/// Why an expired entry was served: at once with a refresh started (stale-while-revalidate), or
/// in place of an upstream call that failed (stale-if-error).
enum class StaleReason { revalidate, error };

/// Tells the two apart from outside the exchange, whose result says only that the answer was
/// stale. The exchange answers at once (revalidate) before any upstream call, and only with an
/// entry expired by at most `windows.stale_while_revalidate` when it looked; any other stale
/// answer stood in for a failed call (error): this request's own (`upstream_calls` > 0) or that
/// of the in-process flight it joined. `expired_for_at_start`: how long the entry had been
/// expired when the request went into the exchange (measured before it, so never longer than
/// what the exchange saw: a revalidate is never counted as an error).
StaleReason stale_reason(const StaleWindows& windows, int upstream_calls,
                         std::chrono::milliseconds expired_for_at_start) noexcept;

}  // namespace llm_caching::gateway

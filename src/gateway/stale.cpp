#include "gateway/stale.hpp"

#include "gateway/controls.hpp"

#include <algorithm>
#include <charconv>
#include <string>

namespace llm_caching::gateway {

namespace {

/// The seconds of "name=<seconds>" (`name` with its '='). Throws BadRequest naming it.
std::chrono::seconds directive_seconds(std::string_view token, std::string_view name) {
  const std::string_view digits = token.substr(name.size());
  std::int64_t seconds = -1;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seconds);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || seconds < 0 ||
      seconds > kMaxStaleSeconds) {
    throw BadRequest("Cache-Control: " + std::string(name) + " expects whole seconds from 0 to " +
                     std::to_string(kMaxStaleSeconds));
  }
  return std::chrono::seconds(seconds);
}

}  // namespace

void StaleDirectives::read(std::string_view token) {
  constexpr std::string_view kRevalidate = "stale-while-revalidate=";
  constexpr std::string_view kIfError = "stale-if-error=";
  constexpr std::string_view kMaxStale = "max-stale=";
  if (token.starts_with(kRevalidate)) {
    windows_.stale_while_revalidate = directive_seconds(token, kRevalidate);
  } else if (token.starts_with(kIfError)) {
    windows_.stale_if_error = directive_seconds(token, kIfError);
  } else if (token.starts_with(kMaxStale)) {
    const std::chrono::milliseconds cap = directive_seconds(token, kMaxStale);
    max_stale_ = max_stale_ ? std::min(*max_stale_, cap) : cap;  // the strictest one wins
  }
}

StaleWindows StaleDirectives::windows() const {
  StaleWindows out = windows_;
  if (max_stale_) {
    out.stale_while_revalidate = std::min(out.stale_while_revalidate, *max_stale_);
    out.stale_if_error = std::min(out.stale_if_error, *max_stale_);
  }
  return out;
}

StaleReason stale_reason(const StaleWindows& windows, int upstream_calls,
                         std::chrono::milliseconds expired_for_at_start) noexcept {
  if (upstream_calls > 0) return StaleReason::error;
  if (windows.stale_while_revalidate.count() > 0 &&
      expired_for_at_start <= windows.stale_while_revalidate) {
    return StaleReason::revalidate;
  }
  return StaleReason::error;
}

}  // namespace llm_caching::gateway

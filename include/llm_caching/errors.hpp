// The exceptions the public API throws (DESIGN §7). Names follow the original Python library.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace llm_caching {

/// Base of every error the library throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad or missing configuration: a malformed URL, a missing API key, an unknown model price.
/// Raised before any I/O where possible. Messages never contain secrets.
class ConfigurationError : public Error {
 public:
  using Error::Error;
};

/// The provider kept rate-limiting (or failing transiently) until `max_wait` was spent.
class RateLimitError : public Error {
 public:
  RateLimitError(const std::string& what, int attempts, std::chrono::milliseconds waited,
                 std::optional<std::chrono::milliseconds> last_retry_after);
  int attempts() const noexcept { return attempts_; }
  std::chrono::milliseconds waited() const noexcept { return waited_; }
  std::optional<std::chrono::milliseconds> last_retry_after() const noexcept {
    return last_retry_after_;
  }

 private:
  int attempts_;
  std::chrono::milliseconds waited_;
  std::optional<std::chrono::milliseconds> last_retry_after_;
};

/// A budget (llm_caching/budget.hpp) has no room for the call's worst case: the provider was not
/// called. budget() names it ("task=nightly-eval:20usd/day"); remaining_nano_usd() is what it
/// has left (may be less than this call needs, never negative).
class BudgetExceededError : public Error {
 public:
  BudgetExceededError(const std::string& what, std::string budget, std::int64_t remaining_nano_usd)
      : Error(what), budget_(std::move(budget)), remaining_nano_usd_(remaining_nano_usd) {}
  const std::string& budget() const noexcept { return budget_; }
  std::int64_t remaining_nano_usd() const noexcept { return remaining_nano_usd_; }

 private:
  std::string budget_;
  std::int64_t remaining_nano_usd_;
};

/// The cache backend failed and the call was in strict mode (the default degrades instead).
class CacheError : public Error {
 public:
  using Error::Error;
};

/// A `replay_only` call found no entry; the provider was not called.
class CacheMissError : public CacheError {
 public:
  using CacheError::CacheError;
};

/// The provider answered with an error or with something that could not be used.
class ProviderError : public Error {
 public:
  ProviderError(const std::string& what, int http_status, std::string error_type,
                std::string body_excerpt);
  /// 0 when no HTTP status was received (connection failure, garbage reply).
  int http_status() const noexcept { return http_status_; }
  const std::string& error_type() const noexcept { return error_type_; }
  const std::string& body_excerpt() const noexcept { return body_excerpt_; }

 private:
  int http_status_;
  std::string error_type_;
  std::string body_excerpt_;
};

}  // namespace llm_caching

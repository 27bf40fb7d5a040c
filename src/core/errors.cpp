#include "llm_caching/errors.hpp"

#include <utility>

namespace llm_caching {

RateLimitError::RateLimitError(const std::string& what, int attempts,
                               std::chrono::milliseconds waited,
                               std::optional<std::chrono::milliseconds> last_retry_after)
    : Error(what), attempts_(attempts), waited_(waited), last_retry_after_(last_retry_after) {}

ProviderError::ProviderError(const std::string& what, int http_status, std::string error_type,
                             std::string body_excerpt)
    : Error(what),
      http_status_(http_status),
      error_type_(std::move(error_type)),
      body_excerpt_(std::move(body_excerpt)) {}

}  // namespace llm_caching

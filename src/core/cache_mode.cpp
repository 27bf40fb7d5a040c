#include "llm_caching/cache_mode.hpp"

#include "llm_caching/errors.hpp"

#include <string>

namespace llm_caching {

std::string_view to_string(CacheMode mode) noexcept {
  switch (mode) {
    case CacheMode::use:
      return "use";
    case CacheMode::refresh:
      return "refresh";
    case CacheMode::bypass:
      return "bypass";
    case CacheMode::read_only:
      return "read_only";
    case CacheMode::replay_only:
      return "replay_only";
  }
  return "use";
}

CacheMode parse_cache_mode(std::string_view text) {
  if (text == "use") return CacheMode::use;
  if (text == "refresh") return CacheMode::refresh;
  if (text == "bypass") return CacheMode::bypass;
  if (text == "read_only" || text == "read-only") return CacheMode::read_only;
  if (text == "replay_only" || text == "replay-only") return CacheMode::replay_only;
  throw ConfigurationError("unknown cache mode '" + std::string(text) +
                           "': use one of use, refresh, bypass, read_only, replay_only");
}

}  // namespace llm_caching

// How one call uses the cache (DESIGN §5).
#pragma once

#include <string_view>

namespace llm_caching {

enum class CacheMode {
  use,          ///< read, and write on a miss (default)
  refresh,      ///< skip the read, call the provider, write
  bypass,       ///< neither read nor write
  read_only,    ///< read; a miss calls the provider but stores nothing
  replay_only,  ///< read; a miss raises CacheMissError and the provider is never called
};

std::string_view to_string(CacheMode mode) noexcept;
/// "use", "refresh", "bypass", "read_only" (or "read-only"), "replay_only" (or "replay-only");
/// throws ConfigurationError otherwise.
CacheMode parse_cache_mode(std::string_view text);

}  // namespace llm_caching

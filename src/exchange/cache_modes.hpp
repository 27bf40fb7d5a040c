// What each CacheMode lets a call do with the cache (llm_caching/cache_mode.hpp), for the chat
// exchange and the embeddings path alike.
#pragma once

#include "llm_caching/cache_mode.hpp"

namespace llm_caching::exchange {

/// Looks the key up before calling the provider.
inline bool reads_cache(CacheMode m) noexcept {
  return m == CacheMode::use || m == CacheMode::read_only || m == CacheMode::replay_only;
}
/// Stores the provider's answer.
inline bool writes_cache(CacheMode m) noexcept {
  return m == CacheMode::use || m == CacheMode::refresh;
}
/// Joins (or leads) the in-process flight of an identical concurrent call.
inline bool coalesces(CacheMode m) noexcept {
  return m == CacheMode::use || m == CacheMode::read_only;
}

}  // namespace llm_caching::exchange

// FNV-1a, 64 bits: a fast, stable hash of a key for the SQLite backend's row ids and lock bytes.
// Not for anything an attacker could exploit by colliding: both users still compare the key.
#pragma once

#include <cstdint>
#include <string_view>

namespace llm_caching::cache {

constexpr std::uint64_t fnv1a64(std::string_view text) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace llm_caching::cache

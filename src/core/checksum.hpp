// CRC-32C (Castagnoli), the checksum of the cache entry envelope (DESIGN §4). Portable software
// slicing-by-8: fast enough for entries of a few KB without CPU-specific intrinsics.
#pragma once

#include <cstdint>
#include <string_view>

namespace llm_caching::core {

/// CRC-32C of `data`. crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(std::string_view data) noexcept;

/// Continues a CRC-32C over more bytes: crc32c(a + b) == crc32c_extend(crc32c(a), b).
std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view data) noexcept;

namespace detail {
/// The table-driven implementation, used where the CPU has no CRC-32C instruction (exposed so the
/// tests can hold both implementations to the same answers).
std::uint32_t crc32c_portable(std::uint32_t crc, std::string_view data) noexcept;
}  // namespace detail

}  // namespace llm_caching::core

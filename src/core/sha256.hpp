// SHA-256 as lowercase hex (the cache key's digest, the gateway's tenant hash): one
// implementation, with OpenSSL's digest fetched once and a context reused per thread.
#pragma once

#include <string>
#include <string_view>

namespace llm_caching::core {

/// Lowercase hex of SHA-256(data). Throws llm_caching::Error if OpenSSL fails.
std::string sha256_hex(std::string_view data);

}  // namespace llm_caching::core

// Where a cache's signing keys come from (docs/SECURITY-MODEL.md, "Poisoned caches"): the
// options, else the environment, read where the cache is opened (as LLM_CACHE_REDIS_URL is).
#pragma once

#include "core/entry_signature.hpp"
#include "llm_caching/cache_options.hpp"

#include <functional>
#include <optional>
#include <string>

namespace llm_caching::cache {

/// Shortest key accepted: HMAC-SHA256 with fewer than 16 bytes of key is guessable offline.
inline constexpr std::size_t kMinSigningKeyBytes = 16;

/// Reads a variable; nullopt when unset or empty. The tests pass their own.
using GetEnv = std::function<std::optional<std::string>(const char* name)>;
std::optional<std::string> process_env(const char* name);

/// options.signing_key / signing_key_previous when set, else LLM_CACHE_SIGNING_KEY or
/// LLM_CACHE_SIGNING_KEY_FILE (the file's contents less trailing whitespace) and
/// LLM_CACHE_SIGNING_KEY_PREVIOUS or LLM_CACHE_SIGNING_KEY_PREVIOUS_FILE. Throws
/// ConfigurationError (naming the variable or file, never a key) for both forms of one key, an
/// unreadable file, a key shorter than kMinSigningKeyBytes, or a previous key without a current.
core::SigningKeys resolve_signing_keys(const CacheOptions& options, const GetEnv& env);

/// An identity of the keys for telling caches apart (a digest; not the keys, not logged).
std::string signing_keys_identity(const core::SigningKeys& keys);

}  // namespace llm_caching::cache

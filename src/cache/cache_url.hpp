// Cache URL parsing (DESIGN §5): one string selects and tunes the shared backend.
#pragma once

#include "llm_caching/cache_options.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace llm_caching::cache {

/// Which backend a URL selects, with its options.
using BackendConfig = std::variant<SqliteOptions, MemoryOptions, RedisOptions, DirOptions>;

/// Parses a cache URL; "" means the embedded default SQLite file. Throws ConfigurationError for
/// anything else than the accepted forms; messages never contain a password.
BackendConfig parse_cache_url(std::string_view url);

/// options.url, else $LLM_CACHE_REDIS_URL (empty counts as unset), else "" (embedded default).
std::string resolve_cache_url(const CacheOptions& options);

/// Fills in what a parsed URL leaves to the environment: a dir:// cache's redaction patterns
/// from $LLM_CACHE_REDACT (one ECMAScript regex a line) when the options name none.
void apply_environment(BackendConfig& config);

/// The LLM_CACHE_REDACT patterns of a store (after apply_environment): a dir:// cache's own,
/// else $LLM_CACHE_REDACT's (one a line). The tiers scrub the request every entry keeps with
/// them, whatever the backend (TieredCache::set_redactor).
std::vector<std::string> redact_patterns(const BackendConfig& config);

/// The embedded default file: $XDG_CACHE_HOME/llm-caching/cache.db, else
/// $HOME/.cache/llm-caching/cache.db. Throws ConfigurationError when neither is set.
std::filesystem::path default_cache_file();

/// `url` with the password of its user-info replaced by `***` (and any `password=` query value).
/// Errs on the side of masking too much for malformed URLs. Safe to log.
std::string mask_url_password(std::string_view url);

/// "64MiB", "1GiB", "500MB", "4096" -> bytes. Throws ConfigurationError naming `what`.
std::uint64_t parse_byte_size(std::string_view text, std::string_view what);

/// A stable name for the store a config selects (absolute path for SQLite), so that two URLs
/// naming the same store share one opened backend in the process registry.
std::string backend_identity(const BackendConfig& config);

/// How a config's store is named in logs and errors (password masked), before it is opened.
std::string describe_config(const BackendConfig& config);

}  // namespace llm_caching::cache

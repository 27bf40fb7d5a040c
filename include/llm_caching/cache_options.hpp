// Options users set for the cache (DESIGN §5). Plain aggregates with their defaults in place, so
// `CacheOptions{.url = "sqlite:///var/cache/app.db", .strict = true}` reads as what it does.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace llm_caching {

inline constexpr std::uint64_t kMiB = 1024ull * 1024ull;
inline constexpr std::uint64_t kGiB = 1024ull * kMiB;

/// A SQLite file shared by every process that opens the same path (`sqlite:///abs/path.db`).
struct SqliteOptions {
  std::filesystem::path path;  ///< absolute
  /// Above this many stored bytes, least recently used entries are evicted down to 90%.
  std::uint64_t max_bytes = 1 * kGiB;
  /// How long a write waits for another process holding the file's write lock.
  std::chrono::milliseconds busy_timeout{5000};
};

/// An in-process LRU store (`memory://`): fastest, lost at exit, not shared between processes.
struct MemoryOptions {
  std::uint64_t max_bytes = 64 * kMiB;  ///< keys + values + a fixed per-entry overhead
};

/// What a caller passes to pick and tune the cache.
struct CacheOptions {
  /// Backend URL. Empty: the `LLM_CACHE_REDIS_URL` environment variable if set and non-empty,
  /// else the embedded default SQLite file under `$XDG_CACHE_HOME/llm-caching/` (or
  /// `~/.cache/llm-caching/`). Forms:
  /// `sqlite:///abs/path.db[?max_bytes=1GiB&busy_timeout_ms=5000]`, `memory://[?max_bytes=64MiB]`.
  /// Redis URLs are recognised but not available in this build yet.
  std::string url;
  /// In-process L1 of decoded entries in front of the backend; 0 disables it.
  std::uint64_t l1_max_bytes = 64 * kMiB;
  /// Strict: a backend failure raises CacheError. Default: log, count, and carry on as on a miss.
  bool strict = false;
};

}  // namespace llm_caching

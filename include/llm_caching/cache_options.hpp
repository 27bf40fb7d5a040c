// Options users set for the cache (DESIGN §5). Plain aggregates with their defaults in place, so
// `CacheOptions{.url = "sqlite:///var/cache/app.db", .strict = true}` reads as what it does.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

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
  /// How much of the file reads may go through a memory map (0: none, every page read is a
  /// pread). Mapped pages count in the process's RSS, so this bounds what the file adds to it.
  std::uint64_t mmap_bytes = 64 * kMiB;
};

/// An in-process LRU store (`memory://`): fastest, lost at exit, not shared between processes.
struct MemoryOptions {
  std::uint64_t max_bytes = 64 * kMiB;  ///< keys + values + a fixed per-entry overhead
};

/// A directory of readable JSON files, one per entry, in a folder per namespace (`dir://PATH`,
/// relative to the working directory, or `dir:///abs/path`): recorded answers a test suite
/// commits and replays without API keys (docs/TESTING.md). Entries never expire there.
struct DirOptions {
  std::filesystem::path path;  ///< as written in the URL; a relative one is made absolute on open
  /// ECMAScript regexes: text matching any is stored as "[REDACTED]". Empty: the patterns of
  /// $LLM_CACHE_REDACT (one a line), filled in where the URL is resolved.
  std::vector<std::string> redact;
};

/// A Redis (or Sentinel) address. IPv6 hosts are stored without brackets.
struct RedisEndpoint {
  std::string host;
  std::uint16_t port = 6379;
};

/// TLS for `rediss://` (redis-py's query parameter names in brackets).
struct RedisTlsOptions {
  bool enabled = false;
  std::string ca_file;      ///< [ssl_ca_certs] PEM bundle to trust; empty: the system trust store
  std::string cert_file;    ///< [ssl_certfile] client certificate (PEM), for client authentication
  std::string key_file;     ///< [ssl_keyfile] its private key (PEM)
  bool verify_peer = true;  ///< [ssl_cert_reqs=required|none] verify chain and host name
};

/// A Redis server (`redis://`, `rediss://`), a master found through Sentinel
/// (`redis+sentinel://`) or a Redis Cluster (`redis+cluster://`, `rediss+cluster://`). See
/// docs/REDIS.md for every URL form and parameter.
struct RedisOptions {
  /// One endpoint for a direct connection; the sentinels (tried in order) in Sentinel mode; in
  /// Cluster mode, seed nodes (any of the cluster's nodes) asked in order for the slot map.
  std::vector<RedisEndpoint> endpoints;
  /// Cluster mode: keys are routed to the master serving their hash slot (docs/SCALING.md).
  bool cluster = false;
  /// Cluster mode (`read_from_replicas=true`): entry reads go to a replica of the key's slot;
  /// a replica's miss, error or silence is asked again of the master (docs/SCALING.md).
  bool read_from_replicas = false;
  /// Non-empty: Sentinel mode; the master's name as the sentinels know it.
  std::string sentinel_master;
  std::string username;  ///< ACL user; empty: the default user
  std::string password;  ///< empty: no AUTH
  /// Credentials for the sentinels; by default the same as the master's.
  std::string sentinel_username;
  std::string sentinel_password;
  bool sentinel_auth_set = false;  ///< sentinel_username/password were given explicitly
  int db = 0;
  RedisTlsOptions tls;
  /// TCP connect + TLS handshake + AUTH/SELECT, per connection attempt.
  std::chrono::milliseconds connect_timeout{2000};
  /// From a command's send to its reply; a late reply drops the connection.
  std::chrono::milliseconds command_timeout{2000};
  /// Pipelined connections kept open.
  std::size_t pool_size = 4;
  /// CLIENT SETNAME value (empty: not sent).
  std::string client_name = "llm-caching";
  /// The ledger's stream (docs/COSTS.md) keeps about this many records (XADD MAXLEN ~); the
  /// per-day counters beside it are kept 400 days.
  std::size_t ledger_max_records = 1'000'000;
  /// The URL with its password masked, for logs and errors.
  std::string masked_url;
};

/// What a caller passes to pick and tune the cache.
struct CacheOptions {
  /// Backend URL. Empty: the `LLM_CACHE_REDIS_URL` environment variable if set and non-empty,
  /// else the embedded default SQLite file under `$XDG_CACHE_HOME/llm-caching/` (or
  /// `~/.cache/llm-caching/`). Forms:
  /// `sqlite:///abs/path.db[?max_bytes=1GiB&busy_timeout_ms=5000]`, `memory://[?max_bytes=64MiB]`,
  /// `dir://relative/path` or `dir:///abs/path` (one JSON file per entry, docs/TESTING.md),
  /// `redis://[[user]:[password]@]host[:port][/db]`, `rediss://...` (TLS),
  /// `redis+sentinel://[user:password@]h1:26379,h2:26379/master[/db]`,
  /// `redis+cluster://[user:password@]h1:7000,h2:7001` and `rediss+cluster://` (docs/REDIS.md).
  std::string url;
  /// In-process L1 of decoded entries in front of the backend; 0 disables it.
  std::uint64_t l1_max_bytes = 64 * kMiB;
  /// Strict: a backend failure raises CacheError. Default: log, count, and carry on as on a miss.
  bool strict = false;
  /// How often a thread of the process reads the store's clear mark, to drop the L1 after a
  /// clear by any process (`llm-caching cache clear`, `cache rm`): a cleared entry is served
  /// from memory for at most this long plus one read of the mark. 0: never (a clear by another
  /// process then reaches this L1 only as its entries expire or are evicted).
  std::chrono::milliseconds clear_check_interval{250};
  /// Appends the key of every entry read to this file, once per process (for `llm-caching cache
  /// unused --since-log`). Empty: $LLM_CACHE_USAGE_LOG if set, else no log.
  std::filesystem::path usage_log;
  /// Signed entries (docs/SECURITY-MODEL.md, "Poisoned caches"): every entry written carries an
  /// HMAC-SHA256 of its key and bytes under this key, and an entry in the store that no key
  /// here signed is a miss (counted, logged, deleted). At least 16 bytes. Empty (both): the
  /// environment's LLM_CACHE_SIGNING_KEY or LLM_CACHE_SIGNING_KEY_FILE (and _PREVIOUS,
  /// _PREVIOUS_FILE), else no signing. A secret: never logged, never in an error or an entry.
  std::string signing_key;
  /// The key being rotated out: entries it signed are still read (and new ones signed with
  /// signing_key) until they expire or are rewritten.
  std::string signing_key_previous;
};

}  // namespace llm_caching

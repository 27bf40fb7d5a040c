// The cache tiers of DESIGN §2/§5: an in-process L1 of decoded entries in front of a shared L2
// backend that stores encoded bytes. Applies the failure policy (degrade, or strict -> CacheError)
// so callers see hits, misses, and nothing else.
#pragma once

#include "cache/backend.hpp"
#include "cache/cache_url.hpp"
#include "cache/clear_watch.hpp"
#include "cache/lru_map.hpp"
#include "cache/usage_log.hpp"
#include "core/entry.hpp"
#include "core/entry_signature.hpp"
#include "core/log_throttle.hpp"
#include "llm_caching/cache_options.hpp"

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>

namespace llm_caching::cache {

class Redactor;  // cache/redactor.hpp (kept out of this header: <regex>)

/// A failing L2 is logged at most once in this interval (the rest only counted), and a backend
/// that failed to open (not strict) is tried again once it has passed.
inline constexpr std::int64_t kBackendFailureIntervalMs = 30'000;

/// The L2 operations whose failures the tiers count apart (TieredCache::failures; the gateway's
/// llmc_gateway_backend_errors_total{backend,op}).
enum class BackendOp { get, put, erase, clear, prune, stats, lock, unlock, wait, clear_mark };
inline constexpr std::size_t kBackendOpCount = 10;
/// The metric label of an operation: "get", "put", ..., "wait_for_unlock", "clear_mark".
std::string_view to_string(BackendOp op) noexcept;

struct TieredStats {
  std::uint64_t l1_entries = 0;
  std::uint64_t l1_bytes = 0;  ///< memory of the entries held (decoded), plus per-entry overhead
  std::uint64_t l1_hits = 0;
  std::uint64_t l1_misses = 0;
  std::uint64_t l1_evictions = 0;
  BackendStats l2;                   ///< zeros when the backend could not report
  std::uint64_t corrupt = 0;         ///< L2 entries that failed to decode (deleted, served as miss)
  std::uint64_t backend_errors = 0;  ///< L2 failures absorbed as misses (non-strict mode)
  /// L2 entries refused because signing is on and no key of ours signed them (served as a miss,
  /// deleted): without a signature, and with one that does not match.
  std::uint64_t refused_unsigned = 0;
  std::uint64_t refused_wrong_mac = 0;
};

class TieredCache {
 public:
  using EntryPtr = std::shared_ptr<const core::CacheEntry>;

  /// A read that may return an entry past its TTL (stale policies, docs/SINGLE_FLIGHT.md).
  struct GraceLookup {
    EntryPtr entry;        ///< nullptr: a miss (absent, corrupt, or expired beyond the grace)
    bool expired = false;  ///< the entry's TTL has passed, but by no more than the grace
    std::int64_t expired_for_ms = 0;  ///< how long ago it expired (when expired)
  };

  /// l1_max_bytes 0 disables the L1. strict: L2 failures raise CacheError instead of degrading.
  TieredCache(std::shared_ptr<Backend> l2, std::uint64_t l1_max_bytes, bool strict);

  /// The entry, or nullptr on a miss (absent, expired at now_ms, corrupt, or L2 down when not
  /// strict). L1 hits complete without suspending.
  asio::awaitable<EntryPtr> get(const std::string& storage_key, std::int64_t now_ms);
  /// The same, but an entry expired at now_ms by at most grace_ms comes back marked expired. The
  /// L2 only still has it if it was put with a ttl covering the grace (Exchange does so).
  asio::awaitable<GraceLookup> get(const std::string& storage_key, std::int64_t now_ms,
                                   std::int64_t grace_ms);
  /// Writes L1 and L2. ttl 0 = no expiry (the entry's own ttl_ms is what reads check).
  asio::awaitable<void> put(const std::string& storage_key, EntryPtr entry,
                            std::chrono::milliseconds ttl);

  // The two halves of put, for a write-behind (docs/SINGLE_FLIGHT.md): the L1 now, the L2 later.

  /// Stores the entry in the L1, counting its decoded size; false when it is too large to cache
  /// (logged; CacheError when strict). Nothing is encoded: that is put_l2's caller's work.
  bool put_l1(const std::string& storage_key, EntryPtr entry);
  /// Stores encoded bytes in the L2 only (the failure policy applies).
  asio::awaitable<void> put_l2(const std::string& storage_key, std::string encoded,
                               std::chrono::milliseconds ttl);
  /// put_l2 for several entries at once (one SQLite transaction); keys are storage keys.
  asio::awaitable<void> put_l2_many(std::vector<Backend::PutItem> items);
  /// Whether put_l2_many costs less than the same put_l2 calls run together.
  bool l2_writes_batches() const noexcept;
  /// Reads the L1 only: the fresh entry, or nullptr (never suspends, never touches the L2).
  EntryPtr get_l1(const std::string& storage_key, std::int64_t now_ms);
  /// get_l1 for a caller that looks again through get() on a miss (a fast path tried first):
  /// a hit counts, a miss does not (the second lookup counts it).
  EntryPtr peek_l1(const std::string& storage_key, std::int64_t now_ms);
  /// Reads the L2 only, bypassing the L1 (a waiter polling for another process's answer). A
  /// fresh entry is also stored in the L1; nullptr on a miss, expired entry, or failure.
  asio::awaitable<EntryPtr> get_l2(const std::string& storage_key, std::int64_t now_ms);

  /// Cross-process single-flight lock of a storage key (the L2 holds it under lock_key()).
  enum class LockOutcome {
    acquired,        ///< this token holds it
    held_elsewhere,  ///< another token holds it and its ttl has not passed
    unavailable,     ///< the L2 failed (counted and logged; CacheError instead when strict)
  };
  asio::awaitable<LockOutcome> try_lock(const std::string& storage_key, const std::string& token,
                                        std::chrono::milliseconds ttl);
  /// Compare-and-delete; failures are absorbed like any L2 failure (the lock expires anyway).
  asio::awaitable<void> unlock(const std::string& storage_key, const std::string& token);
  /// Returns when the lock of storage_key is released or after at_most (Backend::
  /// wait_for_unlock); a backend failure is absorbed (counted) and the rest of at_most waited.
  asio::awaitable<void> wait_for_unlock(const std::string& storage_key,
                                        std::chrono::milliseconds at_most);
  /// The L2 wakes wait_for_unlock at the release (Redis); otherwise it is a plain wait.
  bool notifies_unlock() const noexcept;
  /// Backend::locks_cost_a_round_trip.
  bool locks_cost_a_round_trip() const noexcept;
  /// "llm-caching:lock:" + storage_key.
  static std::string lock_key(const std::string& storage_key);
  asio::awaitable<bool> erase(const std::string& storage_key);
  /// Removes every key starting with prefix from both tiers; returns how many the L2 removed.
  asio::awaitable<std::uint64_t> clear(const std::string& prefix);
  /// Drops entries expired at now_ms from the L1 and lets the L2 prune; returns the L2's count.
  asio::awaitable<std::uint64_t> prune(std::int64_t now_ms);
  asio::awaitable<TieredStats> stats();

  /// From now on, every key read (a hit in either tier) is recorded in `log`. Set before the
  /// cache is shared (CacheRegistry::open does, from CacheOptions::usage_log).
  void set_usage_log(std::shared_ptr<UsageLog> log) { usage_log_ = std::move(log); }

  /// From now on, every L2 write is signed with keys.current and an L2 entry that no key of
  /// `keys` signed is a miss: counted, logged (its key only) and deleted (core/
  /// entry_signature.hpp). Set before the cache is shared; disabled keys change nothing.
  void set_signing_keys(core::SigningKeys keys) { signing_ = std::move(keys); }
  /// LLM_CACHE_REDACT's patterns: the request an entry keeps is scrubbed with them before it is
  /// stored, whatever the backend (the exchange's provider call does it, with redactor()). Set
  /// before the cache is shared (CacheRegistry::open does, from the environment).
  void set_redactor(Redactor redact);
  const Redactor& redactor() const noexcept;
  /// A keyed canonical request as this cache's entries keep it (scrubbed), for a replay miss to
  /// compare a live request with the recorded ones in one form and never show what is not kept.
  std::string stored_request(std::string_view canonical) const;
  bool signs_entries() const noexcept { return signing_.enabled(); }
  /// L2 entries served as misses for what they held (TieredStats' counters, read without the
  /// L2's stats round trip, for the gateway's /metrics).
  struct EntryRefusals {
    std::uint64_t corrupt = 0;
    std::uint64_t unsigned_entry = 0;
    std::uint64_t wrong_mac = 0;
  };
  EntryRefusals entry_refusals() const noexcept {
    return {corrupt_.load(), refused_unsigned_.load(), refused_wrong_mac_.load()};
  }

  /// Failures absorbed (non-strict) or raised (strict) per L2 operation, failed reads of the
  /// clear mark included; TieredStats::backend_errors counts the absorbed ones of all but those.
  std::array<std::uint64_t, kBackendOpCount> failures() const noexcept;
  /// The L2's kind for a metric label: its URL's scheme ("sqlite", "redis+sentinel", ...).
  std::string backend_kind() const;

  // Clears reaching every process (Backend's clear mark, DESIGN §5; tiered_cache_clear.cpp).

  /// From now on, a thread reads the L2's clear mark every `interval` and empties the L1 when
  /// it moved (ClearWatch). Call before the cache is shared (CacheRegistry::open does, from
  /// CacheOptions::clear_check_interval); nothing happens for an interval of 0 or a backend
  /// that keeps no mark (memory://).
  void watch_clears(std::chrono::milliseconds interval);
  /// Empties the L1 (another process cleared the store). A read of the L2 begun before this
  /// does not put its entry back in the L1.
  void drop_l1();
  /// Replaces the L2's clear mark, so that every process watching drops its L1 (clear() does it
  /// itself; `cache rm` calls it after an erase). Failures: the usual policy.
  asio::awaitable<void> announce_clear();

  bool strict() const noexcept { return strict_; }
  const std::shared_ptr<Backend>& backend() const noexcept { return l2_; }
  /// Backend::unreadable_reason: why the L2 holds the key's entry but cannot read it, or "".
  std::string unreadable_reason(const std::string& storage_key) const {
    return l2_->unreadable_reason(storage_key);
  }
  /// Bounds of recorded_neighbours: a replay miss's explanation costs at most this much.
  struct NeighbourBounds {
    std::size_t max_entries = 1000;  ///< entries read (gets) at most
    std::size_t max_pages = 16;      ///< list_keys calls at most (Redis SCAN pages)
  };
  struct Neighbours {
    /// The entries read that carry their request (format 3), with their keys.
    std::vector<std::pair<std::string, EntryPtr>> entries;
    std::size_t read = 0;  ///< entries read, with or without a request
    bool bounded = false;  ///< keys were left unread: a bound was reached
  };
  /// The L2's entries under `prefix` (a namespace's keys) other than `except`, for the error of
  /// a replay miss (exchange/replay_miss.hpp): a bounded walk of Backend::list_keys. An entry
  /// that does not decode, or whose signature the tiers would refuse, is skipped: nothing is
  /// deleted, logged or counted, and the usage log is not written. Never throws for the L2: a
  /// failure ends the walk with what was read (tiered_neighbours.cpp).
  asio::awaitable<Neighbours> recorded_neighbours(std::string prefix, std::string except,
                                                  NeighbourBounds bounds);

  /// The backend's description (password masked). Safe to log.
  std::string describe() const { return l2_->describe(); }

 private:
  EntryPtr l1_find(const std::string& key, std::int64_t now_ms, bool count_miss = true);
  /// The L2's entry decoded, whatever its TTL says; nullptr on a miss.
  asio::awaitable<EntryPtr> l2_read(const std::string& storage_key);
  /// Stores in the L1 unless drop_l1 ran since generation `seen` was read (kAnyGeneration:
  /// store anyway, for an answer made after any clear).
  void l1_store(const std::string& key, EntryPtr entry, std::uint64_t seen = kAnyGeneration);
  static constexpr std::uint64_t kAnyGeneration = ~std::uint64_t{0};
  /// Call from a catch block: rethrows as CacheError when strict, else logs (at most once per
  /// 30 s) and counts.
  void absorb_backend_failure(BackendOp operation);
  /// The bytes to put in the L2 for `encoded`: signed when signing is on.
  std::string for_l2(const std::string& storage_key, std::string encoded) const;
  /// An L2 entry whose signature was refused: count, log, delete.
  asio::awaitable<void> refuse(const std::string& storage_key, core::SignatureCheck why);

  std::shared_ptr<Backend> l2_;
  const bool strict_;
  const bool l1_enabled_;

  std::mutex l1_mutex_;
  LruMap<EntryPtr> l1_;        // guarded by l1_mutex_
  std::uint64_t l1_hits_ = 0;  // guarded by l1_mutex_
  std::uint64_t l1_misses_ = 0;
  std::uint64_t l1_evictions_ = 0;

  std::shared_ptr<UsageLog> usage_log_;  // null: no log; set before sharing
  std::atomic<std::uint64_t> corrupt_{0};
  std::atomic<std::uint64_t> backend_errors_{0};
  core::LogThrottle failure_log_;
  core::SigningKeys signing_;               // set before sharing
  std::shared_ptr<const Redactor> redact_;  // never null; set before sharing
  std::atomic<std::uint64_t> refused_unsigned_{0};
  std::atomic<std::uint64_t> refused_wrong_mac_{0};
  core::LogThrottle refusal_log_;
  std::array<std::atomic<std::uint64_t>, kBackendOpCount> failures_{};
  std::atomic<std::uint64_t> l1_generation_{0};  // moved by drop_l1, under l1_mutex_
  std::unique_ptr<ClearWatch> clear_watch_;      // last: stopped before the rest goes
};

// backend_registry.cpp

/// Opens a new backend for a parsed URL. Throws CacheError when it cannot be opened.
std::shared_ptr<Backend> open_backend(const BackendConfig& config);

/// The caches a runtime has opened: the same store (same resolved URL, or another spelling of the
/// same file) is opened once and shared by every caller and thread of the runtime; the L1 is
/// shared by callers with the same l1_max_bytes and strict. A per-call options object must not
/// mean a connection (and a cold L1) per call.
class CacheRegistry {
 public:
  /// Throws ConfigurationError for a bad URL. A backend that fails to open raises CacheError
  /// when strict; otherwise the returned cache degrades (every operation is a counted miss) and
  /// opening is retried on a later call.
  std::shared_ptr<TieredCache> open(const CacheOptions& options);

 private:
  struct Registered {
    std::shared_ptr<TieredCache> cache;
    std::int64_t retry_open_at_ms = 0;  ///< non-zero: a degraded stand-in; reopen after this
  };
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Backend>> backends_;
  /// By backend identity, L1 size, strict and signing keys' identity.
  std::map<std::tuple<std::string, std::uint64_t, bool, std::string>, Registered> caches_;
  /// options.usage_log, else $LLM_CACHE_USAGE_LOG: one log per file, shared by every cache of
  /// the registry that logs there; null when neither names a file.
  std::shared_ptr<UsageLog> usage_log_for(const CacheOptions& options);
  std::map<std::filesystem::path, std::shared_ptr<UsageLog>> usage_logs_;
};

}  // namespace llm_caching::cache

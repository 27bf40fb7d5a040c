// A shared cache tier (L2): bytes in, bytes out, with a TTL. Encoded entries (core/entry.hpp) are
// what the exchange stores; a backend never looks inside them.
#pragma once

#include "core/ledger.hpp"
#include "core/ledger_batch.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace llm_caching::cache {

namespace asio = boost::asio;

/// Unix epoch milliseconds. Backends take one so tests can move time instead of sleeping.
using NowMs = std::function<std::int64_t()>;

inline std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// A new clear mark: random, positive, never 0 (Backend::write_clear_mark).
std::int64_t new_clear_mark();

struct BackendStats {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;  ///< stored value bytes (approximate for remote backends)
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t writes = 0;
  std::uint64_t evictions = 0;  ///< removed to stay under the size bound
  std::uint64_t expired = 0;    ///< removed or skipped because their TTL passed
  std::uint64_t errors = 0;     ///< I/O failures seen
};

/// All operations throw CacheError on an I/O failure (the tiering decides to degrade or not).
/// Implementations must be safe to call from several threads at once.
class Backend {
 public:
  virtual ~Backend() = default;
  /// nullopt when absent or expired.
  virtual asio::awaitable<std::optional<std::string>> get(std::string key) = 0;
  /// ttl of zero means no expiry.
  virtual asio::awaitable<void> put(std::string key, std::string value,
                                    std::chrono::milliseconds ttl) = 0;
  /// One value to store with put_many.
  struct PutItem {
    std::string key;
    std::string value;
    std::chrono::milliseconds ttl{0};
  };
  /// Stores every item, as put does, as one write where the backend can (one SQLite
  /// transaction: the pages every write touches are written once for all). The default puts
  /// them one by one. Throws CacheError; then some items may be stored and others not.
  virtual asio::awaitable<void> put_many(std::vector<PutItem> items);
  /// true: put_many is cheaper than the same puts run concurrently (one transaction).
  virtual bool writes_batches() const noexcept { return false; }
  virtual asio::awaitable<bool> erase(std::string key) = 0;
  /// Removes every key starting with `prefix`; returns how many.
  virtual asio::awaitable<std::uint64_t> clear(std::string prefix) = 0;
  /// Removes expired entries now; returns how many.
  virtual asio::awaitable<std::uint64_t> prune() = 0;
  /// One page of list_keys.
  struct KeyPage {
    std::vector<std::string> keys;
    std::string cursor;  ///< pass it back for the next page; empty: this was the last page
  };
  /// The stored keys starting with `prefix`, about `limit` a page (start with an empty cursor),
  /// for the maintenance commands that walk a whole cache (`cache export`, `cache unused`).
  /// Expired entries may be listed (a get then misses); on Redis a key written during the walk
  /// may be listed twice. Lock keys never start with the entry prefix. The default throws
  /// CacheError: a backend that cannot list says so rather than listing nothing.
  virtual asio::awaitable<KeyPage> list_keys(std::string prefix, std::string cursor,
                                             std::size_t limit);
  virtual asio::awaitable<BackendStats> stats() = 0;

  // Clear marks (DESIGN §5, docs/RELIABILITY.md): a clear by any process must reach the L1 of
  // every process sharing the store. The store keeps a mark that every clear replaces with a new
  // random value; each process's tiers read it every CacheOptions::clear_check_interval (off
  // the requests' path, tiered_cache.hpp) and drop their L1 when it changed.

  /// true: the store is shared with other processes and keeps a clear mark (not memory://).
  virtual bool keeps_clear_mark() const noexcept { return false; }
  /// The store's clear mark (0 before any clear). May also store what the backend counts in
  /// batches (Redis: its hit, miss and write counters). Throws CacheError.
  virtual asio::awaitable<std::uint64_t> read_clear_mark() { co_return 0; }
  /// Replaces the mark with a new value (after a clear, or a `cache rm`). Throws CacheError.
  virtual asio::awaitable<void> write_clear_mark() { co_return; }
  /// Why the stored entry of `key` cannot be read (a hand-broken file of `dir://`), for the error
  /// of a replay_only miss; "" when it is absent or readable, or the backend cannot tell. Reads
  /// local state only; never throws.
  virtual std::string unreadable_reason(const std::string& key) {
    (void)key;
    return {};
  }
  /// Where the entry of `key` is kept, for a person to open (dir://: its file); "" when there is
  /// nothing to name beyond the key.
  virtual std::string entry_location(const std::string& key) const {
    (void)key;
    return {};
  }
  // The ledger (core/ledger.hpp, docs/COSTS.md): a record of every call, kept beside the
  // entries. Written by exchange/ledger_writer.* in batches, off the requests' path.

  /// true: ledger_append and ledger_read work on this backend.
  virtual bool keeps_ledger() const noexcept { return false; }
  /// Stores the batch `batch` names, as one write (one Redis script, one SQLite transaction).
  /// A named batch whose writer stored it (or a later one) already is skipped: a batch sent
  /// again after its reply was lost, or replayed twice from a spill file, counts once. Throws
  /// CacheError (none of the batch stored, or, on Redis, perhaps all of it: the writer spills
  /// it, and its replay under the same name is skipped).
  virtual asio::awaitable<void> ledger_append(std::vector<core::LedgerRecord> records,
                                              core::LedgerBatchId batch);
  /// The stored records with since_ms <= time_ms < until_ms, in no set order. Throws
  /// CacheError.
  virtual asio::awaitable<std::vector<core::LedgerRecord>> ledger_read(std::int64_t since_ms,
                                                                       std::int64_t until_ms);

  // Budgets (llm_caching/budget.hpp, docs/COSTS.md): counters of nano-USD, shared by every
  // process that uses the store. exchange/budget_hold.* reserves and settles around a call.

  /// One counter a call charges.
  struct BudgetCharge {
    std::string key;
    std::int64_t limit_nano_usd = 0;
    std::chrono::milliseconds ttl{0};  ///< set on each charge; 0: kept
  };
  struct BudgetVerdict {
    bool granted = true;
    /// Granted: each counter after the charge. Refused: one element, the refused counter as it
    /// is (`refused` its index).
    std::vector<std::int64_t> used;
    std::size_t refused = 0;
  };
  /// true: budget_reserve and budget_adjust work on this backend.
  virtual bool keeps_budgets() const noexcept { return false; }
  /// Adds `amount` to every counter unless one would pass its limit: all or none, atomic
  /// across the processes that share the store. Throws CacheError.
  virtual asio::awaitable<BudgetVerdict> budget_reserve(std::vector<BudgetCharge> charges,
                                                        std::int64_t amount);
  /// Adds `delta` to every counter (negative: gives back the unused part of a reservation).
  /// Throws CacheError.
  virtual asio::awaitable<void> budget_adjust(std::vector<BudgetCharge> charges,
                                              std::int64_t delta);

  /// The URL it was opened with, password masked. Safe to log.
  virtual std::string describe() const = 0;

  // Signed entries (core/entry_signature.hpp): the tiers sign what a get will return.

  /// The bytes a get returns after `encoded` was put under `key`. Most backends return what they
  /// were given; one that keeps entries in another form (dir://) re-encodes them on reads, and
  /// the MAC must be made over those bytes. Throws CacheError when it cannot tell.
  virtual std::string stored_form(const std::string& key, std::string encoded) const {
    (void)key;
    return encoded;
  }
  /// Whether the tiers delete an entry whose signature they refuse. dir:// keeps its files,
  /// which a test suite commits: a refused one is a miss until it is recorded again.
  virtual bool erases_refused_entries() const noexcept { return true; }

  // Cross-process single-flight (docs/SINGLE_FLIGHT.md): a lock per key, owned by a token.
  // The defaults suit a backend that no other process can see: every attempt succeeds, and the
  // in-process flight is the only coordination needed.

  /// Takes `lock_key` for `token` unless another token holds it and its ttl has not passed.
  /// true: this token holds it now. Throws CacheError on an I/O failure.
  virtual asio::awaitable<bool> try_lock(std::string lock_key, std::string token,
                                         std::chrono::milliseconds ttl) {
    (void)lock_key, (void)token, (void)ttl;
    co_return true;
  }
  /// Releases `lock_key` only if `token` still holds it (compare-and-delete): a holder whose
  /// lock expired never deletes its successor's. Throws CacheError on an I/O failure.
  virtual asio::awaitable<void> unlock(std::string lock_key, std::string token) {
    (void)lock_key, (void)token;
    co_return;
  }
  /// Returns when `lock_key` is released by its holder (its answer landed, or it gave up), or
  /// after `at_most`, whichever is first. The default (and a backend that cannot tell) just
  /// waits `at_most`: the caller then polls. Throws CacheError on an I/O failure.
  virtual asio::awaitable<void> wait_for_unlock(std::string lock_key,
                                                std::chrono::milliseconds at_most);
  /// true: wait_for_unlock returns as soon as the lock is released (the caller may wait in
  /// longer rounds).
  virtual bool notifies_unlock() const noexcept { return false; }
  /// true: try_lock and unlock are network round trips (Redis), not a system call or less. A
  /// caller then avoids locking on the way to a read that may well hit.
  virtual bool locks_cost_a_round_trip() const noexcept { return false; }
};

}  // namespace llm_caching::cache

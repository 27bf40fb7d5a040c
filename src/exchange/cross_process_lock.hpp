// The cross-process single-flight of the exchange (docs/SINGLE_FLIGHT.md, "Across processes"):
// the in-process leader of a key takes the key's lock in the L2's reach, or waits for the
// holder's answer, and releases a lock it holds once its answer's L2 write has landed.
#pragma once

#include "cache/tiered_cache.hpp"
#include "exchange/write_behind.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace llm_caching::exchange {

/// How the in-process leader of a key goes on once the cross-process lock is settled: serve
/// `entry`, or call the provider (holding the lock when `token` is set).
struct LockTurn {
  /// An answer found in the L2: serve it, billed 0. Null: call the provider.
  cache::TieredCache::EntryPtr entry;
  /// The entry was found by the call's own first L2 read (a cache hit); otherwise it is another
  /// holder's answer (coalesced).
  bool own_lookup = false;
  /// Without an entry: the lock this call now holds, to release after its answer's L2 write
  /// (HeldLock). Empty: call without the lock (the lock store is down, or lock_wait has passed).
  std::optional<std::string> token;
};

/// Takes the lock of `key` (TieredCache::try_lock, for lock_ttl), or waits for the holder's
/// answer, in total at most lock_wait, trying the lock again after each wait (a holder that
/// failed or died leaves it to this call). l2_unread: the L2 has not been read for this call yet
/// (ExchangeRequest::read_l2_under_lock); the first read (under the lock, or before waiting for
/// another holder) then counts as the call's own lookup. `now_ms` dates the L2 reads (TTLs).
boost::asio::awaitable<LockTurn> lock_across_processes(cache::TieredCache& cache,
                                                       const std::string& key,
                                                       std::chrono::milliseconds lock_ttl,
                                                       std::chrono::milliseconds lock_wait,
                                                       const std::function<std::int64_t()>& now_ms,
                                                       bool l2_unread);

/// 128 random bits as 32 hex digits: who holds a cross-process lock.
std::string new_lock_token();

/// A cross-process lock this call holds. A call that ends without handing it on (an error, a
/// cancellation, a coroutine frame destroyed) releases it in the background; the lock's TTL
/// covers a process that dies.
class HeldLock {
 public:
  /// No token: no lock held (nothing to release).
  HeldLock(WriteBehind& writes, const std::string& key, std::optional<std::string> token)
      : writes_(writes), key_(key), token_(std::move(token)) {}
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;
  ~HeldLock();

  /// Hands the lock on (its release is now the caller's); empty when none is held.
  std::optional<std::string> take() noexcept { return std::exchange(token_, std::nullopt); }

 private:
  WriteBehind& writes_;
  const std::string& key_;
  std::optional<std::string> token_;
};

}  // namespace llm_caching::exchange

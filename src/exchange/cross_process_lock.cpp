#include "exchange/cross_process_lock.hpp"

#include "core/text.hpp"

#include <sys/random.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <random>
#include <string_view>
#include <utility>

namespace llm_caching::exchange {

namespace {

// A waiter polls the L2 for another process's answer with these waits, doubling in between.
constexpr std::chrono::milliseconds kFirstPoll{5};
constexpr std::chrono::milliseconds kLastPoll{50};
// A waiter whose L2 signals the release of a lock (Redis) waits for it in rounds of this length.
constexpr std::chrono::milliseconds kNotifiedRound{1000};

// The turns, as functions: their prvalues are safe to co_return (DESIGN §9 corrections: g++ 12.2
// and braced temporaries in coroutines).

/// An entry found in the L2: a hit when the call's own lookup found it, else another holder's.
LockTurn serve(cache::TieredCache::EntryPtr entry, bool own_lookup) {
  LockTurn turn;
  turn.entry = std::move(entry);
  turn.own_lookup = own_lookup;
  return turn;
}

/// Call the provider holding the lock of `token`.
LockTurn lead_holding(const std::string& token) {
  LockTurn turn;
  turn.token = token;
  return turn;
}

/// Call the provider without the lock.
LockTurn lead_unlocked() {
  return LockTurn();
}

}  // namespace

std::string new_lock_token() {
  std::array<unsigned char, 16> bytes{};
  // The kernel's generator: no per-thread state to leak or to share with a forked child.
  if (::getrandom(bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
    std::random_device device;  // uniqueness is all a token needs
    for (auto& b : bytes) b = static_cast<unsigned char>(device());
  }
  return core::hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

boost::asio::awaitable<LockTurn> lock_across_processes(cache::TieredCache& cache,
                                                       const std::string& key,
                                                       std::chrono::milliseconds lock_ttl,
                                                       std::chrono::milliseconds lock_wait,
                                                       const std::function<std::int64_t()>& now_ms,
                                                       bool l2_unread) {
  const std::string token = new_lock_token();
  const auto give_up_at = std::chrono::steady_clock::now() + lock_wait;
  // With a release signal a round ends early, so rounds can be long: they only bound how late
  // an expired lock (a holder that died) is noticed.
  const bool notified = cache.notifies_unlock();
  auto pause = notified ? kNotifiedRound : kFirstPoll;
  // An entry found by the call's own first L2 read is a hit; one found after waiting for
  // another holder, or that landed between our read and our lock, is that holder's answer.
  for (;;) {
    const auto lock = co_await cache.try_lock(key, token, lock_ttl);
    if (lock == cache::TieredCache::LockOutcome::unavailable) {
      cache::TieredCache::EntryPtr entry;
      if (l2_unread) entry = co_await cache.get_l2(key, now_ms());
      if (entry) co_return serve(std::move(entry), true);
      co_return lead_unlocked();  // degraded: no lock, as on a miss
    }
    cache::TieredCache::EntryPtr landed;
    if (lock == cache::TieredCache::LockOutcome::acquired) {
      // Read first (l2_unread): this is the call's lookup, one read for a miss. Otherwise the
      // holder before us may have landed its answer between our read and our lock.
      landed = co_await cache.get_l2(key, now_ms());
      if (!landed) co_return lead_holding(token);
      co_await cache.unlock(key, token);
      co_return serve(std::move(landed), l2_unread);
    }
    if (l2_unread) {
      // Another process calls for this key: an entry already in the L2 is served now, as a read
      // before the lock would have served it.
      l2_unread = false;
      landed = co_await cache.get_l2(key, now_ms());
      if (landed) co_return serve(std::move(landed), true);
    }
    if (std::chrono::steady_clock::now() >= give_up_at) {
      spdlog::warn(
          "single-flight: {} is still locked by another process after {} ms; calling the "
          "provider without the lock",
          key, lock_wait.count());
      co_return lead_unlocked();
    }
    // Redis ends this wait when the holder releases the lock (its answer landed, or it gave
    // up); other L2s are polled.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        give_up_at - std::chrono::steady_clock::now());
    co_await cache.wait_for_unlock(key, std::clamp(left, std::chrono::milliseconds(1), pause));
    if (!notified) pause = std::min(pause * 2, kLastPoll);
    landed = co_await cache.get_l2(key, now_ms());
    if (landed) co_return serve(std::move(landed), false);
    // Still out, or its holder failed: try the lock again.
  }
}

HeldLock::~HeldLock() {
  if (!token_) return;
  try {
    writes_.queue(key_, nullptr, {}, std::move(token_));
  } catch (const std::exception& e) {
    spdlog::warn("could not release the lock of {}: {}; it expires by itself", key_, e.what());
  }
}

}  // namespace llm_caching::exchange

// The tiers (L1 of decoded entries, L2 backend) and their failure policy. Opening backends and
// the process-wide registry of caches are in backend_registry.cpp.
#include "cache/tiered_cache.hpp"

#include "cache/redactor.hpp"

#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <stdexcept>
#include <utility>

namespace llm_caching::cache {
namespace {

std::int64_t expires_at_ms(const core::CacheEntry& entry) {
  return entry.ttl_ms > 0 ? entry.created_at_ms + entry.ttl_ms : 0;
}

}  // namespace

TieredCache::TieredCache(std::shared_ptr<Backend> l2, std::uint64_t l1_max_bytes, bool strict)
    : l2_(std::move(l2)),
      strict_(strict),
      l1_enabled_(l1_max_bytes > 0),
      l1_(l1_max_bytes),
      failure_log_(std::chrono::milliseconds(kBackendFailureIntervalMs)),
      redact_(std::make_shared<const Redactor>()),
      refusal_log_(std::chrono::milliseconds(kBackendFailureIntervalMs)) {}

void TieredCache::set_redactor(Redactor redact) {
  redact_ = std::make_shared<const Redactor>(std::move(redact));
}

const Redactor& TieredCache::redactor() const noexcept {
  return *redact_;
}

std::string TieredCache::stored_request(std::string_view canonical) const {
  return redact_->apply_to_request(canonical);
}

TieredCache::EntryPtr TieredCache::l1_find(const std::string& key, std::int64_t now_ms,
                                           bool count_miss) {
  if (!l1_enabled_) return nullptr;
  EntryPtr entry;
  std::lock_guard lock(l1_mutex_);
  if (l1_.find(key, now_ms, entry) == LruMap<EntryPtr>::Lookup::hit) {
    ++l1_hits_;
    if (usage_log_) usage_log_->record(key);
    return entry;
  }
  if (count_miss) ++l1_misses_;
  return nullptr;
}

void TieredCache::l1_store(const std::string& key, EntryPtr entry, std::uint64_t seen) {
  if (!l1_enabled_) return;
  const std::int64_t expires_at = expires_at_ms(*entry);
  // The decoded size: that is what the L1 holds in memory, however small zstd made the bytes.
  const std::uint64_t bytes = core::entry_memory_bytes(*entry);
  std::lock_guard lock(l1_mutex_);
  // Read from the L2 before a clear reached this process: the store may no longer hold it.
  if (seen != kAnyGeneration && seen != l1_generation_.load()) return;
  l1_evictions_ += l1_.put(key, std::move(entry), bytes, expires_at);
}

void TieredCache::absorb_backend_failure(BackendOp op) {
  const std::string_view operation = op == BackendOp::wait ? "wait for unlock" : to_string(op);
  ++failures_[static_cast<std::size_t>(op)];
  std::string reason;
  try {
    throw;
  } catch (const CacheError& e) {
    if (strict_) throw;
    reason = e.what();
  } catch (const std::exception& e) {
    if (strict_) {
      throw CacheError(fmt::format("cache backend {} failed during {}: {}", l2_->describe(),
                                   operation, e.what()));
    }
    reason = e.what();
  }
  ++backend_errors_;
  if (failure_log_.allow()) {
    spdlog::warn(
        "cache backend {} failed during {}: {}; continuing without it (calls go to the provider "
        "as on a miss; further failures in the next 30 s are only counted)",
        l2_->describe(), operation, reason);
  }
}

asio::awaitable<TieredCache::EntryPtr> TieredCache::l2_read(const std::string& storage_key) {
  std::optional<std::string> bytes;
  try {
    bytes = co_await l2_->get(storage_key);
  } catch (...) {
    absorb_backend_failure(BackendOp::get);
  }
  if (!bytes) co_return nullptr;
  if (signing_.enabled()) {
    const core::SignatureCheck check = core::check_signature(*bytes, storage_key, signing_);
    if (!core::accepted(check)) {
      co_await refuse(storage_key, check);
      co_return nullptr;
    }
  }

  auto decoded = core::decode_entry(*bytes);
  if (const auto* error = std::get_if<core::DecodeError>(&decoded)) {
    ++corrupt_;
    // The key only: the bytes may hold anything.
    spdlog::warn("cache entry {} is unreadable ({}); treating it as a miss and deleting it",
                 storage_key, core::to_string(*error));
    try {
      co_await l2_->erase(storage_key);
    } catch (...) {
      absorb_backend_failure(BackendOp::erase);
    }
    co_return nullptr;
  }
  if (usage_log_) usage_log_->record(storage_key);
  co_return std::make_shared<const core::CacheEntry>(
      std::get<core::CacheEntry>(std::move(decoded)));
}

asio::awaitable<void> TieredCache::refuse(const std::string& storage_key,
                                          core::SignatureCheck why) {
  ++(why == core::SignatureCheck::unsigned_entry ? refused_unsigned_ : refused_wrong_mac_);
  const bool erase = l2_->erases_refused_entries();
  // The key and the verdict only: never the bytes, the MAC or anything about the signing key.
  // A poisoner can write many entries; the log says so once per 30 s, the counters say how many.
  if (refusal_log_.allow()) {
    spdlog::warn(
        "cache entry {} refused ({}; entries must be signed): treating it as a miss{} (written "
        "without the signing key: a misconfigured writer, or someone poisoning the cache; "
        "further refusals in the next 30 s are only counted)",
        storage_key, core::to_string(why), erase ? " and deleting it" : "");
  }
  if (!erase) co_return;
  try {
    co_await l2_->erase(storage_key);
  } catch (...) {
    absorb_backend_failure(BackendOp::erase);
  }
}

std::string TieredCache::for_l2(const std::string& storage_key, std::string encoded) const {
  if (!signing_.enabled()) return encoded;
  return core::sign_entry(l2_->stored_form(storage_key, std::move(encoded)), storage_key,
                          signing_.current);
}

asio::awaitable<TieredCache::EntryPtr> TieredCache::get(const std::string& storage_key,
                                                        std::int64_t now_ms) {
  if (EntryPtr hit = l1_find(storage_key, now_ms)) co_return hit;
  const std::uint64_t generation = l1_generation_.load();
  EntryPtr entry = co_await l2_read(storage_key);
  if (!entry || entry->expired_at(now_ms)) co_return nullptr;
  l1_store(storage_key, entry, generation);
  co_return entry;
}

asio::awaitable<TieredCache::GraceLookup> TieredCache::get(const std::string& storage_key,
                                                           std::int64_t now_ms,
                                                           std::int64_t grace_ms) {
  GraceLookup lookup;
  if (EntryPtr hit = l1_find(storage_key, now_ms)) {
    lookup.entry = std::move(hit);
    co_return lookup;
  }
  const std::uint64_t generation = l1_generation_.load();
  EntryPtr entry = co_await l2_read(storage_key);
  if (!entry) co_return lookup;
  if (!entry->expired_at(now_ms)) {
    l1_store(storage_key, entry, generation);
    lookup.entry = std::move(entry);
    co_return lookup;
  }
  // Expired entries never go back into the L1: its reads must keep meaning "fresh".
  const std::int64_t expired_for = now_ms - expires_at_ms(*entry);
  if (expired_for > grace_ms) co_return lookup;
  lookup.entry = std::move(entry);
  lookup.expired = true;
  lookup.expired_for_ms = expired_for;
  co_return lookup;
}

asio::awaitable<void> TieredCache::put(const std::string& storage_key, EntryPtr entry,
                                       std::chrono::milliseconds ttl) {
  if (!put_l1(storage_key, entry)) co_return;
  co_await put_l2(storage_key, core::encode_entry(*entry), ttl);  // entry_fits: no length_error
}

bool TieredCache::put_l1(const std::string& storage_key, EntryPtr entry) {
  if (!core::entry_fits(*entry)) {
    // Too large to cache: the answer still reaches the caller, it is just not stored.
    constexpr std::string_view kWhy = "its payload exceeds the 64 MiB limit";
    if (strict_) {
      throw CacheError(fmt::format("cache entry {} is too large to store: {}", storage_key, kWhy));
    }
    spdlog::warn("cache entry {} is too large to store ({}); not caching it", storage_key, kWhy);
    return false;
  }
  l1_store(storage_key, std::move(entry));
  return true;
}

asio::awaitable<void> TieredCache::put_l2(const std::string& storage_key, std::string encoded,
                                          std::chrono::milliseconds ttl) {
  try {
    std::string bytes = for_l2(storage_key, std::move(encoded));
    co_await l2_->put(storage_key, std::move(bytes), ttl);
  } catch (...) {
    absorb_backend_failure(BackendOp::put);
  }
}

TieredCache::EntryPtr TieredCache::get_l1(const std::string& storage_key, std::int64_t now_ms) {
  return l1_find(storage_key, now_ms);
}

TieredCache::EntryPtr TieredCache::peek_l1(const std::string& storage_key, std::int64_t now_ms) {
  return l1_find(storage_key, now_ms, false);
}

asio::awaitable<TieredCache::EntryPtr> TieredCache::get_l2(const std::string& storage_key,
                                                           std::int64_t now_ms) {
  const std::uint64_t generation = l1_generation_.load();
  EntryPtr entry = co_await l2_read(storage_key);
  if (!entry || entry->expired_at(now_ms)) co_return nullptr;
  l1_store(storage_key, entry, generation);
  co_return entry;
}

std::string TieredCache::lock_key(const std::string& storage_key) {
  return "llm-caching:lock:" + storage_key;
}

asio::awaitable<TieredCache::LockOutcome> TieredCache::try_lock(const std::string& storage_key,
                                                                const std::string& token,
                                                                std::chrono::milliseconds ttl) {
  try {
    const bool taken = co_await l2_->try_lock(lock_key(storage_key), token, ttl);
    co_return taken ? LockOutcome::acquired : LockOutcome::held_elsewhere;
  } catch (...) {
    absorb_backend_failure(BackendOp::lock);
  }
  co_return LockOutcome::unavailable;
}

asio::awaitable<void> TieredCache::put_l2_many(std::vector<Backend::PutItem> items) {
  try {
    for (auto& item : items) item.value = for_l2(item.key, std::move(item.value));
    co_await l2_->put_many(std::move(items));
  } catch (...) {
    absorb_backend_failure(BackendOp::put);
  }
}

asio::awaitable<void> TieredCache::unlock(const std::string& storage_key,
                                          const std::string& token) {
  try {
    co_await l2_->unlock(lock_key(storage_key), token);
  } catch (...) {
    absorb_backend_failure(BackendOp::unlock);
  }
}

asio::awaitable<void> TieredCache::wait_for_unlock(const std::string& storage_key,
                                                   std::chrono::milliseconds at_most) {
  const auto until = std::chrono::steady_clock::now() + at_most;
  bool failed = false;
  try {
    co_await l2_->wait_for_unlock(lock_key(storage_key), at_most);
  } catch (...) {
    absorb_backend_failure(BackendOp::wait);
    failed = true;
  }
  if (failed) {
    // Poll as without notifications: the rest of the round on a timer.
    asio::steady_timer timer(co_await asio::this_coro::executor, until);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

bool TieredCache::l2_writes_batches() const noexcept {
  return l2_->writes_batches();
}

bool TieredCache::notifies_unlock() const noexcept {
  return l2_->notifies_unlock();
}

bool TieredCache::locks_cost_a_round_trip() const noexcept {
  return l2_->locks_cost_a_round_trip();
}

asio::awaitable<bool> TieredCache::erase(const std::string& storage_key) {
  bool erased = false;
  if (l1_enabled_) {
    std::lock_guard lock(l1_mutex_);
    erased = l1_.erase(storage_key);
  }
  try {
    erased = co_await l2_->erase(storage_key) || erased;
  } catch (...) {
    absorb_backend_failure(BackendOp::erase);
  }
  co_return erased;
}

asio::awaitable<std::uint64_t> TieredCache::clear(const std::string& prefix) {
  if (l1_enabled_) {
    std::lock_guard lock(l1_mutex_);
    l1_.erase_prefix(prefix);
  }
  std::uint64_t removed = 0;
  try {
    removed = co_await l2_->clear(prefix);
  } catch (...) {
    absorb_backend_failure(BackendOp::clear);
  }
  co_await announce_clear();  // after the entries are gone: a watcher's next L2 read misses
  co_return removed;
}

asio::awaitable<std::uint64_t> TieredCache::prune(std::int64_t now_ms) {
  if (l1_enabled_) {
    std::lock_guard lock(l1_mutex_);
    l1_.erase_expired(now_ms);
  }
  std::uint64_t removed = 0;
  try {
    removed = co_await l2_->prune();
  } catch (...) {
    absorb_backend_failure(BackendOp::prune);
  }
  co_return removed;
}

asio::awaitable<TieredStats> TieredCache::stats() {
  TieredStats stats;
  {
    std::lock_guard lock(l1_mutex_);
    stats.l1_entries = l1_.entries();
    stats.l1_bytes = l1_.bytes();
    stats.l1_hits = l1_hits_;
    stats.l1_misses = l1_misses_;
    stats.l1_evictions = l1_evictions_;
  }
  try {
    stats.l2 = co_await l2_->stats();
  } catch (...) {
    absorb_backend_failure(BackendOp::stats);
  }
  stats.corrupt = corrupt_.load();
  stats.backend_errors = backend_errors_.load();
  stats.refused_unsigned = refused_unsigned_.load();
  stats.refused_wrong_mac = refused_wrong_mac_.load();
  co_return stats;
}

}  // namespace llm_caching::cache

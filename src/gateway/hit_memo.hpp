// A per-worker memo of recent cache hits (worker_state.hpp), keyed by the raw request (target and
// body bytes): a repeated request is answered with the response bytes prepared for the previous
// identical one, without parsing, canonicalising and hashing the body again. It never decides on
// its own that something is a hit: the caller looks the remembered storage key up in the cache
// tiers and serves the memo only when they still hold the very entry the response was prepared from
// (so a TTL expiry, an eviction, a refresh or an erase all fall back to the full path).
#pragma once

#include "core/entry.hpp"
#include "core/ledger.hpp"
#include "gateway/http_types.hpp"
#include "llm_caching/cache_key.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace llm_caching::gateway {

class HitMemo {
 public:
  struct Hit {
    Provider provider = Provider::openai;
    std::string scope;  ///< the tenant partition the hit was served to
    std::string storage_key;
    std::weak_ptr<const core::CacheEntry> entry;  ///< not owned: the memo never pins memory
    std::shared_ptr<const PreparedResponse> response;
    std::int64_t avoided_nano_usd = 0;
    bool priced = true;
    /// With the ledger on: the record of a call this hit answers, but its time and latency (the
    /// record of the call it was memoized from, which had the same caller, request and entry).
    std::optional<core::LedgerRecord> ledger;
  };
  /// Shared, so a caller keeps it while the memo changes under a suspended coroutine.
  using HitPtr = std::shared_ptr<const Hit>;

  /// At most this many requests per worker are remembered (then the memo starts over).
  static constexpr std::size_t kMaxEntries = 512;
  /// Requests and responses larger than this are not remembered.
  static constexpr std::size_t kMaxBodyBytes = 16 * 1024;

  /// The hit remembered for exactly this target and body, or nullptr.
  HitPtr find(std::string_view target, std::string_view body) const;
  /// Remembers (replacing whatever had the same hash); ignores oversized requests or responses.
  void remember(std::string_view target, std::string_view body, HitPtr hit);
  std::size_t size() const noexcept { return slots_.size(); }

 private:
  struct Slot {
    std::string target;
    std::string body;
    HitPtr hit;
  };
  static std::size_t hash_of(std::string_view target, std::string_view body) noexcept;

  std::unordered_map<std::size_t, Slot> slots_;
};

/// True when the request carries none of the headers that change how a hit is served or counted
/// (x-llm-*, cache-control) or which answer it gets (anthropic-beta, openai-beta, an
/// anthropic-version other than the default): only such requests are memoised or answered from
/// the memo, which keys on the target and body alone.
bool has_default_controls(const Headers& headers);

}  // namespace llm_caching::gateway

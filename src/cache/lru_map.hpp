// A byte-bounded LRU map with optional per-entry expiry. Not thread-safe: owners lock around it.
// Shared by MemoryBackend (encoded bytes) and TieredCache's L1 (decoded entries).
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace llm_caching::cache {

/// Bytes charged per entry on top of key and value: list node, hash node, bookkeeping. An
/// estimate, so that a bound on bytes also bounds a flood of tiny entries.
inline constexpr std::uint64_t kLruEntryOverhead = 96;

template <class Value>
class LruMap {
 public:
  enum class Lookup { hit, miss, expired };

  explicit LruMap(std::uint64_t max_bytes) : max_bytes_(max_bytes) {}
  LruMap(const LruMap&) = delete;
  LruMap& operator=(const LruMap&) = delete;

  /// On a hit copies the value into `out` and marks it most recently used. An entry expired at
  /// `now_ms` is removed and reported as `expired`.
  Lookup find(std::string_view key, std::int64_t now_ms, Value& out) {
    const auto it = index_.find(key);
    if (it == index_.end()) return Lookup::miss;
    const auto node = it->second;
    if (node->expires_at_ms != 0 && now_ms >= node->expires_at_ms) {
      remove(it);
      return Lookup::expired;
    }
    order_.splice(order_.begin(), order_, node);
    out = node->value;
    return Lookup::hit;
  }

  /// Inserts or replaces; `expires_at_ms` 0 = never. Returns how many entries were evicted to
  /// make room (an entry larger than the whole bound is not stored and counts as one eviction).
  std::uint64_t put(std::string key, Value value, std::uint64_t value_bytes,
                    std::int64_t expires_at_ms) {
    const std::uint64_t charge = key.size() + value_bytes + kLruEntryOverhead;
    if (auto it = index_.find(key); it != index_.end()) remove(it);
    if (charge > max_bytes_) return 1;
    order_.push_front(Node{std::move(key), std::move(value), charge, expires_at_ms});
    index_.emplace(order_.front().key, order_.begin());
    bytes_ += charge;
    std::uint64_t evicted = 0;
    while (bytes_ > max_bytes_) {
      remove(index_.find(order_.back().key));
      ++evicted;
    }
    return evicted;
  }

  bool erase(std::string_view key) {
    const auto it = index_.find(key);
    if (it == index_.end()) return false;
    remove(it);
    return true;
  }

  /// Removes every entry for which `pred(key, value, expires_at_ms)` holds; returns how many.
  template <class Pred>
  std::uint64_t erase_if(Pred pred) {
    std::uint64_t removed = 0;
    for (auto node = order_.begin(); node != order_.end();) {
      const auto next = std::next(node);
      if (pred(std::string_view(node->key), node->value, node->expires_at_ms)) {
        remove(index_.find(node->key));
        ++removed;
      }
      node = next;
    }
    return removed;
  }

  std::uint64_t erase_prefix(std::string_view prefix) {
    return erase_if(
        [&](std::string_view key, const Value&, std::int64_t) { return key.starts_with(prefix); });
  }

  std::uint64_t erase_expired(std::int64_t now_ms) {
    return erase_if([&](std::string_view, const Value&, std::int64_t expires_at_ms) {
      return expires_at_ms != 0 && now_ms >= expires_at_ms;
    });
  }

  /// Calls `f(key)` for every entry, most recently used first.
  template <class F>
  void for_each_key(F f) const {
    for (const Node& node : order_) f(std::string_view(node.key));
  }

  std::uint64_t entries() const noexcept { return index_.size(); }
  /// Charged bytes (keys + values + per-entry overhead).
  std::uint64_t bytes() const noexcept { return bytes_; }
  std::uint64_t max_bytes() const noexcept { return max_bytes_; }

 private:
  struct Node {
    std::string key;
    Value value;
    std::uint64_t charge;
    std::int64_t expires_at_ms;
  };
  using Order = std::list<Node>;
  // Keys are views into the list nodes, which never move: one copy of each key.
  using Index = std::unordered_map<std::string_view, typename Order::iterator>;

  void remove(typename Index::iterator it) {
    const auto node = it->second;
    bytes_ -= node->charge;
    index_.erase(it);
    order_.erase(node);
  }

  std::uint64_t max_bytes_;
  std::uint64_t bytes_ = 0;
  Order order_;  // front = most recently used
  Index index_;
};

}  // namespace llm_caching::cache

// The HTTP client's idle keep-alive connections (http_client.cpp): per pool key (scheme, host,
// port, proxy), at most a number each, each closed once it has been idle for a timeout. Pure: the
// time comes in as an argument and the connections going out are handed back to be closed, so the
// client keeps the timer and the sockets, and a unit test (test_idle_pool.cpp) steps it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace llm_caching::providers::detail {

template <class Connection>
class IdlePool {
 public:
  using Clock = std::chrono::steady_clock;
  using Handle = std::unique_ptr<Connection>;

  /// A timeout of zero or less: connections never expire.
  IdlePool(std::size_t max_per_key, std::chrono::milliseconds timeout)
      : max_per_key_(max_per_key), timeout_(timeout) {}

  bool expires() const { return timeout_.count() > 0; }
  /// Connections parked now, over every key.
  std::size_t size() const { return size_; }

  /// The connection for `key` parked last (the least likely to be stale), or null. When even it
  /// has been idle for the timeout, so have the others: all of them go to `expired`.
  Handle take(const std::string& key, Clock::time_point now, std::vector<Handle>& expired) {
    auto found = parked_.find(key);
    if (found == parked_.end() || found->second.empty()) return nullptr;
    auto& list = found->second;
    if (expires() && now - list.back().since >= timeout_) {
      for (Idle& idle : list) expired.push_back(std::move(idle.connection));
      size_ -= list.size();
      list.clear();
      return nullptr;
    }
    Handle connection = std::move(list.back().connection);
    list.pop_back();
    --size_;
    return connection;
  }

  /// Parks `connection` for `key`. False when the key has its maximum or the pool is closed:
  /// then the caller still holds the connection, and should close it.
  bool put(const std::string& key, Handle& connection, Clock::time_point now) {
    if (closed_) return false;
    auto& list = parked_[key];
    if (list.size() >= max_per_key_) return false;
    list.push_back({std::move(connection), now});
    ++size_;
    return true;
  }

  /// Moves every connection idle for the timeout to `expired`; returns when the next of those
  /// left expires, or nullopt when none is left (or none ever expires).
  std::optional<Clock::time_point> sweep(Clock::time_point now, std::vector<Handle>& expired) {
    if (!expires()) return std::nullopt;
    std::optional<Clock::time_point> next;
    for (auto& [key, list] : parked_) {
      // Oldest first: each list is in the order its connections were parked.
      auto fresh = std::find_if(list.begin(), list.end(),
                                [&](const Idle& idle) { return now - idle.since < timeout_; });
      for (auto it = list.begin(); it != fresh; ++it) expired.push_back(std::move(it->connection));
      size_ -= static_cast<std::size_t>(fresh - list.begin());
      list.erase(list.begin(), fresh);
      if (!list.empty() && (!next || list.front().since + timeout_ < *next)) {
        next = list.front().since + timeout_;
      }
    }
    return next;
  }

  /// Moves every connection to `closed` and parks none from now on.
  void close(std::vector<Handle>& closed) {
    closed_ = true;
    for (auto& [key, list] : parked_) {
      for (Idle& idle : list) closed.push_back(std::move(idle.connection));
    }
    parked_.clear();
    size_ = 0;
  }

 private:
  struct Idle {
    Handle connection;
    Clock::time_point since;
  };
  std::size_t max_per_key_;
  std::chrono::milliseconds timeout_;
  std::unordered_map<std::string, std::vector<Idle>> parked_;
  std::size_t size_ = 0;
  bool closed_ = false;
};

}  // namespace llm_caching::providers::detail

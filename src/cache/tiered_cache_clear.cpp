// The tiers' side of clears that reach every process (Backend's clear mark, DESIGN §5), and the
// per-operation failure counters.
#include "cache/tiered_cache.hpp"

namespace llm_caching::cache {

std::string_view to_string(BackendOp op) noexcept {
  switch (op) {
    case BackendOp::get:
      return "get";
    case BackendOp::put:
      return "put";
    case BackendOp::erase:
      return "erase";
    case BackendOp::clear:
      return "clear";
    case BackendOp::prune:
      return "prune";
    case BackendOp::stats:
      return "stats";
    case BackendOp::lock:
      return "lock";
    case BackendOp::unlock:
      return "unlock";
    case BackendOp::wait:
      return "wait_for_unlock";
    case BackendOp::clear_mark:
      return "clear_mark";
  }
  return "unknown";
}

std::array<std::uint64_t, kBackendOpCount> TieredCache::failures() const noexcept {
  std::array<std::uint64_t, kBackendOpCount> out{};
  for (std::size_t i = 0; i < kBackendOpCount; ++i) out[i] = failures_[i].load();
  return out;
}

std::string TieredCache::backend_kind() const {
  const std::string description = l2_->describe();
  const std::size_t end = description.find("://");
  return end == std::string::npos ? std::string("unknown") : description.substr(0, end);
}

void TieredCache::watch_clears(std::chrono::milliseconds interval) {
  if (interval.count() <= 0 || !l2_->keeps_clear_mark() || clear_watch_) return;
  clear_watch_ = std::make_unique<ClearWatch>(
      l2_, interval,
      ClearWatch::Callbacks{
          [this] { drop_l1(); },
          // Quietly: a store that is down fails the requests' reads too, and those are logged.
          [this] { ++failures_[static_cast<std::size_t>(BackendOp::clear_mark)]; }});
}

void TieredCache::drop_l1() {
  std::lock_guard lock(l1_mutex_);
  ++l1_generation_;
  l1_.erase_prefix("");
}

asio::awaitable<void> TieredCache::announce_clear() {
  try {
    co_await l2_->write_clear_mark();
  } catch (...) {
    absorb_backend_failure(BackendOp::clear_mark);
  }
}

}  // namespace llm_caching::cache

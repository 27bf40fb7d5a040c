// Gateway metrics in Prometheus text format: lock-free counters (relaxed atomics) that every
// worker thread updates, rendered on GET /metrics.
#pragma once

#include "core/ledger.hpp"
#include "gateway/limits.hpp"
#include "gateway/stale.hpp"
#include "llm_caching/cache_key.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llm_caching::gateway {

/// The classes of paths the gateway passes through uncached (passthrough.cpp), for the counters:
/// the first segment after the API version, "other" for the rest.
inline constexpr std::array<std::string_view, 11> kPassthroughClasses = {
    "files",       "uploads",   "batches",       "audio", "images", "models",
    "fine_tuning", "responses", "vector_stores", "chat",  "other"};

/// What a request turned out to be, for the counters.
enum class Outcome { hit, miss, bypass, error, other };

struct RequestRecord {
  bool llm = false;  ///< a provider route (the provider, cache and cost fields apply)
  Provider provider = Provider::openai;
  Outcome outcome = Outcome::other;
  int status = 200;
  std::chrono::nanoseconds latency{0};
  /// Of `latency`, the time spent waiting for the upstream's answers.
  std::chrono::nanoseconds upstream_wait{0};
  /// Whether latency - upstream_wait is the gateway's own time: false when the request also
  /// waited for something else (another caller's flight, a retry's backoff) or failed.
  bool overhead_applies = false;
  int upstream_calls = 0;
  std::int64_t cost_nano_usd = 0;
  std::int64_t avoided_nano_usd = 0;
  bool unpriced = false;
  /// Budgets: refused by a hard one (429 budget_exceeded), and soft ones the call went past.
  bool budget_refused = false;
  int soft_budgets_exceeded = 0;
  /// Set when an expired entry was served under a stale policy: why.
  std::optional<StaleReason> stale;
  std::string_view task;  ///< x-llm-task, "" when not given
  /// Set by a provider route when the ledger is on: the record to write once the request ends
  /// (its latency is filled in then).
  std::optional<core::LedgerRecord> ledger;
  /// Or, for a memoized hit: the memo's record of such a call, which the ledger copies or folds.
  std::shared_ptr<const core::LedgerRecord> ledger_like;
};

class Metrics {
 public:
  /// Upper bounds of the latency histogram buckets, in seconds.
  static constexpr std::array<double, 14> kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30};
  /// Upper bounds of the overhead histogram buckets, in seconds: finer, as the gateway's own
  /// time is measured in microseconds.
  static constexpr std::array<double, 13> kOverheadBuckets = {
      0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1, 10};
  /// Distinct task names tracked; later ones are summed under task="other".
  static constexpr std::size_t kMaxTasks = 200;

  void record(const RequestRecord& record);
  /// One open-connections gauge per worker thread; called once, before the server starts.
  void set_workers(std::size_t count);
  void connection_opened(std::size_t worker) {
    connections_.fetch_add(1, std::memory_order_relaxed);
    open_[worker].fetch_add(1, std::memory_order_relaxed);
  }
  void connection_closed(std::size_t worker) {
    open_[worker].fetch_sub(1, std::memory_order_relaxed);
  }
  /// Connections handed to `worker` and not yet closed (the acceptors spread on these).
  std::int64_t open_connections(std::size_t worker) const {
    return open_[worker].load(std::memory_order_relaxed);
  }
  /// A limit refused something (counted by reason).
  void refused(Refusal reason) {
    refused_[static_cast<std::size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t refusals(Refusal reason) const {
    return refused_[static_cast<std::size_t>(reason)].load(std::memory_order_relaxed);
  }
  /// Connections open across all workers.
  std::int64_t open_connections_total() const {
    std::int64_t total = 0;
    for (std::size_t w = 0; w < workers_; ++w) total += open_[w].load(std::memory_order_relaxed);
    return total;
  }
  /// A request forwarded uncached (kPassthroughClasses[route_class]), and its upstream's status
  /// (0: unreachable).
  void passed_through(std::size_t route_class) {
    passthrough_[route_class].fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t passed_through_count(std::size_t route_class) const {
    return passthrough_[route_class].load(std::memory_order_relaxed);
  }
  void request_started() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void request_finished() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  /// Prometheus text exposition format 0.0.4.
  std::string render() const;
  /// Appends the cache's refused entries (llmc_gateway_cache_entries_refused_total{reason}):
  /// counted by the tiers, not here.
  static void render_cache_refusals(std::string& out, std::uint64_t corrupt,
                                    std::uint64_t unsigned_entry, std::uint64_t wrong_mac);
  /// Appends the cache backend's failures by operation
  /// (llmc_gateway_backend_errors_total{backend,op}): counted by the tiers, not here.
  static void render_backend_errors(
      std::string& out, std::string_view backend,
      const std::vector<std::pair<std::string_view, std::uint64_t>>& by_operation);

 private:
  // render()'s sections, in the order they appear.
  void render_requests(std::string& out) const;
  void render_per_provider(std::string& out) const;
  void render_outcomes(std::string& out) const;
  void render_latency_and_connections(std::string& out) const;
  void render_tasks(std::string& out) const;

  static constexpr std::size_t kProviders = 3;
  static constexpr std::size_t kOutcomes = 5;
  using Counter = std::atomic<std::uint64_t>;
  template <std::size_t N>
  struct Histogram {
    std::array<Counter, N> buckets{};
    Counter count{0};
    Counter sum_ns{0};
    void observe(const std::array<double, N>& bounds, std::chrono::nanoseconds value);
  };
  template <std::size_t N>
  static void render_histogram(std::string& out, std::string_view name, std::string_view outcome,
                               const std::array<double, N>& bounds, const Histogram<N>& h);
  struct TaskCost {
    std::int64_t cost_nano_usd = 0;
    std::int64_t avoided_nano_usd = 0;
    std::uint64_t requests = 0;
  };

  std::array<std::array<Counter, kOutcomes>, kProviders> llm_requests_{};
  std::array<Counter, kOutcomes> other_requests_{};
  std::array<Counter, 5> status_classes_{};  // 1xx..5xx
  std::array<Counter, kProviders> upstream_calls_{};
  std::array<std::atomic<std::int64_t>, kProviders> cost_nano_usd_{};
  std::array<std::atomic<std::int64_t>, kProviders> avoided_nano_usd_{};
  std::array<Counter, kProviders> unpriced_{};
  std::array<Counter, 2> stale_served_{};  // by StaleReason
  Counter budget_refused_{0};
  Counter soft_budgets_exceeded_{0};
  std::array<Histogram<kBuckets.size()>, kOutcomes> latency_{};
  std::array<Histogram<kOverheadBuckets.size()>, kOutcomes> overhead_{};
  std::array<Counter, kRefusalNames.size()> refused_{};
  std::array<Counter, kPassthroughClasses.size()> passthrough_{};
  Counter connections_{0};
  std::unique_ptr<std::atomic<std::int64_t>[]> open_;  // per worker, set_workers() sizes it
  std::size_t workers_ = 0;
  std::atomic<std::int64_t> in_flight_{0};

  mutable std::mutex tasks_mutex_;
  std::map<std::string, TaskCost, std::less<>> tasks_;  // guarded by tasks_mutex_
};

}  // namespace llm_caching::gateway

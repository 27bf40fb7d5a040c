#include "gateway/metrics.hpp"

#include "gateway/controls.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace llm_caching::gateway {

namespace {

constexpr std::array<std::string_view, 5> kOutcomeNames = {"hit", "miss", "bypass", "error",
                                                           "other"};
constexpr std::array<std::string_view, 2> kStaleReasonNames = {"revalidate", "error"};
constexpr std::array<Provider, 3> kProviderList = {Provider::openai, Provider::anthropic,
                                                   Provider::gemini};

constexpr auto relaxed = std::memory_order_relaxed;

/// Prometheus label values escape backslash, double quote and newline.
std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

template <std::size_t N>
void Metrics::Histogram<N>::observe(const std::array<double, N>& bounds,
                                    std::chrono::nanoseconds value) {
  const double seconds = std::chrono::duration<double>(value).count();
  for (std::size_t i = 0; i < N; ++i) {
    if (seconds <= bounds[i]) {
      buckets[i].fetch_add(1, relaxed);
      break;
    }
  }
  count.fetch_add(1, relaxed);
  sum_ns.fetch_add(static_cast<std::uint64_t>(value.count()), relaxed);
}

template <std::size_t N>
void Metrics::render_histogram(std::string& out, std::string_view name, std::string_view outcome,
                               const std::array<double, N>& bounds, const Histogram<N>& h) {
  auto it = std::back_inserter(out);
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < N; ++b) {
    cumulative += h.buckets[b].load(relaxed);
    fmt::format_to(it, "{}_bucket{{outcome=\"{}\",le=\"{}\"}} {}\n", name, outcome, bounds[b],
                   cumulative);
  }
  const std::uint64_t count = h.count.load(relaxed);
  fmt::format_to(it,
                 "{0}_bucket{{outcome=\"{1}\",le=\"+Inf\"}} {2}\n"
                 "{0}_sum{{outcome=\"{1}\"}} {3:.9f}\n"
                 "{0}_count{{outcome=\"{1}\"}} {2}\n",
                 name, outcome, count, static_cast<double>(h.sum_ns.load(relaxed)) / 1e9);
}

void Metrics::set_workers(std::size_t count) {
  open_ = std::make_unique<std::atomic<std::int64_t>[]>(count);
  workers_ = count;
}

void Metrics::record(const RequestRecord& r) {
  const auto outcome = static_cast<std::size_t>(r.outcome);
  const auto provider = static_cast<std::size_t>(r.provider);
  if (r.llm) {
    llm_requests_[provider][outcome].fetch_add(1, relaxed);
    upstream_calls_[provider].fetch_add(static_cast<std::uint64_t>(r.upstream_calls), relaxed);
    cost_nano_usd_[provider].fetch_add(r.cost_nano_usd, relaxed);
    avoided_nano_usd_[provider].fetch_add(r.avoided_nano_usd, relaxed);
    if (r.unpriced) unpriced_[provider].fetch_add(1, relaxed);
    if (r.stale) stale_served_[static_cast<std::size_t>(*r.stale)].fetch_add(1, relaxed);
    if (r.budget_refused) budget_refused_.fetch_add(1, relaxed);
    soft_budgets_exceeded_.fetch_add(static_cast<std::uint64_t>(r.soft_budgets_exceeded), relaxed);
  } else {
    other_requests_[outcome].fetch_add(1, relaxed);
  }
  if (r.status >= 100 && r.status < 600) status_classes_[r.status / 100 - 1].fetch_add(1, relaxed);

  latency_[outcome].observe(kBuckets, r.latency);
  if (r.overhead_applies && r.outcome != Outcome::error && r.outcome != Outcome::other) {
    overhead_[outcome].observe(kOverheadBuckets,
                               std::max(r.latency - r.upstream_wait, std::chrono::nanoseconds(0)));
  }

  if (r.llm && !r.task.empty()) {
    std::lock_guard lock(tasks_mutex_);
    auto found = tasks_.find(r.task);
    if (found == tasks_.end()) {
      found = tasks_.size() < kMaxTasks ? tasks_.emplace(std::string(r.task), TaskCost{}).first
                                        : tasks_.try_emplace("other").first;
    }
    found->second.cost_nano_usd += r.cost_nano_usd;
    found->second.avoided_nano_usd += r.avoided_nano_usd;
    ++found->second.requests;
  }
}

std::string Metrics::render() const {
  std::string out;
  render_requests(out);
  render_per_provider(out);
  render_outcomes(out);
  render_latency_and_connections(out);
  render_tasks(out);
  return out;
}

void Metrics::render_cache_refusals(std::string& out, std::uint64_t corrupt,
                                    std::uint64_t unsigned_entry, std::uint64_t wrong_mac) {
  header(out, "llmc_gateway_cache_entries_refused_total", "counter",
         "Stored entries served as a miss and deleted: unreadable (corrupt), or, with signed "
         "entries on, unsigned or with a signature no key of ours made (wrong_mac).");
  fmt::format_to(std::back_inserter(out),
                 "llmc_gateway_cache_entries_refused_total{{reason=\"corrupt\"}} {}\n"
                 "llmc_gateway_cache_entries_refused_total{{reason=\"unsigned\"}} {}\n"
                 "llmc_gateway_cache_entries_refused_total{{reason=\"wrong_mac\"}} {}\n",
                 corrupt, unsigned_entry, wrong_mac);
}

void Metrics::render_backend_errors(
    std::string& out, std::string_view backend,
    const std::vector<std::pair<std::string_view, std::uint64_t>>& by_operation) {
  header(out, "llmc_gateway_backend_errors_total", "counter",
         "Failed operations on the cache backend (the L2), by operation: reads and writes that "
         "went on as misses, lock round trips, reads of the clear mark.");
  for (const auto& [op, count] : by_operation) {
    fmt::format_to(std::back_inserter(out),
                   "llmc_gateway_backend_errors_total{{backend=\"{}\",op=\"{}\"}} {}\n",
                   escape_label(backend), op, count);
  }
}

void Metrics::render_requests(std::string& out) const {
  auto it = std::back_inserter(out);

  header(out, "llmc_gateway_requests_total", "counter",
         "Requests by route kind, provider and cache outcome.");
  for (Provider p : kProviderList) {
    for (std::size_t o = 0; o < kOutcomes; ++o) {
      fmt::format_to(it, "llmc_gateway_requests_total{{provider=\"{}\",outcome=\"{}\"}} {}\n",
                     to_string(p), kOutcomeNames[o],
                     llm_requests_[static_cast<std::size_t>(p)][o].load(relaxed));
    }
  }
  for (std::size_t o = 0; o < kOutcomes; ++o) {
    fmt::format_to(it, "llmc_gateway_requests_total{{provider=\"none\",outcome=\"{}\"}} {}\n",
                   kOutcomeNames[o], other_requests_[o].load(relaxed));
  }
}

void Metrics::render_per_provider(std::string& out) const {
  auto it = std::back_inserter(out);
  auto per_provider = [&](std::string_view name, std::string_view type, std::string_view help,
                          auto value) {
    header(out, name, type, help);
    for (Provider p : kProviderList) {
      fmt::format_to(it, "{}{{provider=\"{}\"}} {}\n", name, to_string(p),
                     value(static_cast<std::size_t>(p)));
    }
  };
  per_provider("llmc_gateway_cache_hits_total", "counter", "Answers served from the cache.",
               [&](std::size_t p) {
                 return llm_requests_[p][static_cast<std::size_t>(Outcome::hit)].load(relaxed);
               });
  per_provider("llmc_gateway_cache_misses_total", "counter",
               "Provider calls made because the cache had no answer (or was bypassed).",
               [&](std::size_t p) {
                 return llm_requests_[p][static_cast<std::size_t>(Outcome::miss)].load(relaxed) +
                        llm_requests_[p][static_cast<std::size_t>(Outcome::bypass)].load(relaxed);
               });
  per_provider("llmc_gateway_errors_total", "counter",
               "Provider-route requests answered with an error.", [&](std::size_t p) {
                 return llm_requests_[p][static_cast<std::size_t>(Outcome::error)].load(relaxed);
               });
  per_provider("llmc_gateway_upstream_calls_total", "counter",
               "HTTP calls to the upstream provider, retries included.",
               [&](std::size_t p) { return upstream_calls_[p].load(relaxed); });
  per_provider("llmc_gateway_spent_usd_total", "counter", "Dollars billed by upstream calls.",
               [&](std::size_t p) { return format_usd(cost_nano_usd_[p].load(relaxed)); });
  per_provider("llmc_gateway_avoided_usd_total", "counter",
               "Dollars not spent because the answer came from the cache.",
               [&](std::size_t p) { return format_usd(avoided_nano_usd_[p].load(relaxed)); });
  per_provider("llmc_gateway_unpriced_requests_total", "counter",
               "Calls to a model missing from the price table (costed 0).",
               [&](std::size_t p) { return unpriced_[p].load(relaxed); });
}

void Metrics::render_outcomes(std::string& out) const {
  auto it = std::back_inserter(out);
  header(out, "llmc_gateway_stale_served_total", "counter",
         "Expired answers served under a stale policy, by reason: revalidate (at once, while one "
         "background call refreshes the entry) or error (in place of a failed upstream call).");
  for (std::size_t r = 0; r < stale_served_.size(); ++r) {
    fmt::format_to(it, "llmc_gateway_stale_served_total{{reason=\"{}\"}} {}\n",
                   kStaleReasonNames[r], stale_served_[r].load(relaxed));
  }

  header(out, "llmc_gateway_budget_exceeded_total", "counter",
         "Budgets exceeded, by kind: hard (the call was refused with 429 budget_exceeded) or soft "
         "(the call went on; counted once per soft budget it went past, and logged).");
  fmt::format_to(it, "llmc_gateway_budget_exceeded_total{{kind=\"hard\"}} {}\n",
                 budget_refused_.load(relaxed));
  fmt::format_to(it, "llmc_gateway_budget_exceeded_total{{kind=\"soft\"}} {}\n",
                 soft_budgets_exceeded_.load(relaxed));

  header(out, "llmc_gateway_responses_total", "counter", "Responses by HTTP status class.");
  for (std::size_t c = 0; c < status_classes_.size(); ++c) {
    fmt::format_to(it, "llmc_gateway_responses_total{{code=\"{}xx\"}} {}\n", c + 1,
                   status_classes_[c].load(relaxed));
  }
}

void Metrics::render_latency_and_connections(std::string& out) const {
  auto it = std::back_inserter(out);
  header(out, "llmc_gateway_request_duration_seconds", "histogram",
         "Time from a complete request to the end of its response, by cache outcome.");
  for (std::size_t o = 0; o < kOutcomes; ++o) {
    render_histogram(out, "llmc_gateway_request_duration_seconds", kOutcomeNames[o], kBuckets,
                     latency_[o]);
  }
  header(out, "llmc_gateway_overhead_seconds", "histogram",
         "The gateway's own time in a request: its duration minus the wait for the upstream's "
         "answer, for hits, misses and bypasses with at most one upstream attempt that waited "
         "for nothing else (no other caller's flight, no retry).");
  for (const Outcome o : {Outcome::hit, Outcome::miss, Outcome::bypass}) {
    const auto i = static_cast<std::size_t>(o);
    render_histogram(out, "llmc_gateway_overhead_seconds", kOutcomeNames[i], kOverheadBuckets,
                     overhead_[i]);
  }

  header(out, "llmc_gateway_connections_total", "counter", "Client connections accepted.");
  fmt::format_to(it, "llmc_gateway_connections_total {}\n", connections_.load(relaxed));
  header(out, "llmc_gateway_open_connections", "gauge",
         "Client connections open, per worker thread.");
  for (std::size_t w = 0; w < workers_; ++w) {
    fmt::format_to(it, "llmc_gateway_open_connections{{worker=\"{}\"}} {}\n", w,
                   open_[w].load(relaxed));
  }
  header(out, "llmc_gateway_refused_total", "counter",
         "Requests and connections a limit refused, by reason (docs/SECURITY-MODEL.md).");
  for (std::size_t r = 0; r < refused_.size(); ++r) {
    fmt::format_to(it, "llmc_gateway_refused_total{{reason=\"{}\"}} {}\n", kRefusalNames[r],
                   refused_[r].load(relaxed));
  }
  header(out, "llmc_gateway_passthrough_requests_total", "counter",
         "Requests forwarded to an upstream uncached (files, batches, ...), by route class.");
  for (std::size_t c = 0; c < passthrough_.size(); ++c) {
    fmt::format_to(it, "llmc_gateway_passthrough_requests_total{{class=\"{}\"}} {}\n",
                   kPassthroughClasses[c], passthrough_[c].load(relaxed));
  }
  header(out, "llmc_gateway_requests_in_flight", "gauge", "Requests being handled now.");
  fmt::format_to(it, "llmc_gateway_requests_in_flight {}\n", in_flight_.load(relaxed));
}

void Metrics::render_tasks(std::string& out) const {
  auto it = std::back_inserter(out);
  header(out, "llmc_gateway_task_spent_usd_total", "counter", "Dollars billed, by x-llm-task.");
  std::lock_guard lock(tasks_mutex_);
  for (const auto& [task, cost] : tasks_) {
    fmt::format_to(it, "llmc_gateway_task_spent_usd_total{{task=\"{}\"}} {}\n", escape_label(task),
                   format_usd(cost.cost_nano_usd));
  }
  header(out, "llmc_gateway_task_avoided_usd_total", "counter",
         "Dollars avoided by cache hits, by x-llm-task.");
  for (const auto& [task, cost] : tasks_) {
    fmt::format_to(it, "llmc_gateway_task_avoided_usd_total{{task=\"{}\"}} {}\n",
                   escape_label(task), format_usd(cost.avoided_nano_usd));
  }
  header(out, "llmc_gateway_task_requests_total", "counter",
         "Provider-route requests, by x-llm-task.");
  for (const auto& [task, cost] : tasks_) {
    fmt::format_to(it, "llmc_gateway_task_requests_total{{task=\"{}\"}} {}\n", escape_label(task),
                   cost.requests);
  }
}

}  // namespace llm_caching::gateway

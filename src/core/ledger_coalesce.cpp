// Folding the records of calls served without a provider call (core/ledger.hpp).
#include "core/ledger.hpp"

#include <algorithm>
#include <functional>
#include <unordered_map>

namespace llm_caching::core {

namespace {

bool foldable(const LedgerRecord& r) noexcept {
  return served_from_cache(r.outcome) && r.cost_nano_usd == 0;
}

/// What two records must share to be folded: every dimension a report groups by, and the second.
struct GroupOf {
  const LedgerRecord* r;
  std::int64_t second() const noexcept {
    // Floor division: a time before 1970 still falls in its own second.
    return r->time_ms >= 0 ? r->time_ms / 1000 : (r->time_ms - 999) / 1000;
  }
  friend bool operator==(const GroupOf& a, const GroupOf& b) noexcept {
    return a.second() == b.second() && a.r->outcome == b.r->outcome && a.r->task == b.r->task &&
           a.r->namespace_ == b.r->namespace_ && a.r->model == b.r->model &&
           a.r->provider == b.r->provider && a.r->tenant == b.r->tenant && a.r->tags == b.r->tags;
  }
};

struct GroupHash {
  std::size_t operator()(const GroupOf& g) const noexcept {
    const std::hash<std::string> text;
    std::size_t h = std::hash<std::int64_t>{}(g.second()) ^ static_cast<std::size_t>(g.r->outcome);
    for (const std::string* field :
         {&g.r->task, &g.r->namespace_, &g.r->model, &g.r->provider, &g.r->tenant, &g.r->tags}) {
      h = h * 1099511628211ULL ^ text(*field);
    }
    return h;
  }
};

void fold_into(LedgerRecord& into, const LedgerRecord& r) noexcept {
  into.calls += r.calls;
  into.time_ms = std::min(into.time_ms, r.time_ms);
  into.input_tokens += r.input_tokens;
  into.output_tokens += r.output_tokens;
  into.cache_write_tokens += r.cache_write_tokens;
  into.cache_read_tokens += r.cache_read_tokens;
  into.avoided_nano_usd += r.avoided_nano_usd;
  into.latency_us += r.latency_us;
}

}  // namespace

std::vector<LedgerRecord> coalesce_served_records(std::vector<LedgerRecord>& records) {
  std::vector<LedgerRecord> out;
  out.reserve(records.size());
  // Group -> index in `out`. The keys point into `records`, which outlives the map and is not
  // resized.
  std::unordered_map<GroupOf, std::size_t, GroupHash> groups;
  for (LedgerRecord& r : records) {
    if (!foldable(r)) {
      out.push_back(std::move(r));
      continue;
    }
    const auto [at, inserted] = groups.try_emplace(GroupOf{&r}, out.size());
    if (inserted) {
      out.push_back(r);  // a copy: `r` stays the group's key
    } else {
      fold_into(out[at->second], r);
    }
  }
  groups.clear();  // its keys point into `records`
  records.clear();
  return out;
}

}  // namespace llm_caching::core

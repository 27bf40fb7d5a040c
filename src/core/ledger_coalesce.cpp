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

std::int64_t second_of(std::int64_t time_ms) noexcept {
  // Floor division: a time before 1970 still falls in its own second.
  return time_ms >= 0 ? time_ms / 1000 : (time_ms - 999) / 1000;
}

/// Every dimension a report groups by.
bool same_dimensions(const LedgerRecord& a, const LedgerRecord& b) noexcept {
  return a.outcome == b.outcome && a.task == b.task && a.namespace_ == b.namespace_ &&
         a.model == b.model && a.provider == b.provider && a.tenant == b.tenant && a.tags == b.tags;
}

/// What two records must share to be folded: every dimension a report groups by, and the second.
struct GroupOf {
  const LedgerRecord* r;
  friend bool operator==(const GroupOf& a, const GroupOf& b) noexcept {
    return second_of(a.r->time_ms) == second_of(b.r->time_ms) && same_dimensions(*a.r, *b.r);
  }
};

struct GroupHash {
  std::size_t operator()(const GroupOf& g) const noexcept {
    const std::hash<std::string> text;
    std::size_t h =
        std::hash<std::int64_t>{}(second_of(g.r->time_ms)) ^ static_cast<std::size_t>(g.r->outcome);
    for (const std::string* field :
         {&g.r->task, &g.r->namespace_, &g.r->model, &g.r->provider, &g.r->tenant, &g.r->tags}) {
      h = h * 1099511628211ULL ^ text(*field);
    }
    return h;
  }
};

/// Adds one more record like `r`, but ended at `time_ms` after `latency_us`, to `into`.
void fold_into(LedgerRecord& into, const LedgerRecord& r, std::int64_t time_ms,
               std::int64_t latency_us) noexcept {
  into.calls += r.calls;
  into.time_ms = std::min(into.time_ms, time_ms);
  into.input_tokens += r.input_tokens;
  into.output_tokens += r.output_tokens;
  into.cache_write_tokens += r.cache_write_tokens;
  into.cache_read_tokens += r.cache_read_tokens;
  into.avoided_nano_usd += r.avoided_nano_usd;
  into.latency_us += latency_us;
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
      fold_into(out[at->second], r, r.time_ms, r.latency_us);
    }
  }
  groups.clear();  // its keys point into `records`
  records.clear();
  return out;
}

bool fold_served_into(LedgerRecord& into, const LedgerRecord& record) noexcept {
  return fold_served_into(into, record, record.time_ms, record.latency_us);
}

bool fold_served_into(LedgerRecord& into, const LedgerRecord& like, std::int64_t time_ms,
                      std::int64_t latency_us) noexcept {
  if (!foldable(into) || !foldable(like) || second_of(into.time_ms) != second_of(time_ms) ||
      !same_dimensions(into, like)) {
    return false;
  }
  fold_into(into, like, time_ms, latency_us);
  return true;
}

}  // namespace llm_caching::core

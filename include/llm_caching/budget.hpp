// Budgets (docs/COSTS.md, "Budgets"): a limit on what calls may spend, per task, tenant, tag or
// namespace (or all calls), per UTC day, month or in total. A call reserves its worst case before
// the provider is called and settles to its real cost after; the counters live in the cache's
// backend, so every process sharing a Redis or SQLite cache shares them. Hits never spend.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace llm_caching {

struct Budget {
  enum class Scope { all, task, tenant, tag, namespace_ };
  enum class Period { day, month, total };

  Scope scope = Scope::all;
  std::string value;  ///< the task, tenant, tag or namespace it applies to ("" for all)
  Period period = Period::total;
  std::int64_t limit_nano_usd = 0;
  /// A soft budget refuses nothing: a call past it is logged (and counted by the gateway).
  bool soft = false;

  /// "task=nightly-eval:20usd/day", "tenant=team-a:5usd/month", "tag=batch:0.5usd" (total),
  /// "namespace=tests:1usd/total", "all:100usd/month"; a trailing ",soft" makes it soft.
  /// Throws ConfigurationError naming what is wrong.
  static Budget parse(std::string_view spec);
  /// The spec back, as parse reads it.
  std::string describe() const;
};

}  // namespace llm_caching

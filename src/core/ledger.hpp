// The ledger's record of one call (docs/COSTS.md, "The ledger") and the pure parts around it:
// the line a record is stored and spilled as, and the report `llm-caching costs` and the
// gateway's /costs give. No I/O here: the backends store records, exchange/ledger_writer.*
// moves them off the hot path.
#pragma once

#include "llm_caching/usage.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::core {

/// How a call ended. Every call that reaches the exchange gets one record; so does each
/// background refresh a stale-while-revalidate answer starts (`refresh`: the cache's own call to
/// the provider, on behalf of the caller that got the stale answer, which it spends for).
enum class LedgerOutcome { miss, hit, coalesced, stale, failed, refresh };

std::string_view outcome_name(LedgerOutcome outcome) noexcept;
/// Answered without a provider call of its own (hit, coalesced, stale): what reports count as
/// hits and what coalesce_served_records folds.
constexpr bool served_from_cache(LedgerOutcome outcome) noexcept {
  return outcome == LedgerOutcome::hit || outcome == LedgerOutcome::coalesced ||
         outcome == LedgerOutcome::stale;
}
std::optional<LedgerOutcome> outcome_from_name(std::string_view name) noexcept;

struct LedgerRecord {
  std::int64_t time_ms = 0;  ///< Unix ms when the call finished
  std::string task;
  std::string namespace_;
  std::string model;
  std::string provider;
  /// The gateway: x-llm-user, else the caller's key scope (a one-way hash); the library: its
  /// RunOptions::tenant.
  std::string tenant;
  std::string tags;  ///< comma-separated (x-llm-tags as given, spaces trimmed)
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  std::int64_t cache_write_tokens = 0;
  std::int64_t cache_read_tokens = 0;
  std::int64_t cost_nano_usd = 0;
  std::int64_t avoided_nano_usd = 0;
  std::int64_t latency_us = 0;  ///< of the call; of all its calls summed when calls > 1
  LedgerOutcome outcome = LedgerOutcome::miss;
  /// The calls this record stands for: 1, or more for answers served without a provider call
  /// that coalesce_served_records folded into one row (token counts, costs and latency summed).
  std::int64_t calls = 1;

  friend bool operator==(const LedgerRecord&, const LedgerRecord&) = default;
};

/// Copies the four token counts of `usage` into `record`.
void take_usage(LedgerRecord& record, const Usage& usage) noexcept;

/// Folds the records of calls answered without a provider call of their own (hit, coalesced,
/// stale: they spend nothing) that agree on every dimension a report groups by (task, namespace,
/// model, provider, tenant, tags, outcome) and finished in the same UTC second into one record
/// each, whose `calls` counts them and whose token counts, avoided cost and latency are their
/// sums; its time is the earliest of theirs. Every other record (each one spends, or failed)
/// stays as it is. Sums by any report dimension are unchanged; the order of what is kept is the
/// order of the first record of each group. `records` is left empty, its capacity kept for the
/// next batch. A cache under load answers most calls from the
/// cache, and as one row per second and group, not per call, its hits cost the ledger almost
/// nothing to store.
std::vector<LedgerRecord> coalesce_served_records(std::vector<LedgerRecord>& records);

/// The fold of coalesce_served_records for one pair: when `into` and `record` are both calls
/// served from the cache, of one group and UTC second, `record` is added to `into` (true).
/// Otherwise nothing changes (false).
bool fold_served_into(LedgerRecord& into, const LedgerRecord& record) noexcept;
/// The same for one more call like `like` that ended at `time_ms` after `latency_us` (its own
/// time and latency are not read).
bool fold_served_into(LedgerRecord& into, const LedgerRecord& like, std::int64_t time_ms,
                      std::int64_t latency_us) noexcept;

/// One record as one line of JSON (no newline): the Redis stream's value and the spill file's
/// line. decode_ledger_line returns nullopt for a line it cannot read in full (a spill file cut
/// by a crash ends in one).
std::string encode_ledger_line(const LedgerRecord& record);
std::optional<LedgerRecord> decode_ledger_line(std::string_view line);

/// "2026-12-06" (UTC) of a Unix ms time.
std::string utc_day(std::int64_t time_ms);
/// A point in time for --since/--until: a duration before `now_ms` ("90s", "15m", "12h", "7d",
/// "2w"), a UTC date ("2026-12-01", its midnight), or Unix ms. nullopt when it is none of them.
std::optional<std::int64_t> parse_report_time(std::string_view text, std::int64_t now_ms);

/// What a report groups by.
enum class ReportBy { total, task, model, tenant, day, tag, outcome, provider, namespace_ };
std::optional<ReportBy> report_by_from_name(std::string_view name) noexcept;
std::string_view report_by_name(ReportBy by) noexcept;

struct ReportRow {
  std::string key;  ///< the group's value ("" is shown as "(none)")
  std::int64_t calls = 0;
  /// Calls answered without a provider call of their own: hit, stale, coalesced.
  std::int64_t hits = 0;
  std::int64_t failed = 0;
  std::int64_t spent_nano_usd = 0;
  std::int64_t avoided_nano_usd = 0;
  std::int64_t input_tokens = 0;
  std::int64_t output_tokens = 0;
  double hit_ratio() const noexcept {
    return calls == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(calls);
  }
};

struct CostReport {
  std::int64_t since_ms = 0;
  std::int64_t until_ms = 0;
  ReportBy by = ReportBy::total;
  ReportRow total;
  std::vector<ReportRow> rows;  ///< by spent, then calls, descending; then key ascending
};

/// Sums the records with since_ms <= time_ms < until_ms. By tag, a record counts under each of
/// its tags (so rows may sum to more than the total); a record without one under "".
CostReport build_report(const std::vector<LedgerRecord>& records, std::int64_t since_ms,
                        std::int64_t until_ms, ReportBy by);

/// The report as JSON (dollars as exact decimal strings, nano-USD as integers).
std::string report_json(const CostReport& report);
/// As CSV with a header line.
std::string report_csv(const CostReport& report);
/// A table with a bar per row (the width of the spent column, `bar_width` characters for the
/// largest), for a terminal.
std::string report_table(const CostReport& report, int bar_width = 30);

/// An amount of nano-USD as exact decimal dollars: "0.00000555", "1.50", "0.00".
std::string dollars_text(std::int64_t nano_usd);

}  // namespace llm_caching::core

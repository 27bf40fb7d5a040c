// The cost report over ledger records (core/ledger.hpp): sums by a dimension, and the report as
// JSON, CSV or a terminal table with bars. Pure: the records come from a backend.
#include "core/ledger.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>

namespace llm_caching::core {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 9> kByNames = {
    "total", "task", "model", "tenant", "day", "tag", "outcome", "provider", "namespace"};

void add(ReportRow& row, const LedgerRecord& r) {
  row.calls += r.calls;
  if (served_from_cache(r.outcome)) row.hits += r.calls;
  if (r.outcome == LedgerOutcome::failed) row.failed += r.calls;
  row.spent_nano_usd += r.cost_nano_usd;
  row.avoided_nano_usd += r.avoided_nano_usd;
  row.input_tokens += r.input_tokens + r.cache_write_tokens + r.cache_read_tokens;
  row.output_tokens += r.output_tokens;
}

/// The keys a record is counted under.
std::vector<std::string> keys_of(const LedgerRecord& r, ReportBy by) {
  switch (by) {
    case ReportBy::total:
      return {""};
    case ReportBy::task:
      return {r.task};
    case ReportBy::model:
      return {r.model};
    case ReportBy::tenant:
      return {r.tenant};
    case ReportBy::day:
      return {utc_day(r.time_ms)};
    case ReportBy::outcome:
      return {std::string(outcome_name(r.outcome))};
    case ReportBy::provider:
      return {r.provider};
    case ReportBy::namespace_:
      return {r.namespace_};
    case ReportBy::tag:
      break;
  }
  std::vector<std::string> tags;
  std::string_view rest = r.tags;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    std::string_view tag = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (!tag.empty() && std::find(tags.begin(), tags.end(), tag) == tags.end()) {
      tags.emplace_back(tag);
    }
  }
  if (tags.empty()) tags.emplace_back();
  return tags;
}

json::object row_json(const ReportRow& row) {
  json::object o;
  o["calls"] = row.calls;
  o["hits"] = row.hits;
  o["failed"] = row.failed;
  o["hit_ratio"] = row.hit_ratio();
  o["spent_usd"] = dollars_text(row.spent_nano_usd);
  o["spent_nano_usd"] = row.spent_nano_usd;
  o["avoided_usd"] = dollars_text(row.avoided_nano_usd);
  o["avoided_nano_usd"] = row.avoided_nano_usd;
  o["input_tokens"] = row.input_tokens;
  o["output_tokens"] = row.output_tokens;
  return o;
}

std::string shown(const std::string& key) {
  return key.empty() ? "(none)" : key;
}

/// A CSV field: quoted when it holds a comma, quote or line break.
std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::optional<ReportBy> report_by_from_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kByNames.size(); ++i) {
    if (kByNames[i] == name) return static_cast<ReportBy>(i);
  }
  return std::nullopt;
}

std::string_view report_by_name(ReportBy by) noexcept {
  return kByNames[static_cast<std::size_t>(by)];
}

CostReport build_report(const std::vector<LedgerRecord>& records, std::int64_t since_ms,
                        std::int64_t until_ms, ReportBy by) {
  CostReport report;
  report.since_ms = since_ms;
  report.until_ms = until_ms;
  report.by = by;
  std::map<std::string, ReportRow> rows;
  for (const LedgerRecord& r : records) {
    if (r.time_ms < since_ms || r.time_ms >= until_ms) continue;
    add(report.total, r);
    if (by == ReportBy::total) continue;
    for (std::string& key : keys_of(r, by)) {
      ReportRow& row = rows[key];
      if (row.key.empty()) row.key = std::move(key);
      add(row, r);
    }
  }
  for (auto& [key, row] : rows) report.rows.push_back(std::move(row));
  std::stable_sort(report.rows.begin(), report.rows.end(),
                   [by](const ReportRow& a, const ReportRow& b) {
                     // Days read best in order; every other dimension by money.
                     if (by == ReportBy::day) return a.key < b.key;
                     if (a.spent_nano_usd != b.spent_nano_usd) {
                       return a.spent_nano_usd > b.spent_nano_usd;
                     }
                     return a.calls > b.calls;
                   });
  return report;
}

std::string report_json(const CostReport& report) {
  json::object o;
  o["since_ms"] = report.since_ms;
  o["until_ms"] = report.until_ms;
  o["by"] = report_by_name(report.by);
  o["total"] = row_json(report.total);
  json::array rows;
  for (const ReportRow& row : report.rows) {
    json::object r = row_json(row);
    r["key"] = row.key;
    rows.push_back(std::move(r));
  }
  o["rows"] = std::move(rows);
  return json::serialize(o);
}

std::string report_csv(const CostReport& report) {
  std::string out = fmt::format(
      "{},calls,hits,failed,hit_ratio,spent_usd,avoided_usd,input_tokens,output_tokens\n",
      report_by_name(report.by));
  const auto line = [&](const std::string& key, const ReportRow& row) {
    out += fmt::format("{},{},{},{},{:.4f},{},{},{},{}\n", csv_field(key), row.calls, row.hits,
                       row.failed, row.hit_ratio(), dollars_text(row.spent_nano_usd),
                       dollars_text(row.avoided_nano_usd), row.input_tokens, row.output_tokens);
  };
  for (const ReportRow& row : report.rows) line(row.key, row);
  line("TOTAL", report.total);
  return out;
}

std::string report_table(const CostReport& report, int bar_width) {
  std::size_t key_width = 5;  // "TOTAL"
  for (const ReportRow& row : report.rows) key_width = std::max(key_width, shown(row.key).size());
  key_width = std::min<std::size_t>(key_width, 40);
  std::int64_t largest = 0;
  for (const ReportRow& row : report.rows) largest = std::max(largest, row.spent_nano_usd);
  std::string out =
      fmt::format("{:<{}}  {:>8}  {:>6}  {:>14}  {:>14}  spent\n", report_by_name(report.by),
                  key_width, "calls", "hit%", "spent $", "avoided $");
  const auto line = [&](std::string key, const ReportRow& row, bool with_bar) {
    if (key.size() > key_width) key = key.substr(0, key_width - 1) + "~";
    const int bar =
        largest == 0 || !with_bar
            ? 0
            : static_cast<int>(
                  (static_cast<long double>(row.spent_nano_usd) * bar_width) / largest + 0.5L);
    out += fmt::format("{:<{}}  {:>8}  {:>5.1f}%  {:>14}  {:>14}  {}\n", key, key_width, row.calls,
                       row.hit_ratio() * 100.0, dollars_text(row.spent_nano_usd),
                       dollars_text(row.avoided_nano_usd), std::string(bar, '#'));
  };
  for (const ReportRow& row : report.rows) line(shown(row.key), row, true);
  line("TOTAL", report.total, false);
  return out;
}

std::string dollars_text(std::int64_t nano_usd) {
  // A double rounds (and JSON writes it as 5.55E-6 or 0E0); the integer divides exactly.
  // Trailing zeros say nothing, but cents are kept: "0.00", "1.50", "0.00000555".
  constexpr std::int64_t kNanoPerDollar = 1'000'000'000;
  const bool negative = nano_usd < 0;
  const std::uint64_t magnitude =
      negative ? std::uint64_t(0) - static_cast<std::uint64_t>(nano_usd) : std::uint64_t(nano_usd);
  std::string fraction = std::to_string(magnitude % kNanoPerDollar);
  fraction.insert(0, 9 - fraction.size(), '0');
  while (fraction.size() > 2 && fraction.back() == '0') fraction.pop_back();
  return (negative ? "-" : "") + std::to_string(magnitude / kNanoPerDollar) + "." + fraction;
}

}  // namespace llm_caching::core

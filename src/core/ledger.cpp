// A ledger record's line, outcome names and report times (core/ledger.hpp).
#include "core/ledger.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <charconv>
#include <chrono>

namespace llm_caching::core {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 6> kOutcomeNames = {"miss",  "hit",    "coalesced",
                                                           "stale", "failed", "refresh"};

// Short field names: a record is stored per call, in a stream that keeps a million of them.
constexpr std::string_view kTime = "t";

bool read_int(const json::object& object, std::string_view name, std::int64_t& out) {
  const json::value* value = object.if_contains(name);
  if (value == nullptr) return true;  // absent: 0 (older writers, empty counts)
  if (!value->is_int64()) return false;
  out = value->get_int64();
  return true;
}

bool read_text(const json::object& object, std::string_view name, std::string& out) {
  const json::value* value = object.if_contains(name);
  if (value == nullptr) return true;
  if (!value->is_string()) return false;
  out = std::string(value->get_string());
  return true;
}

}  // namespace

std::string_view outcome_name(LedgerOutcome outcome) noexcept {
  return kOutcomeNames[static_cast<std::size_t>(outcome)];
}

std::optional<LedgerOutcome> outcome_from_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kOutcomeNames.size(); ++i) {
    if (kOutcomeNames[i] == name) return static_cast<LedgerOutcome>(i);
  }
  return std::nullopt;
}

void take_usage(LedgerRecord& r, const Usage& usage) noexcept {
  r.input_tokens = usage.input_tokens;
  r.output_tokens = usage.output_tokens;
  r.cache_write_tokens = usage.cache_write_tokens;
  r.cache_read_tokens = usage.cache_read_tokens;
}

std::string encode_ledger_line(const LedgerRecord& r) {
  json::object o;
  o[kTime] = r.time_ms;
  o["o"] = outcome_name(r.outcome);
  o["task"] = r.task;
  if (!r.namespace_.empty()) o["ns"] = r.namespace_;
  o["model"] = r.model;
  o["provider"] = r.provider;
  if (!r.tenant.empty()) o["tenant"] = r.tenant;
  if (!r.tags.empty()) o["tags"] = r.tags;
  o["in"] = r.input_tokens;
  o["out"] = r.output_tokens;
  if (r.cache_write_tokens != 0) o["cw"] = r.cache_write_tokens;
  if (r.cache_read_tokens != 0) o["cr"] = r.cache_read_tokens;
  o["cost"] = r.cost_nano_usd;
  o["avoided"] = r.avoided_nano_usd;
  o["us"] = r.latency_us;
  if (r.calls != 1) o["n"] = r.calls;
  return json::serialize(o);
}

std::optional<LedgerRecord> decode_ledger_line(std::string_view line) {
  json::error_code ec;
  json::value parsed = json::parse(line, ec);
  if (ec || !parsed.is_object()) return std::nullopt;
  const json::object& o = parsed.get_object();
  LedgerRecord r;
  std::string outcome;
  const bool ok = o.contains(kTime) && read_int(o, kTime, r.time_ms) &&
                  read_text(o, "o", outcome) && read_text(o, "task", r.task) &&
                  read_text(o, "ns", r.namespace_) && read_text(o, "model", r.model) &&
                  read_text(o, "provider", r.provider) && read_text(o, "tenant", r.tenant) &&
                  read_text(o, "tags", r.tags) && read_int(o, "in", r.input_tokens) &&
                  read_int(o, "out", r.output_tokens) && read_int(o, "cw", r.cache_write_tokens) &&
                  read_int(o, "cr", r.cache_read_tokens) && read_int(o, "cost", r.cost_nano_usd) &&
                  read_int(o, "avoided", r.avoided_nano_usd) && read_int(o, "us", r.latency_us);
  if (!ok) return std::nullopt;
  // Absent (a record of one call, or a line from before records were folded): 1.
  if (const json::value* n = o.if_contains("n")) {
    if (!n->is_int64() || n->get_int64() < 1) return std::nullopt;
    r.calls = n->get_int64();
  }
  const auto named = outcome_from_name(outcome);
  if (!named) return std::nullopt;
  r.outcome = *named;
  return r;
}

std::string utc_day(std::int64_t time_ms) {
  using namespace std::chrono;
  const sys_days day = floor<days>(sys_time<milliseconds>(milliseconds(time_ms)));
  const year_month_day ymd(day);
  char out[16];
  std::snprintf(out, sizeof out, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return out;
}

std::optional<std::int64_t> parse_report_time(std::string_view text, std::int64_t now_ms) {
  using namespace std::chrono;
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    int y = 0;
    unsigned m = 0, d = 0;
    const char* s = text.data();
    if (std::from_chars(s, s + 4, y).ec != std::errc() ||
        std::from_chars(s + 5, s + 7, m).ec != std::errc() ||
        std::from_chars(s + 8, s + 10, d).ec != std::errc()) {
      return std::nullopt;
    }
    const year_month_day ymd{year(y), month(m), day(d)};
    if (!ymd.ok()) return std::nullopt;
    return duration_cast<milliseconds>(sys_days(ymd).time_since_epoch()).count();
  }
  if (text.empty()) return std::nullopt;
  std::int64_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || number < 0) return std::nullopt;
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  if (unit.empty()) return number;  // Unix ms
  std::int64_t unit_ms = 0;
  if (unit == "s") unit_ms = 1000;
  if (unit == "m") unit_ms = 60'000;
  if (unit == "h") unit_ms = 3'600'000;
  if (unit == "d") unit_ms = 86'400'000;
  if (unit == "w") unit_ms = 7 * 86'400'000LL;
  if (unit_ms == 0 || number > now_ms / unit_ms) return std::nullopt;
  return now_ms - number * unit_ms;
}

}  // namespace llm_caching::core

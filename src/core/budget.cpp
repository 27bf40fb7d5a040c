// Budget specs, the counters a call charges, and a call's worst case (core/budget.hpp).
#include "core/budget.hpp"

#include "core/ledger.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace llm_caching {

namespace {

constexpr std::string_view kSpecHelp =
    "expected SCOPE=VALUE:AMOUNTusd[/day|/month|/total][,soft] with SCOPE task, tenant, tag or "
    "namespace (or all:AMOUNTusd/...), e.g. task=nightly-eval:20usd/day";

[[noreturn]] void bad_spec(std::string_view spec, std::string_view why) {
  throw ConfigurationError(fmt::format("budget '{}': {}; {}", spec, why, kSpecHelp));
}

std::string_view scope_name(Budget::Scope scope) {
  switch (scope) {
    case Budget::Scope::all:
      return "all";
    case Budget::Scope::task:
      return "task";
    case Budget::Scope::tenant:
      return "tenant";
    case Budget::Scope::tag:
      return "tag";
    case Budget::Scope::namespace_:
      return "namespace";
  }
  return "all";
}

std::string_view period_name(Budget::Period period) {
  switch (period) {
    case Budget::Period::day:
      return "day";
    case Budget::Period::month:
      return "month";
    case Budget::Period::total:
      return "total";
  }
  return "total";
}

/// "20usd", "0.5usd", "$3": nano-USD.
std::int64_t parse_amount(std::string_view spec, std::string_view text) {
  // The unit is required: a bare number could be read as cents or as a count of calls.
  const bool dollar_sign = text.starts_with('$');
  if (dollar_sign) text.remove_prefix(1);
  if (text.ends_with("usd")) {
    text.remove_suffix(3);
  } else if (!dollar_sign) {
    bad_spec(spec, fmt::format("'{}' has no unit: write {}usd", text, text));
  }
  double dollars = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), dollars);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(dollars) || dollars < 0 || dollars > 1e9) {
    bad_spec(spec, fmt::format("'{}' is not an amount of dollars", text));
  }
  return dollars_to_nano_usd(dollars);
}

}  // namespace

Budget Budget::parse(std::string_view spec) {
  Budget budget;
  std::string_view rest = spec;
  if (rest.ends_with(",soft")) {
    budget.soft = true;
    rest.remove_suffix(5);
  }
  const std::size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) bad_spec(spec, "no ':' before the amount");
  const std::string_view who = rest.substr(0, colon);
  std::string_view amount = rest.substr(colon + 1);
  if (const std::size_t slash = amount.find('/'); slash != std::string_view::npos) {
    const std::string_view period = amount.substr(slash + 1);
    if (period == "day")
      budget.period = Period::day;
    else if (period == "month")
      budget.period = Period::month;
    else if (period == "total")
      budget.period = Period::total;
    else
      bad_spec(spec, fmt::format("unknown period '{}'", period));
    amount = amount.substr(0, slash);
  }
  budget.limit_nano_usd = parse_amount(spec, amount);
  if (who == "all") return budget;
  const std::size_t eq = who.find('=');
  if (eq == std::string_view::npos || eq + 1 == who.size()) {
    bad_spec(spec, "no SCOPE=VALUE before the amount");
  }
  const std::string_view scope = who.substr(0, eq);
  budget.value = std::string(who.substr(eq + 1));
  if (scope == "task")
    budget.scope = Scope::task;
  else if (scope == "tenant")
    budget.scope = Scope::tenant;
  else if (scope == "tag")
    budget.scope = Scope::tag;
  else if (scope == "namespace")
    budget.scope = Scope::namespace_;
  else
    bad_spec(spec, fmt::format("unknown scope '{}'", scope));
  return budget;
}

std::string Budget::describe() const {
  const std::string who =
      scope == Scope::all ? std::string("all") : fmt::format("{}={}", scope_name(scope), value);
  return fmt::format("{}:{}usd/{}{}", who, core::dollars_text(limit_nano_usd), period_name(period),
                     soft ? ",soft" : "");
}

namespace core {

namespace {

bool has_tag(std::string_view tags, std::string_view tag) {
  while (!tags.empty()) {
    const std::size_t comma = tags.find(',');
    if (tags.substr(0, comma) == tag) return true;
    tags = comma == std::string_view::npos ? std::string_view() : tags.substr(comma + 1);
  }
  return false;
}

bool applies(const Budget& budget, const BudgetSubject& subject) {
  switch (budget.scope) {
    case Budget::Scope::all:
      return true;
    case Budget::Scope::task:
      return subject.task == budget.value;
    case Budget::Scope::tenant:
      return subject.tenant == budget.value;
    case Budget::Scope::tag:
      return has_tag(subject.tags, budget.value);
    case Budget::Scope::namespace_:
      return subject.namespace_ == budget.value;
  }
  return false;
}

}  // namespace

std::vector<BudgetLine> budget_lines(const std::vector<Budget>& budgets,
                                     const BudgetSubject& subject, std::int64_t now_ms) {
  using std::chrono::hours;
  std::vector<BudgetLine> lines;
  for (const Budget& budget : budgets) {
    if (!applies(budget, subject)) continue;
    BudgetLine line;
    line.label = budget.describe();
    line.limit_nano_usd = budget.limit_nano_usd;
    line.soft = budget.soft;
    std::string period = "total";
    if (budget.period == Budget::Period::day) {
      period = utc_day(now_ms);
      line.ttl = hours(48);
    } else if (budget.period == Budget::Period::month) {
      period = utc_day(now_ms).substr(0, 7);
      line.ttl = hours(24 * 32);
    }
    // The spec names the counter: two budgets on one scope with other limits share nothing.
    line.key = fmt::format("llm-caching:{{budget}}:{}:{}", line.label, period);
    lines.push_back(std::move(line));
  }
  return lines;
}

std::int64_t output_limit(Provider provider, const boost::json::object& body) {
  const auto number = [](const boost::json::value* v) -> std::int64_t {
    if (v == nullptr) return 0;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64() >> 1);
    return 0;
  };
  std::int64_t limit = 0;
  if (provider == Provider::gemini) {
    if (const auto* config = body.if_contains("generationConfig"); config && config->is_object()) {
      limit = number(config->get_object().if_contains("maxOutputTokens"));
    }
  } else {
    for (const char* name : {"max_tokens", "max_completion_tokens", "max_output_tokens"}) {
      limit = std::max(limit, number(body.if_contains(name)));
    }
  }
  return limit > 0 ? limit : kDefaultOutputLimit;
}

std::int64_t worst_case_nano_usd(const ModelCosts& price, std::int64_t request_bytes,
                                 std::int64_t output_tokens) {
  Usage usage;
  usage.input_tokens = request_bytes;
  usage.output_tokens = output_tokens;
  return cost_nano_usd(price, usage);
}

}  // namespace core

}  // namespace llm_caching

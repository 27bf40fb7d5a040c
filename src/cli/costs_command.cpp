// `llm-caching costs`: what the calls recorded in the cache's ledger cost, grouped by a
// dimension, as a table with bars, JSON (--json, the gateway's /costs) or CSV (--csv).
#include "commands.hpp"

#include "cache/run_blocking.hpp"
#include "cache/tiered_cache.hpp"
#include "core/ledger.hpp"
#include "llm_caching/errors.hpp"

#include <chrono>
#include <iostream>

namespace llm_caching::cli {

namespace {

struct CostsFlags {
  std::string since = "7d";
  std::string until;
  std::string by = "total";
  bool csv = false;
};

std::int64_t report_time(const std::string& text, std::string_view flag, std::int64_t now) {
  const auto parsed = core::parse_report_time(text, now);
  if (!parsed) {
    throw ConfigurationError(std::string(flag) + " '" + text +
                             "': expected 90s, 15m, 12h, 7d, 2w, a UTC date such as 2026-12-01, "
                             "or Unix milliseconds");
  }
  return *parsed;
}

void run_costs(const GlobalOptions& global, const CostsFlags& flags) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  const std::int64_t since = report_time(flags.since, "--since", now);
  const std::int64_t until =
      flags.until.empty() ? now + 1 : report_time(flags.until, "--until", now);
  const auto by = core::report_by_from_name(flags.by);
  if (!by) {
    throw ConfigurationError("--by '" + flags.by +
                             "': expected task, model, tenant, day, tag, outcome, provider, "
                             "namespace or total");
  }
  CacheOptions options;
  options.url = global.cache_url;
  options.strict = true;
  cache::CacheRegistry registry;
  const std::shared_ptr<cache::Backend> backend = registry.open(options)->backend();
  if (!backend->keeps_ledger()) {
    throw CacheError("the cache " + backend->describe() + " keeps no ledger");
  }
  const std::vector<core::LedgerRecord> records =
      cache::run_blocking(backend->ledger_read(since, until));
  const core::CostReport report = core::build_report(records, since, until, *by);
  if (global.json) {
    std::cout << core::report_json(report) << "\n";
  } else if (flags.csv) {
    std::cout << core::report_csv(report);
  } else {
    std::cout << core::report_table(report);
  }
}

}  // namespace

void add_costs_command(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<CostsFlags>();
  CLI::App* costs = app.add_subcommand(
      "costs", "What the recorded calls cost: spent, calls, hits, hit ratio, avoided cost");
  costs->add_option("--since", flags->since,
                    "From: 90s, 15m, 12h, 7d, 2w ago, a UTC date (2026-12-01) or Unix ms "
                    "(default 7d)");
  costs->add_option("--until", flags->until, "To (excluded), in the same forms (default: now)");
  costs->add_option("--by", flags->by,
                    "Group by task, model, tenant, day, tag, outcome, provider, namespace or "
                    "total (default total)");
  costs->add_flag("--csv", flags->csv, "CSV output (--json: JSON, as the gateway's /costs)");
  costs->footer(
      "The ledger is written by the gateway (every call) and by library calls with "
      "RunOptions::ledger.\n"
      "Examples:\n"
      "  llm-caching costs --since 7d --by task\n"
      "  llm-caching costs --since 2026-12-01 --until 2026-12-06 --by day --csv\n"
      "  llm-caching costs --by model --json --cache-url redis://127.0.0.1:6379/0");
  add_price_commands(*costs, global);
  costs->require_subcommand(0, 1);
  costs->callback([&global, flags, costs] {
    // `costs models` and `costs import` run their own callbacks; this one is the report's.
    if (costs->get_subcommands().empty()) run_costs(global, *flags);
  });
}

}  // namespace llm_caching::cli

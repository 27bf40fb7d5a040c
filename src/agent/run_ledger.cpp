// What a run's ledger record and budgets are (RunOptions::ledger, ::budgets): shared by
// cached_agent_run and cached_http_call.
#include "agent/run.hpp"

#include "core/budget.hpp"
#include "core/ledger.hpp"
#include "exchange/exchange.hpp"
#include "llm_caching/agent.hpp"

namespace llm_caching::agent {

core::LedgerRecord ledger_record(const RunOptions& options, Provider provider,
                                 std::string_view model, std::string_view task_name,
                                 const exchange::ExchangeResult* exchanged,
                                 std::chrono::steady_clock::time_point started) {
  core::LedgerRecord r;
  r.time_ms = exchange::system_now_ms();
  r.task = std::string(task_name);
  r.namespace_ = options.namespace_;
  r.model = std::string(model);
  r.provider = std::string(to_string(provider));
  r.tenant = options.tenant;
  for (const std::string& tag : options.tags) {
    if (!r.tags.empty()) r.tags += ',';
    r.tags += tag;
  }
  r.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count();
  if (exchanged == nullptr) {
    r.outcome = core::LedgerOutcome::failed;
    return r;
  }
  exchange::record_result(r, *exchanged);
  return r;
}

std::vector<core::BudgetLine> budget_lines_of(const RunOptions& options,
                                              const std::string& task_name) {
  if (options.budgets.empty()) return {};
  std::string tags;
  for (const std::string& tag : options.tags) tags += (tags.empty() ? "" : ",") + tag;
  return core::budget_lines(options.budgets, {task_name, options.tenant, tags, options.namespace_},
                            exchange::system_now_ms());
}

}  // namespace llm_caching::agent

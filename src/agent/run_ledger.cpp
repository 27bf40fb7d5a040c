// What a run's ledger record, budgets and expense are (RunOptions::ledger, ::budgets,
// ::expense_recorder): shared by cached_agent_run, cached_http_call and cached_embed.
#include "agent/run.hpp"

#include "core/budget.hpp"
#include "core/ledger.hpp"
#include "exchange/exchange.hpp"
#include "llm_caching/agent.hpp"

#include <spdlog/spdlog.h>

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

boost::asio::awaitable<void> record_expense(const RunOptions& options, const Expense& expense) {
  if (!options.expense_recorder) co_return;
  try {
    co_await options.expense_recorder(expense);
  } catch (const std::exception& e) {
    // The answer is already paid for and cached: a failing recorder must not lose it.
    spdlog::error("expense recorder failed for task '{}' ({}): {}", expense.task_name,
                  expense.model, e.what());
  } catch (...) {
    spdlog::error("expense recorder failed for task '{}' ({})", expense.task_name, expense.model);
  }
}

}  // namespace llm_caching::agent

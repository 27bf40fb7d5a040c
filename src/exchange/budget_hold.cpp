// Reserving and settling a call's budgets (budget_hold.hpp).
#include "exchange/budget_hold.hpp"

#include "core/ledger.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <limits>

namespace llm_caching::exchange {

namespace asio = boost::asio;

namespace {

constexpr std::int64_t kNoLimit = std::numeric_limits<std::int64_t>::max();

}  // namespace

asio::awaitable<BudgetHold> reserve_budget(cache::Backend& backend,
                                           const std::vector<core::BudgetLine>& lines,
                                           std::int64_t worst_case, bool strict) {
  BudgetHold hold;
  for (const core::BudgetLine& line : lines) {
    // A soft budget is charged like a hard one but never refuses.
    hold.charges.push_back({line.key, line.soft ? kNoLimit : line.limit_nano_usd, line.ttl});
  }
  cache::Backend::BudgetVerdict verdict;
  std::string failure;
  try {
    verdict = co_await backend.budget_reserve(hold.charges, worst_case);
  } catch (const std::exception& e) {
    if (strict) throw;
    failure = e.what();
  }
  if (!failure.empty()) {
    spdlog::warn("budgets: cannot reserve on {} ({}); the call goes on unbudgeted",
                 backend.describe(), failure);
    co_return BudgetHold{};
  }
  if (!verdict.granted) {
    const core::BudgetLine& line = lines.at(verdict.refused);
    const std::int64_t used = verdict.used.empty() ? 0 : verdict.used.front();
    const std::int64_t remaining = std::max<std::int64_t>(0, line.limit_nano_usd - used);
    throw BudgetExceededError(
        fmt::format("budget {} exceeded: ${} left, and this call may cost up to ${}", line.label,
                    core::dollars_text(remaining), core::dollars_text(worst_case)),
        line.label, remaining);
  }
  for (std::size_t i = 0; i < lines.size() && i < verdict.used.size(); ++i) {
    if (lines[i].soft && verdict.used[i] > lines[i].limit_nano_usd) {
      spdlog::warn("budget {} (soft) exceeded: ${} reserved or spent", lines[i].label,
                   core::dollars_text(verdict.used[i]));
      ++hold.soft_exceeded;
    }
  }
  hold.reserved_nano_usd = worst_case;
  co_return hold;
}

asio::awaitable<void> settle_budget(cache::Backend& backend, BudgetHold hold, std::int64_t actual) {
  const std::int64_t delta = actual - hold.reserved_nano_usd;
  if (hold.charges.empty() || delta == 0) co_return;
  for (cache::Backend::BudgetCharge& charge : hold.charges) charge.limit_nano_usd = kNoLimit;
  std::string failure;
  try {
    co_await backend.budget_adjust(std::move(hold.charges), delta);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    spdlog::warn("budgets: cannot settle a reservation on {} ({}); it stays at the worst case",
                 backend.describe(), failure);
  }
}

}  // namespace llm_caching::exchange

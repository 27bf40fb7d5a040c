// A call's budget reservation (docs/COSTS.md, "Budgets"): before the provider is called, its
// worst case is reserved on every budget counter it falls under (core/budget.hpp), atomically in
// the backend; after, the reservation is settled to the real cost (0 when the call failed).
// Exchange::lead does both, so only a call that reaches the provider spends: hits never do.
#pragma once

#include "cache/backend.hpp"
#include "core/budget.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <vector>

namespace llm_caching::exchange {

struct BudgetHold {
  std::vector<cache::Backend::BudgetCharge> charges;  ///< empty: nothing reserved
  std::int64_t reserved_nano_usd = 0;
  /// Soft budgets this reservation took past their limit (logged; the gateway counts them).
  int soft_exceeded = 0;
};

/// Reserves `worst_case` on every line. A hard line without room throws BudgetExceededError
/// (nothing is reserved then); a soft line past its limit is logged. A backend that fails:
/// CacheError when `strict`, else a warning and the call goes on without a reservation.
boost::asio::awaitable<BudgetHold> reserve_budget(cache::Backend& backend,
                                                  const std::vector<core::BudgetLine>& lines,
                                                  std::int64_t worst_case, bool strict);

/// Settles a reservation to `actual`: gives back what the call did not spend. Never throws (a
/// failure is logged: the counters then keep the worst case, erring on the side of the limit).
boost::asio::awaitable<void> settle_budget(cache::Backend& backend, BudgetHold hold,
                                           std::int64_t actual);

}  // namespace llm_caching::exchange

// Budgets' pure parts (llm_caching/budget.hpp): which budgets a call falls under and the
// counters it charges, and a call's worst case. The counters themselves are the backend's
// (Backend::budget_reserve); exchange/budget_hold.* reserves and settles around a provider call.
#pragma once

#include "llm_caching/budget.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/costs.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::core {

/// One counter a call charges.
struct BudgetLine {
  std::string key;    ///< llm-caching:{budget}:<scope>=<value>:<period id>
  std::string label;  ///< the budget's spec, for errors and logs
  std::int64_t limit_nano_usd = 0;
  std::chrono::milliseconds ttl{0};  ///< the counter outlives its period by a day; 0: forever
  bool soft = false;
};

/// Who and what a call is, for matching budgets.
struct BudgetSubject {
  std::string_view task;
  std::string_view tenant;
  std::string_view tags;  ///< comma-separated
  std::string_view namespace_;
};

/// The counters of the budgets that apply to `subject` now (UTC day or month, or total).
std::vector<BudgetLine> budget_lines(const std::vector<Budget>& budgets,
                                     const BudgetSubject& subject, std::int64_t now_ms);

/// Output tokens a request may produce: its max_tokens (max_completion_tokens,
/// max_output_tokens, Gemini's generationConfig.maxOutputTokens), else kDefaultOutputLimit.
inline constexpr std::int64_t kDefaultOutputLimit = 16'384;
std::int64_t output_limit(Provider provider, const boost::json::object& body);

/// The most a call can cost: every byte of the request body an input token (no tokenizer counts
/// fewer than one byte a token) at the input rate, plus `output_tokens` at the output rate.
std::int64_t worst_case_nano_usd(const ModelCosts& price, std::int64_t request_bytes,
                                 std::int64_t output_tokens);

}  // namespace llm_caching::core

// Internal pieces of the library API shared with the CLI.
#pragma once

#include "llm_caching/cache_key.hpp"
#include "llm_caching/cache_options.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <vector>

#include <string>
#include <string_view>

namespace llm_caching {
struct RunOptions;
struct RuntimeOptions;
class CostTable;
class Model;
struct Expense;
}  // namespace llm_caching
namespace llm_caching::providers {
struct ProviderHost;
}
namespace llm_caching::exchange {
struct ExchangeRequest;
struct ExchangeResult;
}  // namespace llm_caching::exchange
namespace llm_caching::core {
struct LedgerRecord;
struct BudgetLine;
}  // namespace llm_caching::core

namespace llm_caching::agent {

struct ModelSpec {
  Provider provider;  ///< the wire format (OpenAI-compatible hosts are Provider::openai)
  std::string model;  ///< without the "prefix:", as sent to the provider
  /// Where the model is served: base URL and key variables, local or not. Never null.
  const providers::ProviderHost* host = nullptr;
};

/// "openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest", "google-gla:gemini-2.0-flash",
/// "gemini:gemini-2.0-flash", and OpenAI-compatible hosts: "groq:", "deepseek:", "openrouter:",
/// "together:", "mistral:", "ollama:", "vllm:", "llamacpp:". Only the first ':' separates, so
/// "ollama:llama3.2:1b" is the model "llama3.2:1b". Throws ConfigurationError naming the
/// accepted prefixes.
ModelSpec parse_model_spec(std::string_view spec);

/// The cache a run's options name: cache_url, else the seed's redis_url (then the environment).
CacheOptions cache_options_of(const RunOptions& options);

/// What a run's options set on its exchange request (namespace, mode, TTL, retry budget, stale
/// windows, prices, the endpoint's key scope), the runtime's defaults where they leave a setting
/// unset. `overrides` (the options' custom costs) must outlive the request; `model` is kept for a
/// background refresh.
/// The ledger record of a call (RunOptions::ledger); `exchanged` null: it failed.
core::LedgerRecord ledger_record(const RunOptions& options, Provider provider,
                                 std::string_view model, std::string_view task_name,
                                 const exchange::ExchangeResult* exchanged,
                                 std::chrono::steady_clock::time_point started);

/// The budgets of a call (RunOptions::budgets) that apply to it now.
std::vector<core::BudgetLine> budget_lines_of(const RunOptions& options,
                                              const std::string& task_name);

/// Hands `expense` to the options' recorder, if any; a recorder that throws is logged, not raised
/// (the answer is already paid for and cached).
boost::asio::awaitable<void> record_expense(const RunOptions& options, const Expense& expense);

void apply_run_options(exchange::ExchangeRequest& request, const RunOptions& options,
                       const RuntimeOptions& defaults, std::shared_ptr<Model> model,
                       const CostTable& overrides);

}  // namespace llm_caching::agent

// The library API: cached_agent_run (awaitable) and cached_agent_run_sync, after the seed's
// `cached_agent_run(agent, prompt, task_name, ...)`.
#pragma once

#include "llm_caching/budget.hpp"
#include "llm_caching/cache_mode.hpp"
#include "llm_caching/costs.hpp"
#include "llm_caching/expense.hpp"
#include "llm_caching/history.hpp"
#include "llm_caching/messages.hpp"
#include "llm_caching/model.hpp"
#include "llm_caching/usage.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching {

class Runtime;  // llm_caching/runtime.hpp

/// What to call: pydantic_ai's Agent, reduced to what decides the request.
struct Agent {
  /// "provider:model": openai:gpt-4o-mini, anthropic:claude-3-5-haiku-latest,
  /// google-gla:gemini-2.0-flash (also gemini:...).
  std::string model;
  std::string system_prompt;
  ModelSettings settings;
  /// Overrides the provider's base URL (else OPENAI_BASE_URL / ANTHROPIC_BASE_URL /
  /// GEMINI_BASE_URL, else the provider's public endpoint).
  std::string base_url;
  /// Overrides the API key (else OPENAI_API_KEY / ANTHROPIC_API_KEY / GEMINI_API_KEY).
  std::string api_key;
};

/// The seed's message_converter: history items in, provider-neutral messages out.
using MessageConverter = std::function<std::vector<ModelMessage>(const std::vector<HistoryItem>&)>;

struct RunOptions {
  std::vector<HistoryItem> transcript_history;
  MessageConverter message_converter;  ///< empty: default_message_converter
  ExpenseRecorder expense_recorder;
  /// The ledger (docs/COSTS.md): true writes a record of this call (miss, hit, coalesced,
  /// stale or failed) into the cache's ledger, beside expense_recorder, off the call's path.
  bool ledger = false;
  /// The ledger record's tenant and tags (who the call was for; free-form labels).
  std::string tenant;
  std::vector<std::string> tags;
  /// Budgets (docs/COSTS.md): a call that falls under one reserves its worst case before the
  /// provider is called, in the cache's backend (shared by every process using it), and throws
  /// BudgetExceededError when there is no room. Budget::parse("task=nightly:20usd/day").
  std::vector<Budget> budgets;
  /// Cache URL (sqlite:///path, memory://, redis://...; docs/REDIS.md); empty: redis_url, else
  /// LLM_CACHE_REDIS_URL, else the embedded SQLite file. Opened once per runtime and shared.
  std::string cache_url;
  /// The seed's name for cache_url, kept so its programs read the same; cache_url wins when both
  /// are set.
  std::string redis_url;
  std::map<std::string, ModelCosts, std::less<>> custom_costs;
  std::chrono::milliseconds max_wait{std::chrono::seconds(10)};
  std::chrono::milliseconds initial_wait{std::chrono::seconds(1)};
  std::chrono::milliseconds ttl{std::chrono::hours(24 * 15)};
  /// Unset: the runtime's mode (LLM_CACHE_MODE, else use).
  std::optional<CacheMode> mode;
  std::string namespace_;
  /// Raise CacheError when the cache backend fails, instead of calling the provider as on a miss.
  bool strict_cache = false;
  /// Single-flight: concurrent identical misses in this process share one provider call, the
  /// others get its answer billed 0 (RunResult::coalesced). false: this call always makes its own.
  bool coalesce = true;
  /// Stale policies (0 = off; docs/SINGLE_FLIGHT.md). stale_while_revalidate: an answer expired by
  /// at most this long is returned at once (RunResult::stale) while one background call refreshes
  /// it. stale_if_error: an answer expired by at most this long is returned when the provider
  /// fails (429 past max_wait, 5xx, unreachable); the failure is logged. Answers this call stores
  /// are kept for ttl + the larger grace, so use the same settings for writers and readers.
  /// Unset: the process's defaults, LLM_CACHE_STALE_WHILE_REVALIDATE and LLM_CACHE_STALE_IF_ERROR
  /// (whole seconds, read when the runtime is made; unset variables: 0), so one setting covers
  /// every call that does not say otherwise; a value here narrows or widens it for this call.
  std::optional<std::chrono::milliseconds> stale_while_revalidate;
  std::optional<std::chrono::milliseconds> stale_if_error;
  /// Replaces the provider transport (tests, custom clients). Empty: HTTPS to the provider.
  std::shared_ptr<Model> model_client;
  /// Where the call's connections, caches and environment defaults live (must outlive the call).
  /// Null: Runtime::default_runtime(), made from the environment on the first call.
  Runtime* runtime = nullptr;
};

struct RunResult {
  std::string output;                             ///< the answer's text
  std::optional<boost::json::value> output_json;  ///< set for structured (typed) output
  std::vector<ModelMessage> messages;             ///< the conversation, the answer last
  Usage usage;
  std::string model;  ///< as the Agent named it
  std::string finish_reason;
  double cost = 0.0;  ///< dollars billed by this run (0 on a hit)
  std::int64_t cost_nano_usd = 0;
  bool cache_hit = false;
  bool coalesced = false;     ///< answered by another caller's in-flight call for the same key
  bool stale = false;         ///< an expired answer served under a stale policy (cache_hit too)
  double avoided_cost = 0.0;  ///< on a hit: what the original call cost
  std::int64_t avoided_cost_nano_usd = 0;
  std::string cache_key;  ///< storage key: llm-caching:v1:<ns>:<hex>
  int attempts = 0;       ///< provider calls made by this run, retries included (0 on a hit)
};

template <class T>
struct TypedRunResult : RunResult {
  T data{};
};

/// The seed's default conversion: {"role","content"} objects keep their role (default "user"),
/// anything else becomes a user message with its text (structs as JSON).
std::vector<ModelMessage> default_message_converter(const std::vector<HistoryItem>& items);

/// Options with every default: what a call without options runs with.
const RunOptions& default_run_options();

/// Runs one prompt through the cache. The options are copied when the call is made; the agent,
/// prompt and task name are copied when the awaitable first runs, so co_await it at once.
/// Throws ConfigurationError, RateLimitError, CacheError (CacheMissError), ProviderError.
///
/// g++ 12 destroys a braced temporary twice when it appears inside a co_await expression
/// (`co_await cached_agent_run(a, p, t, RunOptions{...})` aborts): name the options first. The
/// default is a reference to default_run_options(), so leaving them out makes no temporary.
boost::asio::awaitable<RunResult> cached_agent_run(
    const Agent& agent, std::string_view prompt, std::string_view task_name,
    const RunOptions& options = default_run_options());
/// The same on its own io_context; safe to call from several threads at once.
RunResult cached_agent_run_sync(const Agent& agent, std::string_view prompt,
                                std::string_view task_name, RunOptions options = {});

namespace detail {
/// What typed output adds to a run: the schema sent and a validator that throws ProviderError.
struct StructuredOutput {
  boost::json::object schema;
  std::string name;
  std::function<void(const boost::json::value&)> validate;
};
boost::asio::awaitable<RunResult> run_structured(const Agent& agent, std::string_view prompt,
                                                 std::string_view task_name, RunOptions options,
                                                 StructuredOutput output);
RunResult run_structured_sync(const Agent& agent, std::string_view prompt,
                              std::string_view task_name, RunOptions options,
                              StructuredOutput output);
template <class T>
StructuredOutput structured_output_for() {
  return {json_schema_for<T>(), std::string(type_name_for<T>()),
          [](const boost::json::value& v) { (void)from_json_checked<T>(v); }};
}

template <class T>
TypedRunResult<T> make_typed(RunResult r) {
  TypedRunResult<T> typed;
  static_cast<RunResult&>(typed) = std::move(r);
  typed.data = from_json_checked<T>(*typed.output_json);
  return typed;
}
}  // namespace detail

/// Typed output: T is a struct described with BOOST_DESCRIBE_STRUCT. Its JSON Schema is sent as
/// the structured-output request (and is part of the key); a reply that does not fit T is a
/// ProviderError naming the field, and is not cached.
namespace detail {
template <class T>
boost::asio::awaitable<TypedRunResult<T>> run_typed(const Agent& agent, std::string_view prompt,
                                                    std::string_view task_name,
                                                    RunOptions options) {
  co_return make_typed<T>(co_await run_structured(agent, prompt, task_name, std::move(options),
                                                  structured_output_for<T>()));
}
}  // namespace detail

template <class T>
boost::asio::awaitable<TypedRunResult<T>> cached_agent_run(
    const Agent& agent, std::string_view prompt, std::string_view task_name,
    const RunOptions& options = default_run_options()) {
  return detail::run_typed<T>(agent, prompt, task_name, options);
}

template <class T>
TypedRunResult<T> cached_agent_run_sync(const Agent& agent, std::string_view prompt,
                                        std::string_view task_name, RunOptions options = {}) {
  return detail::make_typed<T>(detail::run_structured_sync(
      agent, prompt, task_name, std::move(options), detail::structured_output_for<T>()));
}

}  // namespace llm_caching

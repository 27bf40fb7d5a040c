#include "llm_caching/agent.hpp"

#include "agent/run.hpp"
#include "agent/runtime_impl.hpp"
#include "cache/run_blocking.hpp"
#include "cache/tiered_cache.hpp"
#include "core/printable.hpp"
#include "exchange/exchange.hpp"
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"
#include "providers/http_model.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>

#include <chrono>

namespace llm_caching {

namespace agent {

namespace {

std::string accepted_prefixes() {
  std::string list;
  for (const providers::ProviderHost& host : providers::known_hosts()) {
    if (!list.empty()) list += ", ";
    list += std::string(host.prefix) + ":";
  }
  return list;
}

}  // namespace

ModelSpec parse_model_spec(std::string_view spec) {
  const auto colon = spec.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == spec.size()) {
    throw ConfigurationError("model '" + std::string(spec) +
                             "' must be written provider:model, e.g. openai:gpt-4o-mini, "
                             "anthropic:claude-3-5-haiku-latest, google-gla:gemini-2.0-flash, "
                             "ollama:llama3.2 (prefixes: " +
                             accepted_prefixes() + ")");
  }
  const std::string_view prefix = spec.substr(0, colon);
  const providers::ProviderHost* host = providers::find_host(prefix);
  if (!host) {
    throw ConfigurationError("unknown model prefix '" + std::string(prefix) + "' in '" +
                             std::string(spec) + "'; accepted: " + accepted_prefixes());
  }
  return {host->wire, std::string(spec.substr(colon + 1)), host};
}

}  // namespace agent

namespace {

namespace asio = boost::asio;

std::string text_of(const boost::json::value& v) {
  if (const auto* s = v.if_string()) return std::string(*s);
  return boost::json::serialize(v);
}

providers::ChatRequest build_chat(const Agent& agent, const agent::ModelSpec& spec,
                                  std::string_view prompt, const RunOptions& options,
                                  const detail::StructuredOutput* output) {
  providers::ChatRequest chat;
  chat.model = spec.model;
  chat.system_prompt = agent.system_prompt;
  chat.settings = agent.settings;
  chat.messages = options.message_converter ? options.message_converter(options.transcript_history)
                                            : default_message_converter(options.transcript_history);
  chat.messages.push_back({"user", std::string(prompt)});
  if (output) {
    chat.output_schema = output->schema;
    chat.output_schema_name = output->name;
  }
  return chat;
}

/// The exchange's request for one run. `overrides` must outlive the run.
exchange::ExchangeRequest exchange_request(const agent::ModelSpec& spec,
                                           const providers::ChatRequest& chat,
                                           const RunOptions& options,
                                           const RuntimeOptions& defaults,
                                           std::shared_ptr<Model> model, const CostTable& overrides,
                                           const detail::StructuredOutput* output) {
  exchange::ExchangeRequest request;
  request.native.provider = spec.provider;
  request.native.model = spec.model;
  request.native.body = providers::build_request(spec.provider, chat);
  agent::apply_run_options(request, options, defaults, std::move(model), overrides);
  if (output) {
    // By value: a background refresh (stale-while-revalidate) outlives the run.
    request.validate = [validate = output->validate,
                        provider = spec.provider](const core::CacheEntry& entry) {
      const auto parsed = providers::parse_response(provider, entry.response, true);
      validate(*parsed.output_json);
    };
  }
  return request;
}

/// What a call's ledger record and its errors name.
struct CallRecord {
  const RunOptions& options;
  const agent::ModelSpec& spec;
  const std::string& task_name;
  const std::string& prompt;
  std::chrono::steady_clock::time_point started;
  exchange::LedgerWriter* ledger;  ///< null: no record
};

/// Runs the exchange; records the call in the ledger when asked, a failed one too.
asio::awaitable<exchange::ExchangeResult> run_recorded(exchange::Exchange& shared, Model& model,
                                                       exchange::ExchangeRequest request,
                                                       const CallRecord& call) {
  const auto record = [&](const exchange::ExchangeResult* result) {
    if (call.ledger == nullptr) return;
    call.ledger->record(agent::ledger_record(call.options, call.spec.provider, call.spec.model,
                                             call.task_name, result, call.started));
  };
  if (call.ledger != nullptr && request.stale_while_revalidate.count() > 0) {
    // A background refresh records what it spends under this call's task and tenant.
    request.ledger_who = agent::ledger_record(call.options, call.spec.provider, call.spec.model,
                                              call.task_name, nullptr, call.started);
  }
  std::optional<exchange::ExchangeResult> ran;
  try {
    ran = co_await shared.run(model, std::move(request));
  } catch (const CacheMissError& e) {
    record(nullptr);
    // A replay that misses says which test asked for what (docs/TESTING.md).
    throw CacheMissError(fmt::format("task '{}', prompt '{}': {}",
                                     core::printable(call.task_name, 64),
                                     core::printable(call.prompt, 80), e.what()));
  } catch (...) {
    record(nullptr);
    throw;
  }
  record(&*ran);
  co_return std::move(*ran);
}

asio::awaitable<RunResult> run(const Agent& agent_in, std::string_view prompt_in,
                               std::string_view task_in, RunOptions options,
                               std::optional<detail::StructuredOutput> output) {
  // Own copies first: callers may pass temporaries that die after the first suspension.
  const Agent agent = agent_in;
  const std::string prompt(prompt_in);
  const std::string task_name(task_in);
  const auto started = std::chrono::steady_clock::now();

  const agent::ModelSpec spec = agent::parse_model_spec(agent.model);
  // A local server's model that has no price costs nothing, rather than being an error.
  if (spec.host->local && !CostTable::defaults().find(spec.model) &&
      !CostTable(options.custom_costs).find(spec.model)) {
    options.custom_costs.emplace(spec.model, ModelCosts{});
  }
  const CostTable overrides(options.custom_costs);
  Runtime& runtime = options.runtime ? *options.runtime : Runtime::default_runtime();
  const CacheMode mode = options.mode.value_or(runtime.options().mode);
  std::shared_ptr<Model> model = options.model_client;
  if (!model) {
    // replay_only never calls the provider, so it runs without keys (test suites in CI).
    model = providers::make_http_model(runtime.impl().pool, *spec.host, agent.base_url,
                                       agent.api_key, {}, mode != CacheMode::replay_only);
  }
  providers::ChatRequest chat =
      build_chat(agent, spec, prompt, options, output ? &*output : nullptr);
  const std::shared_ptr<exchange::Exchange> shared =
      runtime.impl().exchange_for(agent::cache_options_of(options));
  exchange::ExchangeRequest request = exchange_request(
      spec, chat, options, runtime.options(), model, overrides, output ? &*output : nullptr);

  request.task = task_name;  // named by the entry a miss records (DESIGN §4)
  request.budgets = agent::budget_lines_of(options, task_name);
  exchange::LedgerWriter* ledger = nullptr;
  if (options.ledger) {
    shared->start_ledger(runtime.impl().ledger_options());
    ledger = shared->ledger();
  }
  const CallRecord call{options, spec, task_name, prompt, started, ledger};
  const exchange::ExchangeResult exchanged =
      co_await run_recorded(*shared, *model, std::move(request), call);

  const providers::ChatResponse parsed =
      providers::parse_response(spec.provider, exchanged.entry->response, output.has_value());
  RunResult result;
  result.output = parsed.text;
  result.output_json = parsed.output_json;
  result.finish_reason = parsed.finish_reason;
  result.messages = std::move(chat.messages);
  result.messages.push_back({"assistant", parsed.output_json
                                              ? boost::json::serialize(*parsed.output_json)
                                              : parsed.text});
  result.usage = exchanged.entry->usage;
  if (exchanged.cache_hit || exchanged.coalesced) result.usage.requests = 0;
  result.model = agent.model;
  result.cost_nano_usd = exchanged.cost_nano_usd;
  result.cost = nano_usd_to_dollars(result.cost_nano_usd);
  result.cache_hit = exchanged.cache_hit;
  result.coalesced = exchanged.coalesced;
  result.stale = exchanged.stale;
  result.avoided_cost_nano_usd = exchanged.avoided_nano_usd;
  result.avoided_cost = nano_usd_to_dollars(result.avoided_cost_nano_usd);
  result.cache_key = exchanged.storage_key;
  result.attempts = exchanged.attempts;

  Expense expense{result.model,
                  task_name,
                  result.usage,
                  result.cost,
                  result.avoided_cost,
                  result.cost_nano_usd,
                  result.avoided_cost_nano_usd,
                  result.cache_hit || result.coalesced,
                  result.cache_key,
                  std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started),
                  result.attempts};
  co_await agent::record_expense(options, expense);
  co_return result;
}

}  // namespace

std::vector<ModelMessage> default_message_converter(const std::vector<HistoryItem>& items) {
  std::vector<ModelMessage> out;
  out.reserve(items.size());
  for (const HistoryItem& item : items) {
    const boost::json::value& v = item.value();
    if (const auto* obj = v.if_object()) {
      const auto* role = obj->if_contains("role");
      const auto* content = obj->if_contains("content");
      out.push_back({role && role->is_string() ? std::string(role->get_string()) : "user",
                     content ? text_of(*content) : std::string()});
    } else {
      out.push_back({"user", text_of(v)});
    }
  }
  return out;
}

// Not a coroutine on purpose: g++ 12 destroys a prvalue argument of a coroutine called inside a
// co_await expression twice. A plain function hands the already-materialised options over.
// The options are copied here, out of any co_await expression.
asio::awaitable<RunResult> cached_agent_run(const Agent& agent, std::string_view prompt,
                                            std::string_view task_name, const RunOptions& options) {
  return run(agent, prompt, task_name, options, std::nullopt);
}

const RunOptions& default_run_options() {
  static const RunOptions defaults;
  return defaults;
}

RunResult cached_agent_run_sync(const Agent& agent, std::string_view prompt,
                                std::string_view task_name, RunOptions options) {
  return cache::run_blocking(run(agent, prompt, task_name, std::move(options), std::nullopt));
}

namespace detail {

asio::awaitable<RunResult> run_structured(const Agent& agent, std::string_view prompt,
                                          std::string_view task_name, RunOptions options,
                                          StructuredOutput output) {
  return run(agent, prompt, task_name, std::move(options), std::move(output));
}

RunResult run_structured_sync(const Agent& agent, std::string_view prompt,
                              std::string_view task_name, RunOptions options,
                              StructuredOutput output) {
  return cache::run_blocking(run(agent, prompt, task_name, std::move(options), std::move(output)));
}

}  // namespace detail

}  // namespace llm_caching

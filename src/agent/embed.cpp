// cached_embed (llm_caching/embed.hpp): the texts become the provider's embeddings request, which
// exchange::run_embeddings splits, keys and answers per input as the gateway's routes do.
#include "llm_caching/embed.hpp"

#include "agent/run.hpp"
#include "agent/runtime_impl.hpp"
#include "cache/run_blocking.hpp"
#include "exchange/embeddings.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/expense.hpp"
#include "llm_caching/runtime.hpp"
#include "providers/embeddings_wire.hpp"
#include "providers/http_model.hpp"

#include <boost/json/value.hpp>

namespace llm_caching {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace emb = providers::embeddings;

/// The provider's request for the texts, split into its inputs: OpenAI's (and the compatible
/// hosts') {"model","input":[...]}, Gemini's :batchEmbedContents.
emb::Request split_request(const agent::ModelSpec& spec, const Embedder& embedder,
                           const std::vector<std::string>& texts) {
  json::array inputs;
  if (spec.provider == Provider::gemini) {
    for (const std::string& text : texts) {
      json::object item{
          {"content", json::object{{"parts", json::array{json::object{{"text", text}}}}}}};
      if (embedder.dimensions) item["outputDimensionality"] = *embedder.dimensions;
      inputs.push_back(std::move(item));
    }
    return emb::read_request(emb::Wire::gemini_batch, spec.model,
                             json::object{{"requests", std::move(inputs)}});
  }
  if (spec.provider != Provider::openai) {
    throw ConfigurationError("model '" + embedder.model +
                             "': cached_embed speaks OpenAI's and Gemini's embeddings APIs");
  }
  for (const std::string& text : texts) inputs.emplace_back(text);
  json::object body{{"model", spec.model}, {"input", std::move(inputs)}};
  if (embedder.dimensions) body["dimensions"] = *embedder.dimensions;
  return emb::read_request(emb::Wire::openai, {}, std::move(body));
}

/// One embedding's JSON text (an array of numbers) as doubles.
std::vector<double> numbers_of(std::string_view text) {
  const json::value parsed = parse_json_exact(text);
  const json::array* list = parsed.if_array();
  if (const json::object* object = parsed.if_object()) {  // Gemini: {"values": [...]}
    const json::value* values = object->if_contains("values");
    list = values ? values->if_array() : nullptr;
  }
  if (list == nullptr) throw ProviderError("an embedding is not a list of numbers", 200, "", "");
  std::vector<double> out;
  out.reserve(list->size());
  for (const json::value& v : *list) out.push_back(v.to_number<double>());
  return out;
}

/// The summary the ledger record is made of (agent::ledger_record reads an ExchangeResult).
exchange::ExchangeResult ledger_summary(const exchange::EmbeddingsResult& ran) {
  exchange::ExchangeResult summary;
  auto entry = std::make_shared<core::CacheEntry>();
  entry->usage.input_tokens = ran.sent_tokens;
  summary.entry = std::move(entry);
  summary.cost_nano_usd = ran.cost_nano_usd;
  summary.avoided_nano_usd = ran.avoided_nano_usd;
  summary.cache_hit = ran.sent == 0 && ran.coalesced == 0;
  summary.coalesced = ran.sent == 0 && ran.coalesced > 0;
  return summary;
}

EmbedResult result_of(const exchange::EmbeddingsResult& ran, const Embedder& embedder) {
  EmbedResult result;
  result.embeddings.reserve(ran.inputs.size());
  for (const exchange::EmbeddedInput& in : ran.inputs) {
    result.embeddings.push_back(numbers_of(in.embedding()));
    result.cache_keys.push_back(in.storage_key);
  }
  result.cached = ran.cached;
  result.coalesced = ran.coalesced;
  result.sent = ran.sent;
  result.usage.input_tokens = ran.sent_tokens;
  result.usage.requests = ran.sent > 0 ? ran.attempts : 0;
  result.model = embedder.model;
  result.cost_nano_usd = ran.cost_nano_usd;
  result.cost = nano_usd_to_dollars(ran.cost_nano_usd);
  result.avoided_cost_nano_usd = ran.avoided_nano_usd;
  result.avoided_cost = nano_usd_to_dollars(ran.avoided_nano_usd);
  result.attempts = ran.attempts;
  return result;
}

/// Runs the request; records the call in the ledger when asked, a failed one too.
asio::awaitable<exchange::EmbeddingsResult> run_recorded(exchange::Exchange& shared, Model& model,
                                                         exchange::EmbeddingsRequest request,
                                                         const RunOptions& options,
                                                         const agent::ModelSpec& spec,
                                                         const std::string& task_name) {
  const auto started = std::chrono::steady_clock::now();
  exchange::LedgerWriter* ledger = nullptr;
  if (options.ledger) ledger = shared.ledger();
  std::optional<exchange::EmbeddingsResult> ran;
  try {
    ran = co_await exchange::run_embeddings(shared, model, std::move(request));
  } catch (...) {
    if (ledger) {
      ledger->record(
          agent::ledger_record(options, spec.provider, spec.model, task_name, nullptr, started));
    }
    throw;
  }
  if (ledger) {
    const exchange::ExchangeResult summary = ledger_summary(*ran);
    ledger->record(
        agent::ledger_record(options, spec.provider, spec.model, task_name, &summary, started));
  }
  co_return std::move(*ran);
}

asio::awaitable<EmbedResult> embed(const Embedder& embedder_in,
                                   const std::vector<std::string>& texts_in,
                                   std::string_view task_in, RunOptions options) {
  // Own copies first: callers may pass temporaries that die after the first suspension.
  const Embedder embedder = embedder_in;
  const std::vector<std::string> texts = texts_in;
  const std::string task_name(task_in);
  const auto started = std::chrono::steady_clock::now();
  if (texts.empty()) throw ConfigurationError("cached_embed: no texts to embed");

  const agent::ModelSpec spec = agent::parse_model_spec(embedder.model);
  if (spec.host->local && !CostTable::defaults().find(spec.model) &&
      !CostTable(options.custom_costs).find(spec.model)) {
    options.custom_costs.emplace(spec.model, ModelCosts{});  // a local model costs nothing
  }
  const CostTable overrides(options.custom_costs);
  Runtime& runtime = options.runtime ? *options.runtime : Runtime::default_runtime();
  const CacheMode mode = options.mode.value_or(runtime.options().mode);
  std::shared_ptr<Model> model = options.model_client;
  if (!model) {
    model = providers::make_http_model(runtime.impl().pool, *spec.host, embedder.base_url,
                                       embedder.api_key, {}, mode != CacheMode::replay_only);
  }
  const std::shared_ptr<exchange::Exchange> shared =
      runtime.impl().exchange_for(agent::cache_options_of(options));
  if (options.ledger) shared->start_ledger(runtime.impl().ledger_options());

  exchange::EmbeddingsRequest request;
  request.split = split_request(spec, embedder, texts);
  agent::apply_run_options(request.settings, options, runtime.options(), model, overrides);
  request.settings.refresh_model = nullptr;  // no stale policies per input
  request.settings.budgets = agent::budget_lines_of(options, task_name);
  request.settings.task = task_name;  // named by the entries a miss records (DESIGN §4)
  const exchange::EmbeddingsResult ran =
      co_await run_recorded(*shared, *model, std::move(request), options, spec, task_name);

  EmbedResult result = result_of(ran, embedder);
  const bool unpaid = ran.sent == 0;
  Expense expense{result.model,
                  task_name,
                  result.usage,
                  result.cost,
                  result.avoided_cost,
                  result.cost_nano_usd,
                  result.avoided_cost_nano_usd,
                  unpaid,
                  result.cache_keys.size() == 1 ? result.cache_keys.front() : std::string(),
                  std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started),
                  result.attempts};
  co_await agent::record_expense(options, expense);
  co_return result;
}

}  // namespace

// Not a coroutine on purpose (as cached_agent_run): the options are copied here, out of any
// co_await expression.
asio::awaitable<EmbedResult> cached_embed(const Embedder& embedder,
                                          const std::vector<std::string>& texts,
                                          std::string_view task_name, const RunOptions& options) {
  return embed(embedder, texts, task_name, options);
}

EmbedResult cached_embed_sync(const Embedder& embedder, const std::vector<std::string>& texts,
                              std::string_view task_name, RunOptions options) {
  return cache::run_blocking(embed(embedder, texts, task_name, std::move(options)));
}

}  // namespace llm_caching

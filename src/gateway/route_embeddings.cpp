// The embeddings calls, cached per input: OpenAI's POST /v1/embeddings and Gemini's
// :embedContent and :batchEmbedContents. The route reads the request and the caller, and answers;
// the per-input path (keys, look-up, one upstream request for the inputs the cache did not hold,
// per-input flights, entries, cost shares) is exchange::run_embeddings, which the library's
// cached_embed runs too (their wire formats: providers/embeddings_wire.*).
#include "gateway/gateway.hpp"

#include "exchange/embeddings.hpp"
#include "gateway/controls.hpp"
#include "gateway/ledger_record.hpp"
#include "gateway/route_parts.hpp"
#include "gateway/worker_state.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"

namespace llm_caching::gateway {

namespace json = boost::json;
namespace embeddings = providers::embeddings;
using embeddings::Wire;

namespace {

/// What the route reads of a request; throws BadRequest.
struct EmbeddingsCall {
  CacheControls controls;
  embeddings::Request request;
};

EmbeddingsCall read_call(const IncomingRequest& request, const StaleWindows& defaults, Wire wire,
                         const std::string& route_model) {
  EmbeddingsCall call;
  call.controls = parse_cache_controls(request.headers, defaults);
  json::error_code ec;
  json::value parsed = parse_json_exact(request.body, ec);
  if (ec || !parsed.is_object()) throw BadRequest("the request body is not a JSON object");
  try {
    call.request = embeddings::read_request(wire, route_model, std::move(parsed.as_object()));
  } catch (const embeddings::BadInput& e) {
    throw BadRequest(e.what());
  }
  return call;
}

/// The settings of the upstream request for the inputs the cache does not hold.
exchange::ExchangeRequest settings_for(const EmbeddingsCall& call, const std::string& scope,
                                       const GatewayConfig& config) {
  exchange::ExchangeRequest r;
  r.scope = scope;
  r.namespace_ = call.controls.namespace_;
  r.task = call.controls.task;  // x-llm-task: the entries a miss records name it
  r.mode = call.controls.mode;
  r.ttl = call.controls.ttl.value_or(config.default_ttl);
  r.retry = config.retry;
  if (call.controls.max_wait)
    r.retry.max_wait = std::min(*call.controls.max_wait, config.max_wait_cap);
  r.allow_unpriced = config.allow_unpriced;
  r.coalesce = call.controls.coalesce;
  return r;
}

/// The ledger record and the budgets of the call (as the chat routes' who_pays).
void who_pays(const GatewayConfig& config, const exchange::LedgerWriter* ledger,
              const IncomingRequest& request, Provider provider, const EmbeddingsCall& call,
              std::string_view tenant_scope, exchange::ExchangeRequest& settings,
              RequestRecord& record) {
  if (config.budgets.empty() && ledger == nullptr) return;
  core::LedgerRecord who =
      ledger_request(request, provider, call.request.model, call.controls.namespace_, tenant_scope);
  if (!config.budgets.empty()) {
    settings.budgets =
        core::budget_lines(config.budgets, {who.task, who.tenant, who.tags, who.namespace_},
                           exchange::system_now_ms());
  }
  if (ledger != nullptr) record.ledger = std::move(who);
}

/// The ledger's account of a finished call: the tokens and cost of what was sent, what the
/// others avoided; a hit when nothing was sent, coalesced when only other callers' flights were.
void ledger_embeddings(core::LedgerRecord& r, const exchange::EmbeddingsResult& result) {
  r.input_tokens = result.sent_tokens;
  r.cost_nano_usd = result.cost_nano_usd;
  r.avoided_nano_usd = result.avoided_nano_usd;
  r.outcome = result.sent > 0        ? core::LedgerOutcome::miss
              : result.coalesced > 0 ? core::LedgerOutcome::coalesced
                                     : core::LedgerOutcome::hit;
}

/// What an answer's body points into: the entries (in `result`) and the JSON around them, kept
/// alive until the body is written (a hit copies no embedding).
struct EmbeddingsAnswer {
  exchange::EmbeddingsResult result;
  std::string glue;  ///< the JSON around the embeddings
};

/// The answer's headers: how it went, what it cost and avoided.
Headers answer_headers_of(const exchange::EmbeddingsResult& result) {
  exchange::ExchangeResult summary;  // what the headers report
  summary.cost_nano_usd = result.cost_nano_usd;
  summary.avoided_nano_usd = result.avoided_nano_usd;
  summary.priced = result.priced;
  if (result.inputs.size() == 1) summary.storage_key = result.inputs.front().storage_key;
  const char* cache = result.sent > 0        ? "MISS"
                      : result.coalesced > 0 ? "COALESCED"  // another caller's request sent them
                                             : "HIT";
  Headers headers = answer_headers(kJson, cache, summary);
  std::erase_if(headers, [](const auto& h) {
    return h.first == "x-llm-cache-key" && h.second.empty();  // several inputs: several keys
  });
  headers.emplace_back("x-llm-cache-inputs", std::to_string(result.inputs.size() - result.sent) +
                                                 " cached, " + std::to_string(result.sent) +
                                                 " sent");
  return headers;
}

/// The answer's body as pieces (providers/embeddings_wire.hpp, answer_pieces).
GatheredBody answer_body_of(Wire wire, std::shared_ptr<EmbeddingsAnswer> answer) {
  const exchange::EmbeddingsResult& result = answer->result;
  std::vector<std::string_view> texts;
  texts.reserve(result.inputs.size());
  for (const exchange::EmbeddedInput& in : result.inputs) texts.push_back(in.embedding());
  GatheredBody body;
  body.pieces =
      embeddings::answer_pieces(wire, texts, result.model, result.sent_tokens, answer->glue);
  body.owner = std::move(answer);
  return body;
}

}  // namespace

boost::asio::awaitable<void> Gateway::handle_embeddings(WorkerState& worker,
                                                        const IncomingRequest& request,
                                                        const Route& route, RequestRecord& record,
                                                        ResponseStream& out) {
  const Provider provider = route.provider;
  const Wire wire = provider == Provider::openai ? Wire::openai
                    : route.gemini_batch         ? Wire::gemini_batch
                                                 : Wire::gemini_one;
  record.llm = true;
  record.provider = provider;
  EmbeddingsCall call;
  std::optional<OutgoingResponse> refusal;
  try {
    call = read_call(request, config_.stale_defaults, wire, route.model);
  } catch (const BadRequest& e) {
    refusal = error_response(provider, 400, e.what());
  }
  const std::string credential = caller_credential(provider, request.headers, route.query_key);
  const std::string identity = caller_identity(credential, request.headers);
  if (!refusal) refusal = keyless_refusal(config_, metrics_, provider, identity);
  if (refusal) {
    record.status = refusal->status;
    co_await out.send(std::move(*refusal));
    co_return;
  }
  record.task = request.header("x-llm-task");
  const std::string scope = request_scope(config_, worker.scopes, identity, request.headers, route,
                                          endpoint_scope(route.provider));
  exchange::EmbeddingsRequest run{std::move(call.request), settings_for(call, scope, config_)};
  run.settings.caller_gone = [&out] { return out.client_gone(); };
  who_pays(config_, exchange_->ledger(), request, provider, call, worker.scopes(identity),
           run.settings, record);

  UpstreamModel model(worker.upstream, config_.upstreams[provider], request.headers, credential);
  model.use_api_version(route.gemini_version);
  std::optional<exchange::EmbeddingsResult> result;
  std::exception_ptr failure;
  try {
    result = co_await exchange::run_embeddings(*exchange_, model, std::move(run));
  } catch (...) {
    failure = std::current_exception();
  }
  record.upstream_calls = model.calls();
  record.upstream_wait = model.waited();
  if (failure) {
    record.budget_refused = is_budget_refusal(failure);
    OutgoingResponse response = failure_response(provider, failure, model.last_error());
    record.status = response.status;
    co_await out.send(std::move(response));
    co_return;
  }
  record.outcome = result->sent > 0 ? Outcome::miss : Outcome::hit;
  record.overhead_applies = result->coalesced == 0 && record.upstream_calls <= 1;
  record.status = 200;
  record.cost_nano_usd = result->cost_nano_usd;
  record.avoided_nano_usd = result->avoided_nano_usd;
  record.unpriced = !result->priced;
  if (record.ledger) ledger_embeddings(*record.ledger, *result);
  if (!result->priced) warn_unpriced(result->model);
  Headers headers = answer_headers_of(*result);
  auto answer = std::make_shared<EmbeddingsAnswer>();
  answer->result = std::move(*result);
  GatheredBody body = answer_body_of(wire, std::move(answer));
  co_await out.send_gathered(200, std::move(headers), std::move(body));
}

}  // namespace llm_caching::gateway

// The LLM route: read the caller's native request, run it through the exchange (relaying a
// streamed miss as it arrives), answer in the provider's own format. Steps 1, 2 and 4 are plain
// functions; only running the exchange and writing suspend.
#include "gateway/controls.hpp"
#include "gateway/gateway.hpp"

#include "core/printable.hpp"
#include "core/prompt_excerpt.hpp"
#include "gateway/hit_memo.hpp"
#include "gateway/ledger_record.hpp"
#include "gateway/route_parts.hpp"
#include "gateway/worker_state.hpp"
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>

namespace llm_caching::gateway {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

/// What the route reads from a request before the exchange.
struct LlmRequest {
  CacheControls controls;
  json::object body;
  std::string model_id;
  bool stream = false;
  std::string credential;  ///< a secret: never log it
  std::string identity;    ///< what decides the caller's partition
};

/// Controls, JSON body, model and stream flag. Throws BadRequest naming the problem.
void parse_llm_request(const GatewayConfig& config, const IncomingRequest& request,
                       const Route& route, LlmRequest& out) {
  out.controls = parse_cache_controls(request.headers, config.stale_defaults, config.default_mode);
  out.model_id = route.model;
  out.stream = route.gemini_stream;
  json::error_code ec;
  std::string duplicate;
  json::value parsed = parse_json_exact(request.body, ec, &duplicate);
  if (ec == JsonError::duplicate_key) {
    // The key and the upstream must read one request: a parser keeps one of the two values,
    // and the provider's may keep the other.
    throw BadRequest("the request body names the key \"" + core::printable(duplicate, 64) +
                     "\" twice in one object; send each key once");
  }
  if (ec || !parsed.is_object()) throw BadRequest("the request body is not a JSON object");
  out.body = std::move(parsed.as_object());
  if (route.provider != Provider::gemini) {
    const json::value* model = out.body.if_contains("model");
    if (model || route.model.empty()) {  // a route with a default model may go without one
      if (!model || !model->is_string() || model->as_string().empty()) {
        throw BadRequest("the request body has no \"model\" string");
      }
      out.model_id = std::string(model->as_string());
    }
    const json::value* wants_stream = out.body.if_contains("stream");
    out.stream = wants_stream && wants_stream->is_bool() && wants_stream->as_bool() &&
                 providers::api_streams(route.api);
  }
  if (never_cached(route.api, out.body)) out.controls.mode = CacheMode::bypass;
  if (out.model_id.empty()) throw BadRequest("no model in the request");
}

/// Step 1: the request as the route reads it, or the refusal (400, 401) to send instead.
std::optional<OutgoingResponse> read_llm_request(const GatewayConfig& config,
                                                 const IncomingRequest& request, const Route& route,
                                                 Metrics& metrics, LlmRequest& out) {
  std::optional<OutgoingResponse> refusal;
  try {
    parse_llm_request(config, request, route, out);
  } catch (const BadRequest& e) {
    refusal = error_response(route.provider, 400, e.what());
  }
  out.credential = caller_credential(route.provider, request.headers, route.query_key);
  out.identity = caller_identity(out.credential, request.headers);
  if (!refusal) refusal = keyless_refusal(config, metrics, route.provider, out.identity);
  return refusal;
}

/// Step 2: the exchange request: the caller's body as the key material, in `scope`.
exchange::ExchangeRequest exchange_request_for(const GatewayConfig& config, const Route& route,
                                               LlmRequest& llm, std::string scope) {
  const CacheControls& controls = llm.controls;
  exchange::ExchangeRequest r;
  r.native = NativeRequest{route.provider, llm.model_id, std::move(llm.body), llm.stream};
  r.native.api = route.api;
  r.namespace_ = controls.namespace_;
  r.scope = std::move(scope);
  r.task = controls.task;  // x-llm-task: the entry a miss records names it
  r.mode = controls.mode;
  r.ttl = controls.ttl.value_or(config.default_ttl);
  r.retry = config.retry;
  // A caller may ask for a longer retry budget, up to what the operator allows.
  if (controls.max_wait) r.retry.max_wait = std::min(*controls.max_wait, config.max_wait_cap);
  r.allow_unpriced = config.allow_unpriced;
  r.coalesce = controls.coalesce;
  // Answer once the entry is in the L1; the L2 write (then the cross-process unlock) follows.
  r.write_behind = true;
  // Repeats are the L1's: an L1 miss reads the L2 once, under the lock (SQLite, not Redis).
  r.read_l2_under_lock = true;
  r.stale_if_error = controls.stale_if_error;
  r.stale_while_revalidate = controls.stale_while_revalidate;
  return r;
}

/// What goes upstream on a miss: the caller's own bytes when the route leaves the JSON as it
/// came, else the request re-serialised (an OpenAI stream asks for its final usage chunk, so
/// the miss is costed; the key ignores stream_options).
void choose_upstream_body(const GatewayConfig& config, const IncomingRequest& request,
                          const Route& route, NativeRequest& native, UpstreamModel& model) {
  model.use_api_version(route.gemini_version);  // Gemini's, as the caller's path named it
  // The Responses API always reports usage, and refuses stream_options.
  if (native.provider == Provider::openai && native.stream && config.openai_stream_usage &&
      native.api != Api::responses) {
    json::value& options = native.body["stream_options"];
    if (!options.is_object()) options = json::object{};
    options.as_object()["include_usage"] = true;
  } else {
    model.send_verbatim(request.body);
  }
}

/// Step 4: the body and headers of an answer that was not relayed.
OutgoingResponse answer_response(const Route& route, bool stream, std::string_view status,
                                 const exchange::ExchangeResult& result) {
  const core::CacheEntry& entry = *result.entry;
  OutgoingResponse response;
  std::string_view content_type = kJson;
  const auto stream_text = [&] {
    return entry.stream.empty()
               ? providers::response_to_sse(route.provider, route.api, entry.response)
               : entry.stream;
  };
  if (!stream) {
    response.body = entry.response;
  } else if (route.provider == Provider::gemini && !route.gemini_sse) {
    response.body = sse_to_json_array(stream_text());
  } else {
    response.body = stream_text();
    content_type = kEventStream;
  }
  response.headers = answer_headers(content_type, status, result);
  return response;
}

/// Remembers a plain hit in the worker's memo, and returns its prepared response to send.
std::shared_ptr<const PreparedResponse> memoize_hit(WorkerState& worker,
                                                    const IncomingRequest& request,
                                                    Provider provider, const std::string& scope,
                                                    const exchange::ExchangeResult& result,
                                                    const std::optional<core::LedgerRecord>& ledger,
                                                    OutgoingResponse response) {
  auto hit = std::make_shared<HitMemo::Hit>();
  hit->provider = provider;
  hit->scope = scope;
  hit->storage_key = result.storage_key;
  hit->entry = result.entry;
  hit->response = prepare_response(std::move(response));
  hit->avoided_nano_usd = result.avoided_nano_usd;
  hit->priced = result.priced;
  hit->ledger = ledger;
  worker.hits.remember(request.target, request.body, hit);
  return hit->response;
}

/// What the metrics record of a finished exchange.
void record_result(RequestRecord& record, std::string_view status,
                   const exchange::ExchangeResult& result, const StaleWindows& windows,
                   std::int64_t started_ms) {
  record.outcome = outcome_of(status);
  // Waiting for another caller's flight or a retry's backoff is not the gateway's own time.
  record.overhead_applies = !result.coalesced && record.upstream_calls <= 1;
  record.cost_nano_usd = result.cost_nano_usd;
  record.avoided_nano_usd = result.avoided_nano_usd;
  record.unpriced = !result.priced;
  record.soft_budgets_exceeded = result.soft_budgets_exceeded;
  if (record.ledger) exchange::record_result(*record.ledger, result);
  if (result.stale) {
    const core::CacheEntry& served = *result.entry;
    const std::chrono::milliseconds expired_for(started_ms - served.created_at_ms - served.ttl_ms);
    record.stale = stale_reason(windows, record.upstream_calls, expired_for);
  }
}

/// Who a call is for (its ledger record before the outcome): the budgets it falls under, and
/// the record to write when it ends (`ledger`).
void who_pays(const GatewayConfig& config, const exchange::LedgerWriter* ledger,
              const IncomingRequest& request, const Route& route, const LlmRequest& llm,
              WorkerState& worker, exchange::ExchangeRequest& exchange_request,
              RequestRecord& record) {
  const std::vector<Budget>& budgets = config.budgets;
  if (budgets.empty() && ledger == nullptr) return;
  core::LedgerRecord who = ledger_request(request, route.provider, llm.model_id,
                                          llm.controls.namespace_, worker.scopes(llm.identity));
  if (!budgets.empty()) {
    exchange_request.budgets = core::budget_lines(
        budgets, {who.task, who.tenant, who.tags, who.namespace_}, exchange::system_now_ms());
  }
  if (ledger == nullptr) return;
  if (exchange_request.refresh_model) exchange_request.ledger_who = who;
  record.ledger = std::move(who);
}

/// Step 3: runs the exchange, relaying a streamed miss through `relay` when set. Sets `result`,
/// or `failure` when it throws.
asio::awaitable<void> run_exchange(exchange::Exchange& exchange, UpstreamModel& model,
                                   exchange::ExchangeRequest request, Relay* relay,
                                   ResponseStream& out,
                                   std::optional<exchange::ExchangeResult>& result,
                                   std::exception_ptr& failure) {
  try {
    if (relay != nullptr) {
      result = co_await run_relayed(exchange, model, std::move(request), *relay, out);
    } else {
      result = co_await exchange.run(model, std::move(request));
    }
  } catch (...) {
    failure = std::current_exception();
  }
}

/// A replay miss names the caller's task (x-llm-task, validated printable) and its prompt, as the
/// library's names its task_name and prompt (docs/TESTING.md); any other failure is returned as
/// it is.
std::exception_ptr naming_caller(std::exception_ptr failure, const std::string& task,
                                 std::string_view body) {
  try {
    std::rethrow_exception(failure);
  } catch (const CacheMissError& e) {
    std::string who;
    if (!task.empty()) who = "task '" + task + "'";
    if (const std::string prompt = core::prompt_excerpt(body); !prompt.empty()) {
      who += (who.empty() ? "prompt '" : ", prompt '") + prompt + "'";
    }
    return who.empty() ? failure : std::make_exception_ptr(CacheMissError(who + ": " + e.what()));
  } catch (...) {
    return failure;
  }
}

}  // namespace

asio::awaitable<void> Gateway::handle_llm(WorkerState& worker, Call& call, ResponseStream& out) {
  const IncomingRequest& request = call.request;
  const Route& route = call.route;
  RequestRecord& record = call.record;
  std::tie(record.llm, record.provider) = std::pair(true, route.provider);

  // 1. Read the request. Any problem is a 400 (or 401 when a key is required).
  LlmRequest llm;
  if (auto refusal = read_llm_request(config_, request, route, metrics_, llm)) {
    record.status = refusal->status;
    co_await out.send(std::move(*refusal));
    co_return;
  }
  record.task = request.header("x-llm-task");  // validated above; outlives the record
  const CacheControls& controls = llm.controls;

  // 2. The exchange request, and the model that forwards a miss upstream.
  const Upstream& target = config_.upstreams[route.provider];
  UpstreamModel model(worker.upstream, target, request.headers, llm.credential);
  const auto scope = request_scope(config_, worker.scopes, llm.identity, request.headers, route,
                                   endpoint_scope(route.provider));
  exchange::ExchangeRequest exchange_request = exchange_request_for(config_, route, llm, scope);
  // A caller that hung up reads no answer: its retries stop (unless another caller joined).
  exchange_request.caller_gone = [&out] { return out.client_gone(); };
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  if (controls.stale_while_revalidate.count() > 0) {
    // The refresh runs after this request is answered, on this thread (the client is the
    // worker's), with its own copies of what the model borrows.
    exchange_request.refresh_model = std::make_shared<OwnedUpstreamModel>(
        worker.upstream, target, request.headers, llm.credential, route.gemini_version);
    exchange_request.refresh_executor = executor;
  }
  choose_upstream_body(config_, request, route, exchange_request.native, model);
  who_pays(config_, exchange_->ledger(), request, route, llm, worker, exchange_request, record);

  // 3. Run it; a streamed miss is relayed while it arrives.
  const bool relays = llm.stream && (route.provider != Provider::gemini || route.gemini_sse);
  Relay relay(executor);  // an idle timer: cheap, never armed on hits
  const StaleWindows stale_windows{controls.stale_while_revalidate, controls.stale_if_error};
  // Read before the exchange looks at the entry: stale_reason tells the two policies apart by it.
  const std::int64_t started_ms =
      stale_windows.stale_while_revalidate.count() > 0 ? exchange::system_now_ms() : 0;
  std::optional<exchange::ExchangeResult> result;
  std::exception_ptr failure;
  co_await run_exchange(*exchange_, model, std::move(exchange_request), relays ? &relay : nullptr,
                        out, result, failure);
  std::tie(record.upstream_calls, record.upstream_wait) = std::pair(model.calls(), model.waited());

  // 4. Answer.
  if (failure) {
    record.outcome = Outcome::error;
    count_upstream_too_large(metrics_, failure);
    record.budget_refused = is_budget_refusal(failure);
    if (relay.head_sent) {
      record.status = 502;  // counted as an error; the client sees a truncated stream
      out.abort();
    } else {
      OutgoingResponse response = failure_response(
          route.provider, naming_caller(failure, controls.task, request.body), model.last_error());
      record.status = response.status;
      co_await out.send(std::move(response));
    }
    co_return;
  }
  const std::string_view status =
      cache_status(controls.mode, result->cache_hit, result->coalesced, result->stale);
  record_result(record, status, *result, stale_windows, started_ms);
  if (!result->priced) warn_unpriced(llm.model_id);
  if (result->relayed) {
    if (relay.client_gone) {
      out.abort();
    } else {
      co_await out.end_chunked(cost_trailers(*result));
    }
    co_return;
  }
  OutgoingResponse response = answer_response(route, llm.stream, status, *result);
  if (config_.memoize_hits && status == "HIT" && controls.mode == CacheMode::use &&
      has_default_controls(request.headers)) {
    // The memo checks the caller's tenant partition alone (route_memo.cpp): the rest of the
    // scope (the upstream, no shaping headers) is the same for every request it answers.
    co_await out.send_prepared(memoize_hit(worker, request, route.provider,
                                           worker.scopes(llm.identity), *result, record.ledger,
                                           std::move(response)));
    co_return;
  }
  co_await out.send(std::move(response));
}

}  // namespace llm_caching::gateway

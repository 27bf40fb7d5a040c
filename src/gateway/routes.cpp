// The routes: parse the native request, run the exchange, answer in the provider's own format.
#include "gateway/controls.hpp"
#include "gateway/gateway.hpp"

#include "core/printable.hpp"
#include "gateway/hit_memo.hpp"
#include "gateway/route_parts.hpp"
#include "llm_caching/cache_key.hpp"

#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"
#include "providers/sse.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <deque>

namespace llm_caching::gateway {

namespace asio = boost::asio;
namespace json = boost::json;

struct Gateway::Call {
  const IncomingRequest& request;
  Route route;
  RequestRecord record;
};

namespace {
std::atomic<std::uint64_t> next_gateway_id{1};
}  // namespace

Gateway::Gateway(GatewayConfig config, std::shared_ptr<exchange::Exchange> exchange)
    : config_(std::move(config)),
      exchange_(std::move(exchange)),
      id_(next_gateway_id.fetch_add(1, std::memory_order_relaxed)) {}

void Gateway::warn_unpriced(const std::string& model) {
  const std::string name = core::printable(model);
  switch (unpriced_warned_.see(name)) {
    case core::LogOncePerName::Verdict::log:
      spdlog::warn(
          "gateway: no price for model '{}': its calls are costed $0 (add it with a cost "
          "table, or run with --reject-unpriced to refuse such calls)",
          name);
      break;
    case core::LogOncePerName::Verdict::log_that_names_stop:
      spdlog::warn(
          "gateway: more than {} models without a price were called; the next ones are not "
          "named here (llmc_gateway_unpriced_requests_total counts their calls)",
          kUnpricedModelsNamed);
      break;
    case core::LogOncePerName::Verdict::skip:
      break;
  }
}

asio::awaitable<void> Gateway::handle(providers::HttpClient& upstream,
                                      const IncomingRequest& request, ResponseStream& out) {
  const auto started = std::chrono::steady_clock::now();
  metrics_.request_started();
  if (config_.memoize_hits && request.method == "POST" && has_default_controls(request.headers)) {
    RequestRecord record;
    if (co_await answer_from_memo(request, out, record)) {
      record.latency = std::chrono::steady_clock::now() - started;
      record.overhead_applies = true;
      metrics_.record(record);
      metrics_.request_finished();
      co_return;
    }
  }
  Call call{request, match_route(request.method, request.target), {}};
  bool failed = false;
  try {
    switch (call.route.kind) {
      case RouteKind::llm:
        co_await handle_llm(upstream, call, out);
        break;
      case RouteKind::models:
        co_await handle_models(upstream, call, out);
        break;
      case RouteKind::embeddings:
        co_await handle_embeddings(upstream, request, call.route, call.record, out);
        break;
      case RouteKind::passthrough:
        co_await handle_passthrough(upstream, request, call.route, call.record, out);
        break;
      case RouteKind::healthz:
        co_await out.send(typed_response(200, kJson, R"({"status":"ok"})"));
        break;
      case RouteKind::metrics:
        co_await out.send(typed_response(200, "text/plain; version=0.0.4", metrics_.render()));
        break;
      case RouteKind::method_not_allowed: {
        call.record.status = 405;
        auto response = error_response(
            call.route.provider, 405,
            "method " + request.method.substr(0, 16) + " is not allowed on this route");
        co_await out.send(std::move(response));
        break;
      }
      case RouteKind::not_found: {
        call.record.status = 404;
        // The path only: a query may carry a key.
        std::string path = request.target.substr(0, request.target.find('?')).substr(0, 200);
        co_await out.send(
            error_response(call.route.provider, 404,
                           "no such route: " + request.method.substr(0, 16) + " " + path));
        break;
      }
    }
  } catch (const std::exception& e) {
    spdlog::error("gateway: unexpected failure in a route: {}", e.what());
    failed = true;
  }
  if (failed) {
    call.record.status = 500;
    call.record.outcome = Outcome::error;
    co_await out.send(error_response(call.route.provider, 500, "internal error in the gateway"));
  }
  call.record.latency = std::chrono::steady_clock::now() - started;
  if (call.record.status >= 400) call.record.outcome = Outcome::error;
  metrics_.record(call.record);
  metrics_.request_finished();
}

asio::awaitable<void> Gateway::handle_models(providers::HttpClient& upstream, Call& call,
                                             ResponseStream& out) {
  const Upstream& target = config_.upstreams[Provider::openai];
  const std::string credential = caller_credential(Provider::openai, call.request.headers, {});
  providers::HttpRequest http;
  http.method = "GET";
  http.url = target.base_url + "/models";
  http.headers = upstream_headers(target, call.request.headers, credential);
  OutgoingResponse response;
  bool unreachable = false;
  try {
    providers::HttpResponse answer = co_await upstream.send(std::move(http));
    response.status = answer.status;
    response.body = std::move(answer.body);
    const std::string type = answer.header("content-type");
    response.headers.emplace_back("content-type", type.empty() ? std::string(kJson) : type);
  } catch (const providers::TransportError& e) {
    response = error_response(Provider::openai,
                              e.kind() == providers::TransportError::Kind::timeout ? 504 : 502,
                              "upstream unreachable: " + describe_transport_failure(e));
    unreachable = true;
  } catch (const std::exception& e) {
    spdlog::warn("gateway: GET /v1/models failed: {}", e.what());
    response = error_response(Provider::openai, 502, "upstream unreachable");
    unreachable = true;
  }
  call.record.status = response.status;
  if (unreachable) call.record.outcome = Outcome::error;
  co_await out.send(std::move(response));
}

asio::awaitable<void> Gateway::handle_llm(providers::HttpClient& upstream, Call& call,
                                          ResponseStream& out) {
  const IncomingRequest& request = call.request;
  const Route& route = call.route;
  const Provider provider = route.provider;
  RequestRecord& record = call.record;
  record.llm = true;
  record.provider = provider;

  // 1. Read the request: controls, JSON body, model, stream flag. Any problem is a 400.
  std::optional<OutgoingResponse> refusal;
  CacheControls controls;
  json::object body;
  std::string model_id = route.model;
  bool stream = route.gemini_stream;
  try {
    controls = parse_cache_controls(request.headers, config_.stale_defaults);
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
    body = std::move(parsed.as_object());
    if (provider != Provider::gemini) {
      const json::value* model = body.if_contains("model");
      if (model || route.model.empty()) {  // a route with a default model may go without one
        if (!model || !model->is_string() || model->as_string().empty()) {
          throw BadRequest("the request body has no \"model\" string");
        }
        model_id = std::string(model->as_string());
      }
      const json::value* wants_stream = body.if_contains("stream");
      stream = wants_stream && wants_stream->is_bool() && wants_stream->as_bool() &&
               providers::api_streams(route.api);
    }
    if (never_cached(route.api, body)) controls.mode = CacheMode::bypass;
    if (model_id.empty()) throw BadRequest("no model in the request");
  } catch (const BadRequest& e) {
    refusal = error_response(provider, 400, e.what());
  }
  const std::string credential = caller_credential(provider, request.headers, route.query_key);
  const std::string identity = caller_identity(credential, request.headers);
  if (!refusal && config_.require_key && identity.empty()) {
    metrics_.refused(Refusal::no_key);
    refusal = error_response(provider, 401,
                             "this gateway requires an API key (Authorization: Bearer, x-api-key, "
                             "x-goog-api-key, ?key= or api-key)");
  }
  if (refusal) {
    record.status = refusal->status;
    co_await out.send(std::move(*refusal));
    co_return;
  }
  record.task = request.header("x-llm-task");  // validated above; outlives the record

  // 2. The exchange request: the caller's body as the key material, scoped to the caller's key.
  const Upstream& target = config_.upstreams[provider];
  UpstreamModel model(upstream, target, request.headers, credential);
  exchange::ExchangeRequest exchange_request;
  exchange_request.native = NativeRequest{provider, model_id, std::move(body), stream};
  exchange_request.native.api = route.api;
  exchange_request.namespace_ = controls.namespace_;
  exchange_request.scope = config_.share_across_keys ? std::string() : tenant_scope(identity);
  // A beta feature or another API version may change the answer: never one for the other.
  if (const std::string shaping = answer_shaping_headers(request.headers); !shaping.empty()) {
    if (!exchange_request.scope.empty()) exchange_request.scope += ';';
    exchange_request.scope += shaping;
  }
  const std::string request_scope = exchange_request.scope;  // the request moves below
  exchange_request.mode = controls.mode;
  exchange_request.ttl = controls.ttl.value_or(config_.default_ttl);
  exchange_request.retry = config_.retry;
  // A caller may ask for a longer retry budget, up to what the operator allows.
  if (controls.max_wait)
    exchange_request.retry.max_wait = std::min(*controls.max_wait, config_.max_wait_cap);
  // A caller that hung up reads no answer: its retries stop (unless another caller joined).
  exchange_request.caller_gone = [&out] { return out.client_gone(); };
  exchange_request.allow_unpriced = config_.allow_unpriced;
  exchange_request.coalesce = controls.coalesce;
  // Answer once the entry is in the L1; the L2 write (then the cross-process unlock) follows.
  exchange_request.write_behind = true;
  // Repeats are the L1's: an L1 miss reads the L2 once, under the lock (SQLite, not Redis).
  exchange_request.read_l2_under_lock = true;
  exchange_request.stale_if_error = controls.stale_if_error;
  exchange_request.stale_while_revalidate = controls.stale_while_revalidate;
  if (controls.stale_while_revalidate.count() > 0) {
    // The refresh runs after this request is answered: it needs its own copies, on this thread
    // (the HttpClient is the worker thread's).
    exchange_request.refresh_model =
        std::make_shared<OwnedUpstreamModel>(upstream, target, request.headers, credential);
    exchange_request.refresh_executor = co_await asio::this_coro::executor;
  }
  if (provider == Provider::openai && stream && config_.openai_stream_usage &&
      route.api != Api::responses) {  // the Responses API always reports usage, and refuses this
    json::value& options = exchange_request.native.body["stream_options"];
    if (!options.is_object()) options = json::object{};
    options.as_object()["include_usage"] = true;
  } else {
    model.send_verbatim(request.body);  // the JSON is the caller's: forward its bytes
  }

  // 3. Run it; a streamed miss is relayed while it arrives.
  const bool relays = stream && (provider != Provider::gemini || route.gemini_sse);
  Relay relay(co_await asio::this_coro::executor);  // an idle timer: cheap, never armed on hits
  const StaleWindows stale_windows{controls.stale_while_revalidate, controls.stale_if_error};
  // Read before the exchange looks at the entry: stale_reason tells the two policies apart by it.
  const std::int64_t started_ms =
      stale_windows.stale_while_revalidate.count() > 0 ? exchange::system_now_ms() : 0;
  std::optional<exchange::ExchangeResult> result;
  std::exception_ptr failure;
  try {
    if (relays) {
      using namespace asio::experimental::awaitable_operators;
      // The head is built on the first chunk, with the key the exchange derived before it
      // relayed anything.
      auto key = std::make_shared<std::string>();
      exchange_request.storage_key_out = key;
      auto make_head = [key, mode = exchange_request.mode]() {
        return Headers{{"content-type", std::string(kEventStream)},
                       {"cache-control", "no-cache"},
                       {"x-llm-cache", std::string(cache_status(mode, false))},
                       {"x-llm-cache-key", *key},
                       {"trailer", "x-llm-cost-usd, x-llm-avoided-usd"}};
      };
      exchange_request.relay = [&relay](std::string_view chunk) { relay.push(chunk); };
      result = co_await (run_then_close(*exchange_, model, std::move(exchange_request), relay) &&
                         write_relay(relay, out, make_head));
    } else {
      result = co_await exchange_->run(model, std::move(exchange_request));
    }
  } catch (...) {
    failure = std::current_exception();
  }
  record.upstream_calls = model.calls();
  record.upstream_wait = model.waited();

  // 4. Answer.
  if (failure) {
    record.outcome = Outcome::error;
    if (relay.head_sent) {
      record.status = 502;  // counted as an error; the client sees a truncated stream
      out.abort();
      co_return;
    }
    OutgoingResponse response = failure_response(provider, failure, model.last_error());
    record.status = response.status;
    co_await out.send(std::move(response));
    co_return;
  }

  const std::string_view status =
      cache_status(controls.mode, result->cache_hit, result->coalesced, result->stale);
  record.outcome = outcome_of(status);
  // Waiting for another caller's flight or a retry's backoff is not the gateway's own time.
  record.overhead_applies = !result->coalesced && record.upstream_calls <= 1;
  record.cost_nano_usd = result->cost_nano_usd;
  record.avoided_nano_usd = result->avoided_nano_usd;
  record.unpriced = !result->priced;
  if (!result->priced) warn_unpriced(model_id);
  if (result->stale) {
    const core::CacheEntry& served = *result->entry;
    const std::chrono::milliseconds expired_for(started_ms - served.created_at_ms - served.ttl_ms);
    record.stale = stale_reason(stale_windows, record.upstream_calls, expired_for);
  }

  if (result->relayed) {
    if (relay.client_gone) {
      out.abort();
      co_return;
    }
    co_await out.end_chunked(cost_trailers(*result));
    co_return;
  }

  const core::CacheEntry& entry = *result->entry;
  OutgoingResponse response;
  std::string_view content_type = kJson;
  if (!stream) {
    response.body = entry.response;
  } else if (provider == Provider::gemini && !route.gemini_sse) {
    response.body = sse_to_json_array(
        entry.stream.empty() ? providers::response_to_sse(provider, entry.response) : entry.stream);
  } else {
    response.body = entry.stream.empty()
                        ? providers::response_to_sse(provider, route.api, entry.response)
                        : entry.stream;
    content_type = kEventStream;
  }
  response.headers = answer_headers(content_type, status, *result);
  if (config_.memoize_hits && status == "HIT" && controls.mode == CacheMode::use &&
      has_default_controls(request.headers)) {
    auto hit = std::make_shared<HitMemo::Hit>();
    hit->gateway_id = id_;
    hit->provider = provider;
    hit->scope = request_scope;
    hit->storage_key = result->storage_key;
    hit->entry = result->entry;
    hit->response = prepare_response(std::move(response));
    hit->avoided_nano_usd = result->avoided_nano_usd;
    hit->priced = result->priced;
    HitMemo::for_this_thread().remember(request.target, request.body, hit);
    co_await out.send_prepared(hit->response);
    co_return;
  }
  co_await out.send(std::move(response));
}

}  // namespace llm_caching::gateway

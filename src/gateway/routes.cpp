// The routes: parse the native request, run the exchange, answer in the provider's own format.
#include "gateway/controls.hpp"
#include "gateway/gateway.hpp"

#include "core/printable.hpp"
#include "gateway/hit_memo.hpp"
#include "gateway/route_parts.hpp"
#include "gateway/worker_state.hpp"
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

namespace {

/// The tiers' failure counters as metric lines.
void render_backend_errors(std::string& out, const cache::TieredCache& cache) {
  const auto failures = cache.failures();
  std::vector<std::pair<std::string_view, std::uint64_t>> by_operation;
  for (std::size_t i = 0; i < failures.size(); ++i) {
    by_operation.emplace_back(cache::to_string(static_cast<cache::BackendOp>(i)), failures[i]);
  }
  Metrics::render_backend_errors(out, cache.backend_kind(), by_operation);
}

}  // namespace

Gateway::Gateway(GatewayConfig config, std::shared_ptr<exchange::Exchange> exchange)
    : config_(std::move(config)), exchange_(std::move(exchange)) {
  for (const Provider provider : {Provider::openai, Provider::anthropic, Provider::gemini}) {
    endpoint_scopes_[static_cast<std::size_t>(provider)] =
        providers::cache_scope(config_.upstreams[provider]);
  }
}

void Gateway::warn_unpriced(const std::string& model) {
  const std::string name = core::printable(model);
  switch (unpriced_warned_.see(name)) {
    case core::LogOncePerName::Verdict::log:
      spdlog::warn(
          "gateway: no price for model '{}': its calls are costed $0 (add it with serve "
          "--prices FILE, or run with --reject-unpriced to refuse such calls)",
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

void Gateway::write_ledger(RequestRecord& record) {
  exchange::LedgerWriter* ledger = exchange_->ledger();
  if (ledger == nullptr || (!record.ledger && !record.ledger_like)) return;
  const std::int64_t latency_us =
      std::chrono::duration_cast<std::chrono::microseconds>(record.latency).count();
  if (record.ledger_like) {
    ledger->record_like(*record.ledger_like, exchange::system_now_ms(), latency_us);
    return;
  }
  record.ledger->time_ms = exchange::system_now_ms();
  record.ledger->latency_us = latency_us;
  ledger->record(std::move(*record.ledger));
}

asio::awaitable<void> Gateway::handle(WorkerState& worker, const IncomingRequest& request,
                                      ResponseStream& out) {
  const auto started = std::chrono::steady_clock::now();
  metrics_.request_started();
  // The memo answers hits: not for a gateway whose default is to skip the read.
  const bool reads_by_default =
      config_.default_mode != CacheMode::refresh && config_.default_mode != CacheMode::bypass;
  if (config_.memoize_hits && reads_by_default && request.method == "POST" &&
      has_default_controls(request.headers)) {
    RequestRecord record;
    if (co_await answer_from_memo(worker, request, out, record)) {
      record.latency = std::chrono::steady_clock::now() - started;
      record.overhead_applies = true;
      metrics_.record(record);
      write_ledger(record);
      metrics_.request_finished();
      co_return;
    }
  }
  Call call{request, match_route(request.method, request.target), {}};
  bool failed = false;
  try {
    switch (call.route.kind) {
      case RouteKind::llm:
        co_await handle_llm(worker, call, out);
        break;
      case RouteKind::models:
        co_await handle_models(worker, call, out);
        break;
      case RouteKind::embeddings:
        co_await handle_embeddings(worker, request, call.route, call.record, out);
        break;
      case RouteKind::passthrough:
        co_await handle_passthrough(worker.upstream, request, call.route, call.record, out);
        break;
      case RouteKind::healthz:
        co_await out.send(typed_response(200, kJson, R"({"status":"ok"})"));
        break;
      case RouteKind::metrics: {
        std::string text = metrics_.render();
        const auto refused = exchange_->cache().entry_refusals();
        Metrics::render_cache_refusals(text, refused.corrupt, refused.unsigned_entry,
                                       refused.wrong_mac);
        render_backend_errors(text, exchange_->cache());
        co_await out.send(typed_response(200, "text/plain; version=0.0.4", std::move(text)));
        break;
      }
      case RouteKind::costs:
        co_await handle_costs(call.request, out);
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
  write_ledger(call.record);
  metrics_.request_finished();
}

asio::awaitable<void> Gateway::handle_models(WorkerState& worker, Call& call, ResponseStream& out) {
  const Upstream& target = config_.upstreams[Provider::openai];
  const std::string credential = caller_credential(Provider::openai, call.request.headers, {});
  providers::HttpRequest http;
  http.method = "GET";
  http.url = target.base_url + "/models";
  http.headers = providers::request_headers(target, &call.request.headers, credential);
  OutgoingResponse response;
  bool unreachable = false;
  try {
    providers::HttpResponse answer = co_await worker.upstream.send(std::move(http));
    response.status = answer.status;
    response.body = std::move(answer.body);
    const std::string type = answer.header("content-type");
    response.headers.emplace_back("content-type", type.empty() ? std::string(kJson) : type);
  } catch (const providers::TransportError& e) {
    response = forwarding_failure(metrics_, Provider::openai, e);
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

}  // namespace llm_caching::gateway

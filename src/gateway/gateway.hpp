// The gateway's core: thin routes over the exchange. The server (server.hpp) parses HTTP and
// calls Gateway::handle for each request; everything here is independent of the HTTP library.
#pragma once

#include "core/log_throttle.hpp"
#include "exchange/exchange.hpp"
#include "gateway/controls.hpp"
#include "gateway/http_types.hpp"
#include "gateway/metrics.hpp"
#include "gateway/stale.hpp"
#include "gateway/upstream.hpp"
#include "llm_caching/budget.hpp"
#include "providers/http_client.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace llm_caching::gateway {

struct WorkerState;  // worker_state.hpp

/// How many models without a price a gateway names in its warnings (once each); past them, one
/// line says the rest go unnamed. The names come from callers.
inline constexpr std::size_t kUnpricedModelsNamed = 256;

struct GatewayConfig {
  /// The public endpoints by default; `llm-caching serve` starts from Upstreams::from_environment.
  Upstreams upstreams;
  /// Budgets (serve --budget, --soft-budget; docs/COSTS.md): by x-llm-task, x-llm-user (else
  /// the caller's key scope), x-llm-tags and x-llm-namespace.
  std::vector<Budget> budgets;
  /// Share cache entries across callers' keys. Default: partitioned by a hash of the key.
  bool share_across_keys = false;
  /// Serve models missing from the price table, costed 0 (counted and warned about once per
  /// model). When false they are refused with 400 before any upstream call.
  bool allow_unpriced = true;
  std::chrono::milliseconds default_ttl{std::chrono::hours(24 * 15)};
  /// The mode of requests whose headers choose none (x-llm-cache, Cache-Control): --mode.
  CacheMode default_mode = CacheMode::use;
  /// The stale windows of every request that does not set its own (--stale-while-revalidate,
  /// --stale-if-error; 0 = off). Passed to each request, they also keep what it stores in the L2
  /// for its TTL plus the larger window, so a later request that asks for a window finds it.
  StaleWindows stale_defaults;
  core::RetryOptions retry{std::chrono::milliseconds(1000), std::chrono::milliseconds(10000),
                           std::chrono::milliseconds(60000)};
  /// The most a caller may ask for with x-llm-max-wait-ms (a larger value is cut to this): the
  /// retry budget is the gateway's time and upstream quota, not the caller's to spend.
  std::chrono::milliseconds max_wait_cap{120000};
  /// Refuse callers that send no credential (401) instead of serving them from the keyless
  /// partition (which no keyed caller reads).
  bool require_key = false;
  /// Ask OpenAI streams for the final usage chunk (stream_options.include_usage) so streamed
  /// misses are costed; the key ignores stream_options, so this changes no key.
  bool openai_stream_usage = true;
  /// Answer a repeat of a recent plain hit from a per-thread memo of prepared responses
  /// (hit_memo.hpp), after checking the cache still holds that entry. Worth it only with an L1:
  /// without one the check reads the L2.
  bool memoize_hits = true;
};

class Gateway {
 public:
  Gateway(GatewayConfig config, std::shared_ptr<exchange::Exchange> exchange);

  /// Answers one request on `out`, for the worker whose state `worker` is. Never throws for
  /// anything a client sends.
  boost::asio::awaitable<void> handle(WorkerState& worker, const IncomingRequest& request,
                                      ResponseStream& out);

  Metrics& metrics() noexcept { return metrics_; }
  const GatewayConfig& config() const noexcept { return config_; }

 private:
  struct Call;
  /// Answers a repeat of a recent hit from the worker's HitMemo; false: not answered (nothing
  /// was sent, the full path follows).
  boost::asio::awaitable<bool> answer_from_memo(WorkerState& worker, const IncomingRequest& request,
                                                ResponseStream& out, RequestRecord& record);
  boost::asio::awaitable<void> handle_llm(WorkerState& worker, Call& call, ResponseStream& out);
  boost::asio::awaitable<void> handle_models(WorkerState& worker, Call& call, ResponseStream& out);
  /// Embeddings (OpenAI, Gemini), cached per input (route_embeddings.cpp).
  boost::asio::awaitable<void> handle_embeddings(WorkerState& worker,
                                                 const IncomingRequest& request, const Route& route,
                                                 RequestRecord& record, ResponseStream& out);
  /// Forwards a request on a path the gateway does not cache, as it is (passthrough.cpp).
  boost::asio::awaitable<void> handle_passthrough(providers::HttpClient& upstream,
                                                  const IncomingRequest& request, Route& route,
                                                  RequestRecord& record, ResponseStream& out);
  void warn_unpriced(const std::string& model);
  /// GET /costs?since=7d&until=..&by=task: the ledger's report as JSON (route_costs.cpp).
  boost::asio::awaitable<void> handle_costs(const IncomingRequest& request, ResponseStream& out);
  /// Hands a finished provider-route request's ledger record to the exchange's writer.
  void write_ledger(RequestRecord& record);

  /// The upstream's part of the key scope (providers::cache_scope, worked out once): two
  /// upstreams serving a model of the same name may answer differently; empty for the public
  /// service, so library and gateway keys agree there too.
  std::string_view endpoint_scope(Provider provider) const noexcept {
    return endpoint_scopes_[static_cast<std::size_t>(provider)];
  }

  GatewayConfig config_;
  std::array<std::string, 3> endpoint_scopes_;
  std::shared_ptr<exchange::Exchange> exchange_;
  Metrics metrics_;
  /// Which unpriced models were named in a warning: a bounded set, as the names are the callers'.
  core::LogOncePerName unpriced_warned_{kUnpricedModelsNamed};
};

}  // namespace llm_caching::gateway

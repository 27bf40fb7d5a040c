// What RunOptions set on an exchange request: shared by cached_agent_run and cached_http_call.
#include "agent/run.hpp"

#include "exchange/exchange.hpp"
#include "llm_caching/agent.hpp"
#include "llm_caching/runtime.hpp"
#include "providers/http_model.hpp"

namespace llm_caching::agent {

CacheOptions cache_options_of(const RunOptions& options) {
  CacheOptions cache_options;
  cache_options.url = options.cache_url.empty() ? options.redis_url : options.cache_url;
  cache_options.strict = options.strict_cache;
  return cache_options;
}

void apply_run_options(exchange::ExchangeRequest& request, const RunOptions& options,
                       const RuntimeOptions& defaults, std::shared_ptr<Model> model,
                       const CostTable& overrides) {
  request.namespace_ = options.namespace_;
  // Different servers may answer the same model id differently: key by endpoint (DESIGN §3).
  if (const auto* http_model = dynamic_cast<const providers::HttpModel*>(model.get())) {
    request.scope = providers::key_scope(http_model->endpoint());
  }
  request.mode = options.mode.value_or(defaults.mode);
  request.coalesce = options.coalesce;
  // Every call passes the windows in force (its own, else the runtime's), so what it stores is
  // kept for its TTL plus the larger one: a later call that asks for a window finds it.
  request.stale_while_revalidate =
      options.stale_while_revalidate.value_or(defaults.stale_while_revalidate);
  request.stale_if_error = options.stale_if_error.value_or(defaults.stale_if_error);
  request.refresh_model = std::move(model);
  request.ttl = options.ttl;
  request.retry.initial_wait = options.initial_wait;
  request.retry.max_wait = options.max_wait;
  request.overrides = options.custom_costs.empty() ? nullptr : &overrides;
}

}  // namespace llm_caching::agent

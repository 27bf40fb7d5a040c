// A repeat of a recent plain hit answered from this worker's memo of prepared responses
// (hit_memo.hpp), once the tiers confirm the entry it was prepared from is still the one they
// hold; anything else goes the full way (routes.cpp).
#include "gateway/gateway.hpp"

#include "gateway/controls.hpp"
#include "gateway/hit_memo.hpp"
#include "gateway/ledger_record.hpp"
#include "gateway/worker_state.hpp"

namespace llm_caching::gateway {

namespace asio = boost::asio;

asio::awaitable<bool> Gateway::answer_from_memo(WorkerState& worker, const IncomingRequest& request,
                                                ResponseStream& out, RequestRecord& record) {
  const HitMemo::HitPtr hit = worker.hits.find(request.target, request.body);
  if (!hit) co_return false;
  // The caller's scope (its key's one-way hash). Valid until the worker's next request asks.
  const auto caller_scope = [&]() -> const std::string& {
    const std::string query_key = hit->provider == Provider::gemini
                                      ? match_route(request.method, request.target).query_key
                                      : std::string();
    return worker.scopes(caller_identity(hit->provider, request.headers, query_key));
  };
  if (!config_.share_across_keys && caller_scope() != hit->scope) co_return false;
  const auto remembered = hit->entry.lock();
  if (!remembered) co_return false;
  // The tiers decide: only the very entry the response was prepared from may be served (an L1
  // hit completes without suspending). Any trouble: the full path handles it.
  cache::TieredCache::EntryPtr current;
  try {
    current = co_await exchange_->cache().get(hit->storage_key, exchange::system_now_ms());
  } catch (const std::exception&) {
    co_return false;
  }
  if (current != remembered) co_return false;
  record.llm = true;
  record.provider = hit->provider;
  record.outcome = Outcome::hit;
  record.status = 200;
  record.avoided_nano_usd = hit->avoided_nano_usd;
  record.unpriced = !hit->priced;
  if (exchange_->ledger() != nullptr) {
    // Unless keys share answers, the check above found the caller's scope equal to the hit's:
    // the tenant is that, not computed again.
    record.ledger = ledger_request(request, hit->provider, remembered->model,
                                   namespace_of_key(hit->storage_key),
                                   config_.share_across_keys ? caller_scope() : hit->scope);
    ledger_memo_hit(*record.ledger, *remembered, hit->avoided_nano_usd);
  }
  co_await out.send_prepared(hit->response);
  co_return true;
}

}  // namespace llm_caching::gateway

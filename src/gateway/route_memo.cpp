// A repeat of a recent plain hit answered from this worker's memo of prepared responses
// (hit_memo.hpp), once the tiers confirm the entry it was prepared from is still the one they
// hold; anything else goes the full way (routes.cpp).
#include "gateway/gateway.hpp"

#include "gateway/controls.hpp"
#include "gateway/hit_memo.hpp"
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
  if (exchange_->ledger() != nullptr && hit->ledger) {
    // A memoized request has no x-llm-* header: this call's record is the one the memo kept,
    // for the caller it was memoized from. Unless keys share answers, the check above found this
    // caller's scope to be that one: the writer copies or folds the memo's record.
    if (config_.share_across_keys) {
      record.ledger = *hit->ledger;
      record.ledger->tenant = caller_scope();
    } else {
      record.ledger_like = std::shared_ptr<const core::LedgerRecord>(hit, &*hit->ledger);
    }
  }
  co_await out.send_prepared(hit->response);
  co_return true;
}

}  // namespace llm_caching::gateway

// What one server worker keeps across the requests it serves: its upstream connections and its
// memos. Owned by the worker and used only on its thread, so nothing here is locked, and two
// gateways in one process (tests) never see each other's memos.
#pragma once

#include "gateway/controls.hpp"
#include "gateway/hit_memo.hpp"
#include "providers/http_client.hpp"

namespace llm_caching::gateway {

struct WorkerState {
  explicit WorkerState(providers::HttpClient& client) : upstream(client) {}

  /// The worker's keep-alive connections to the upstreams (no thread hop on a miss).
  providers::HttpClient& upstream;
  /// Recent plain hits, answered again without parsing the body (hit_memo.hpp).
  HitMemo hits;
  /// Callers repeat their key on every request: the last key's tenant scope.
  TenantScopeMemo scopes;
};

}  // namespace llm_caching::gateway

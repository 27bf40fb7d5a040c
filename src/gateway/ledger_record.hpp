// The ledger record of a provider-route request (docs/COSTS.md): who and what from the request
// (x-llm-task, x-llm-user, x-llm-tags, namespace, model), then how it ended. Pure; the routes
// fill RequestRecord::ledger with it and Gateway::handle hands it to the exchange's writer.
#pragma once

#include "core/ledger.hpp"
#include "exchange/exchange.hpp"
#include "gateway/http_types.hpp"
#include "llm_caching/cache_key.hpp"

#include <string_view>

namespace llm_caching::gateway {

/// The request's part. tenant_scope: the caller's key scope (used when x-llm-user is absent).
/// Header values are kept printable and short (at most 128 bytes for the user, 256 for tags).
core::LedgerRecord ledger_request(const IncomingRequest& request, Provider provider,
                                  std::string_view model, std::string_view namespace_,
                                  std::string_view tenant_scope);
// The outcome, tokens and money of a finished exchange: exchange::record_result. A hit answered
// from the worker's memo reuses the record of the call it was memoized from (HitMemo::Hit).

}  // namespace llm_caching::gateway

// "Why did this replay miss?" (docs/TESTING.md): the words a replay_only miss's CacheMissError
// adds after the key: the stored entry that cannot be read, or the nearest recorded entry of the
// namespace and a field-by-field diff of the request (core/request_diff.hpp).
#pragma once

#include "cache/tiered_cache.hpp"
#include "exchange/exchange.hpp"

#include <boost/asio/awaitable.hpp>

#include <string>

namespace llm_caching::exchange {

/// What to append to the miss's message (starting with "; " or a new line), "" when there is
/// nothing to say. Reads at most `bounds` of the L2 (TieredCache::recorded_neighbours); looks
/// only at entries of the same namespace, provider, API and scope, preferring the same model.
/// Throws only std::bad_alloc.
boost::asio::awaitable<std::string> explain_replay_miss(
    cache::TieredCache& cache, const ExchangeRequest& request, std::string storage_key,
    cache::TieredCache::NeighbourBounds bounds = {});

}  // namespace llm_caching::exchange

// Embeddings cached per input (docs/GATEWAY.md, Embeddings): the one path of the gateway's
// embeddings routes and the library's cached_embed. Each input of a batch is its own entry, keyed
// as a request for that input alone (providers/embeddings_wire.hpp), so a batch of 100 inputs of
// which 90 are cached sends only the 10 others upstream, in one request, and is answered with the
// 100 embeddings in order. Concurrent callers missing on the same input share one upstream request
// for it: in a process, the exchange's flights (one per input's key); across processes on one
// L2, the chat path's cross-process lock per input's key (embeddings_flights.hpp). Cost: what was
// sent, shared among the fresh inputs by their byte length (each entry records its share);
// avoided: the cached inputs' shares. Each entry keeps the request for its input as keyed (entry
// format 3), so a replay_only miss names the nearest recorded input and what differs.
#pragma once

#include "exchange/exchange.hpp"
#include "providers/embeddings_wire.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::exchange {

struct EmbeddingsRequest {
  providers::embeddings::Request split;
  /// What the upstream request for the missing inputs runs with: scope, namespace, mode, ttl,
  /// retry, prices, budgets, caller_gone, coalesce (native is filled here; the mode is the
  /// inputs': the batch itself is never cached whole).
  ExchangeRequest settings;
};

/// Where the embedding of one input came from.
struct EmbeddedInput {
  std::string storage_key;
  /// Set when it came from the cache or from another caller's flight; else `fresh` holds it.
  std::shared_ptr<const core::CacheEntry> entry;
  std::string fresh;
  bool coalesced = false;  ///< another caller's request fetched it
  /// The embedding's JSON text (RFC 8785), not copied: an answer of 100 embeddings is megabytes.
  std::string_view embedding() const noexcept {
    return entry ? std::string_view(entry->response) : std::string_view(fresh);
  }
};

struct EmbeddingsResult {
  std::vector<EmbeddedInput> inputs;  ///< in the request's order
  std::size_t cached = 0;             ///< inputs found in the cache
  std::size_t coalesced = 0;          ///< inputs another caller's flight fetched
  std::size_t sent = 0;               ///< inputs this call sent upstream
  std::string model;                  ///< as the upstream named it (else as requested)
  std::int64_t sent_tokens = 0;       ///< the upstream's prompt tokens for what was sent
  std::int64_t cost_nano_usd = 0;     ///< billed: what was sent
  std::int64_t avoided_nano_usd = 0;  ///< the shares of the inputs this call did not send
  int attempts = 0;
  bool priced = true;
};

/// Throws what Exchange::run throws (ConfigurationError, RateLimitError, ProviderError, ...),
/// CacheMissError when the mode is replay_only and an input is not cached (naming the nearest
/// recorded input of the namespace and its field diff), and ProviderError
/// (status 502, error_type "bad_answer") when the upstream's answer does not fit the inputs.
boost::asio::awaitable<EmbeddingsResult> run_embeddings(Exchange& exchange, Model& model,
                                                        EmbeddingsRequest request);

/// The storage keys of a request's inputs, in order (what run_embeddings reads and writes).
std::vector<std::string> embeddings_keys(const providers::embeddings::Request& split,
                                         const std::string& namespace_, const std::string& scope);

}  // namespace llm_caching::exchange

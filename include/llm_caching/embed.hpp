// cached_embed: embeddings through the cache, per input (docs/LIBRARY.md, Embeddings). Each text
// is its own entry, keyed as the gateway keys a request for that input alone, so of 100 texts of
// which 90 are cached only the 10 others go to the provider (in one request), and a text the
// gateway recorded is a hit here. The options are cached_agent_run's (RunOptions).
#pragma once

#include "llm_caching/agent.hpp"
#include "llm_caching/usage.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching {

/// What to call: the embedding model and where it is served.
struct Embedder {
  /// "provider:model": openai:text-embedding-3-small, google-gla:gemini-embedding-001 (also
  /// gemini:...), and the OpenAI-compatible hosts' prefixes (ollama:, vllm:, ...).
  std::string model;
  /// OpenAI's "dimensions" (part of the key); unset: the model's own.
  std::optional<std::int64_t> dimensions;
  /// As Agent's: overrides the provider's base URL (else the *_BASE_URL variable) and API key.
  std::string base_url;
  std::string api_key;
};

struct EmbedResult {
  std::vector<std::vector<double>> embeddings;  ///< one per text, in the texts' order
  std::size_t cached = 0;                       ///< texts answered from the cache
  std::size_t coalesced = 0;  ///< texts another concurrent call fetched (here or in a process
                              ///< sharing the cache)
  std::size_t sent = 0;       ///< texts this call sent to the provider
  Usage usage;                ///< the provider's tokens for what was sent (requests: 0 or 1+)
  std::string model;          ///< as the Embedder named it
  double cost = 0.0;          ///< dollars billed: what was sent
  std::int64_t cost_nano_usd = 0;
  double avoided_cost = 0.0;  ///< what the cached texts cost when they were sent
  std::int64_t avoided_cost_nano_usd = 0;
  std::vector<std::string> cache_keys;  ///< one storage key per text
  int attempts = 0;                     ///< provider calls made, retries included
};

/// Embeds `texts` through the cache. The options apply as in cached_agent_run: cache_url, mode
/// (replay_only throws CacheMissError when a text is not cached, naming the nearest recorded
/// text and what differs), namespace_, ttl, tenant, tags, budgets, ledger (one record per call),
/// expense_recorder, max_wait, custom_costs, coalesce, model_client, runtime; the transcript,
/// message converter and stale windows do not apply (docs/SINGLE_FLIGHT.md, "Embeddings").
/// Throws ConfigurationError (bad model, no key, no price, no texts), RateLimitError,
/// BudgetExceededError, CacheError, ProviderError. Name the options first (agent.hpp: g++ 12).
boost::asio::awaitable<EmbedResult> cached_embed(const Embedder& embedder,
                                                 const std::vector<std::string>& texts,
                                                 std::string_view task_name,
                                                 const RunOptions& options = default_run_options());
/// The same on its own io_context; safe to call from several threads at once.
EmbedResult cached_embed_sync(const Embedder& embedder, const std::vector<std::string>& texts,
                              std::string_view task_name, RunOptions options = {});

}  // namespace llm_caching

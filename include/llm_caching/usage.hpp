// Token usage normalised across providers (DESIGN §6): the provider codec, not the cost code,
// knows how each provider counts.
#pragma once

#include <cstdint>

namespace llm_caching {

struct Usage {
  /// Input tokens billed at the plain input rate: excludes cache writes and cache reads.
  std::int64_t input_tokens = 0;
  /// Output tokens, reasoning tokens included.
  std::int64_t output_tokens = 0;
  /// Input tokens written to the provider's prompt cache (Anthropic cache_creation_input_tokens).
  std::int64_t cache_write_tokens = 0;
  /// Input tokens read from the provider's prompt cache (OpenAI cached_tokens, Anthropic
  /// cache_read_input_tokens, Gemini cachedContentTokenCount).
  std::int64_t cache_read_tokens = 0;
  /// Provider requests made (0 on a cache hit).
  std::int64_t requests = 0;
  /// Of cache_write_tokens, those written with a one-hour lifetime (Anthropic
  /// cache_creation.ephemeral_1h_input_tokens), billed at the one-hour write rate. Used to price
  /// the call; entries and ledger records keep the resulting cost, not this split. Last, so that
  /// positional initialisers of the fields above keep their meaning.
  std::int64_t cache_write_1h_tokens = 0;

  std::int64_t total_input_tokens() const noexcept {
    return input_tokens + cache_write_tokens + cache_read_tokens;
  }
  friend bool operator==(const Usage&, const Usage&) = default;
};

}  // namespace llm_caching

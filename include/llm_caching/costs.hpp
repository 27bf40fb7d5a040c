// Prices and cost arithmetic (DESIGN §6). Money is integer nano-USD inside; dollars at the edge.
#pragma once

#include "llm_caching/usage.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching {

/// Per-million-token rates in USD, the seed's four fields. Tiered prices are optional.
struct ModelCosts {
  double cost_per_million_input_tokens = 0.0;
  double cost_per_million_output_tokens = 0.0;
  /// Provider prompt-cache writes (Anthropic cache_creation_input_tokens; its 5-minute writes).
  double cost_per_million_caching_input_tokens = 0.0;
  /// Provider prompt-cache reads.
  double cost_per_million_caching_hit_tokens = 0.0;

  /// Above this many total input tokens in one request, the `_above` rates apply (e.g. 200k).
  std::optional<std::int64_t> tier_threshold_tokens;
  std::optional<double> cost_per_million_input_tokens_above;
  std::optional<double> cost_per_million_output_tokens_above;
  std::optional<double> cost_per_million_caching_input_tokens_above;
  std::optional<double> cost_per_million_caching_hit_tokens_above;

  /// Where the price came from and when it was read (informational).
  std::string source;
  std::string as_of;

  // Last, so that positional initialisers of the fields above keep their meaning.
  /// One-hour prompt-cache writes (Usage::cache_write_1h_tokens); unset: the cache-write rate.
  std::optional<double> cost_per_million_caching_input_tokens_1h;
  /// Its rate above tier_threshold_tokens; unset: the one-hour rate.
  std::optional<double> cost_per_million_caching_input_tokens_1h_above;
};

/// A model id → costs table. Lookup: exact id, then without a provider prefix
/// ("openai:gpt-4o" / "openai/gpt-4o" → "gpt-4o"), then without a date suffix
/// ("gpt-4o-2024-08-06" → "gpt-4o", "claude-3-5-haiku-20241022" → "claude-3-5-haiku").
class CostTable {
 public:
  CostTable() = default;
  explicit CostTable(std::map<std::string, ModelCosts, std::less<>> entries);

  /// The table compiled into the library (data/model_costs.json).
  static const CostTable& defaults();
  /// Reads LiteLLM's model_prices_and_context_window.json format; throws ConfigurationError
  /// naming the file and the problem.
  static CostTable from_litellm_json(std::string_view json_text);
  /// Same, and appends to `skipped_models` the keys of entries that were not usable prices
  /// (no per-token input/output cost, such as image models, or malformed values).
  static CostTable from_litellm_json(std::string_view json_text,
                                     std::vector<std::string>& skipped_models);
  static CostTable from_litellm_file(const std::string& path);
  /// Reads this project's own format (data/model_costs.json).
  static CostTable from_json(std::string_view json_text);

  const ModelCosts* find(std::string_view model) const;
  /// Like find, but throws ConfigurationError naming the model and how to add a price.
  const ModelCosts& at(std::string_view model) const;

  void set(std::string model, ModelCosts costs);
  /// Entries of `overrides` replace ours.
  void merge(const CostTable& overrides);
  std::size_t size() const noexcept { return entries_.size(); }
  const std::map<std::string, ModelCosts, std::less<>>& entries() const noexcept {
    return entries_;
  }

 private:
  std::map<std::string, ModelCosts, std::less<>> entries_;
};

/// Cost of one call in nano-USD. Components are summed exactly in pico-USD (each rate rounded to
/// a whole pico-USD per token), then rounded half up once. Throws ConfigurationError on negative
/// token counts, invalid rates, or a cost beyond int64 nano-USD.
std::int64_t cost_nano_usd(const ModelCosts& costs, const Usage& usage);
double nano_usd_to_dollars(std::int64_t nano) noexcept;
/// Rounds to the nearest nano-USD; NaN gives 0, out-of-range values saturate.
std::int64_t dollars_to_nano_usd(double dollars) noexcept;

}  // namespace llm_caching

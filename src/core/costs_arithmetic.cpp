// The cost of one call (DESIGN §6).
//
// Money: every per-million USD rate becomes an integer number of pico-USD per token
// (rate * 1e6, rounded to nearest), so a request's cost is an exact integer sum; it is rounded
// once, half up, to nano-USD. Rates finer than 1e-6 USD per million tokens are therefore rounded.
#include "llm_caching/costs.hpp"

#include "llm_caching/errors.hpp"

#include "core/costs_rates.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <string>

namespace llm_caching {
namespace {

// GCC/Clang extension; `__extension__` keeps -Wpedantic quiet about it.
__extension__ typedef __int128 Int128;

constexpr std::int64_t kPicoPerNano = 1000;

using core::check_rate;

struct PicoRates {  // pico-USD per token
  std::int64_t input, output, cache_write, cache_read, cache_write_1h;
};

std::int64_t pico_per_token(std::string_view field, double usd_per_million) {
  check_rate("cost_nano_usd", field, usd_per_million);
  return std::llround(usd_per_million * 1e6);
}

PicoRates applicable_rates(const ModelCosts& costs, Int128 total_input_tokens) {
  const bool above =
      costs.tier_threshold_tokens && total_input_tokens > *costs.tier_threshold_tokens;
  const auto pick = [above](std::string_view field, double base,
                            const std::optional<double>& tier) {
    return above && tier ? pico_per_token(std::string(field) + "_above", *tier)
                         : pico_per_token(field, base);
  };
  // One-hour writes: their own rate (its tier rate above the threshold) when the price has one,
  // else the cache-write rate that applies.
  const std::int64_t cache_write = pick("cache_write", costs.cost_per_million_caching_input_tokens,
                                        costs.cost_per_million_caching_input_tokens_above);
  std::int64_t cache_write_1h = cache_write;
  if (costs.cost_per_million_caching_input_tokens_1h) {
    cache_write_1h = pick("cache_write_1h", *costs.cost_per_million_caching_input_tokens_1h,
                          costs.cost_per_million_caching_input_tokens_1h_above);
  }
  return {
      pick("input", costs.cost_per_million_input_tokens, costs.cost_per_million_input_tokens_above),
      pick("output", costs.cost_per_million_output_tokens,
           costs.cost_per_million_output_tokens_above),
      cache_write,
      pick("cache_read", costs.cost_per_million_caching_hit_tokens,
           costs.cost_per_million_caching_hit_tokens_above),
      cache_write_1h};
}

void check_token_count(std::string_view field, std::int64_t tokens) {
  if (tokens < 0) {
    throw ConfigurationError(
        fmt::format("cannot price a negative token count: {} = {}", field, tokens));
  }
}

}  // namespace

std::int64_t cost_nano_usd(const ModelCosts& costs, const Usage& usage) {
  check_token_count("input_tokens", usage.input_tokens);
  check_token_count("output_tokens", usage.output_tokens);
  check_token_count("cache_write_tokens", usage.cache_write_tokens);
  check_token_count("cache_read_tokens", usage.cache_read_tokens);
  check_token_count("cache_write_1h_tokens", usage.cache_write_1h_tokens);
  if (usage.cache_write_1h_tokens > usage.cache_write_tokens) {
    throw ConfigurationError(fmt::format(
        "cannot price cache_write_1h_tokens = {} above cache_write_tokens = {} (a part of them)",
        usage.cache_write_1h_tokens, usage.cache_write_tokens));
  }
  // Summed in 128 bits: Usage::total_input_tokens() could overflow int64 on absurd counts.
  const Int128 total_input =
      Int128{usage.input_tokens} + usage.cache_write_tokens + usage.cache_read_tokens;
  const PicoRates rates = applicable_rates(costs, total_input);
  // Each product is below 1e15 * 2^63 < 2^113, so the sum of five cannot overflow.
  const std::int64_t five_minute_writes = usage.cache_write_tokens - usage.cache_write_1h_tokens;
  const Int128 pico = Int128{rates.input} * usage.input_tokens +
                      Int128{rates.output} * usage.output_tokens +
                      Int128{rates.cache_write} * five_minute_writes +
                      Int128{rates.cache_write_1h} * usage.cache_write_1h_tokens +
                      Int128{rates.cache_read} * usage.cache_read_tokens;
  const Int128 nano = (pico + kPicoPerNano / 2) / kPicoPerNano;  // half up; pico >= 0
  if (nano > std::numeric_limits<std::int64_t>::max()) {
    throw ConfigurationError("cost exceeds the representable range (9.2e9 USD)");
  }
  return static_cast<std::int64_t>(nano);
}

double nano_usd_to_dollars(std::int64_t nano) noexcept {
  return static_cast<double>(nano) / 1e9;
}

std::int64_t dollars_to_nano_usd(double dollars) noexcept {
  // noexcept: NaN maps to 0 and out-of-range values saturate instead of throwing.
  if (std::isnan(dollars)) return 0;
  const double nano = std::round(dollars * 1e9);
  constexpr double kTwoTo63 = 9223372036854775808.0;
  if (nano >= kTwoTo63) return std::numeric_limits<std::int64_t>::max();
  if (nano <= -kTwoTo63) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(nano);
}

}  // namespace llm_caching

// What the cost table's parts share (costs.cpp: the table, its lookup and our own price format;
// costs_litellm.cpp: LiteLLM's price file; costs_arithmetic.cpp: the cost of a call): the bound
// and checks of a rate, and the JSON reading both price formats start with. Internal to core.
#pragma once

#include "llm_caching/costs.hpp"

#include <boost/json/value.hpp>

#include <string>
#include <string_view>

namespace llm_caching::core {

/// No real price comes near this; the bound keeps rate * 1e6 well inside int64 pico-USD.
inline constexpr double kMaxRatePerMillion = 1e9;

bool is_valid_rate(double rate);

/// Throws ConfigurationError unless 0 <= rate <= kMaxRatePerMillion. `subject` says whose price
/// it is, e.g. "price for model 'gpt-4o'".
void check_rate(std::string_view subject, std::string_view field, double rate);

/// "price for model '<model, printable>'".
std::string model_subject(std::string_view model);

/// Checks every rate of `costs`, and that the tier threshold and the *_above rates go together.
void validate_costs(std::string_view model, const ModelCosts& costs);

/// Parses a price file's text; ConfigurationError "<source_label>: malformed JSON at offset N".
boost::json::value parse_price_json(std::string_view text, std::string_view source_label);

/// A price format's name for one of ModelCosts' four base rates.
struct RateField {
  std::string_view name;
  double ModelCosts::*member;
};

}  // namespace llm_caching::core

// LiteLLM's model_prices_and_context_window.json as a CostTable (DESIGN §6), from text or from
// a file (the one piece of file I/O in src/core).
#include "llm_caching/costs.hpp"

#include "llm_caching/errors.hpp"

#include "core/costs_rates.hpp"
#include "core/printable.hpp"

#include <fmt/format.h>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

namespace llm_caching {
namespace {

namespace json = boost::json;

using core::is_valid_rate;
using core::printable;
using core::RateField;

constexpr std::array<RateField, 4> kLiteLlmRateFields{{
    {"input_cost_per_token", &ModelCosts::cost_per_million_input_tokens},
    {"output_cost_per_token", &ModelCosts::cost_per_million_output_tokens},
    {"cache_creation_input_token_cost", &ModelCosts::cost_per_million_caching_input_tokens},
    {"cache_read_input_token_cost", &ModelCosts::cost_per_million_caching_hit_tokens},
}};
constexpr std::array<std::optional<double> ModelCosts::*, 4> kTierMembers{
    &ModelCosts::cost_per_million_input_tokens_above,
    &ModelCosts::cost_per_million_output_tokens_above,
    &ModelCosts::cost_per_million_caching_input_tokens_above,
    &ModelCosts::cost_per_million_caching_hit_tokens_above,
};

// Providers whose LiteLLM key "<provider>/<model>" names the provider's own model id, so the
// bare id may stand for it ("gemini/gemini-2.5-pro" -> "gemini-2.5-pro"). Resellers (azure,
// bedrock, openrouter, ...) are left out: their prices can differ from the first party's.
constexpr std::array<std::string_view, 7> kFirstPartyProviders = {
    "openai", "anthropic", "gemini", "deepseek", "groq", "mistral", "xai"};

// Per-token USD -> per-million USD, rounded to 1e-9 per million so that 1.5e-07 gives exactly
// the double 0.15 (1.5e-07 * 1e6 alone gives 0.15000000000000002).
std::optional<double> per_million_from_per_token(const json::value& value) {
  if (!value.is_number()) return std::nullopt;
  const double per_token = value.to_number<double>();
  const double per_million = std::round(per_token * 1e15) / 1e9;
  if (!is_valid_rate(per_million)) return std::nullopt;
  return per_million;
}

// "input_cost_per_token_above_200k_tokens" -> {0, 200000}. Other suffixes such as
// "_above_1hr" (one-hour cache writes, read by read_litellm_hourly_writes) give nullopt.
std::optional<std::pair<std::size_t, std::int64_t>> tier_field(std::string_view key) {
  for (std::size_t i = 0; i < kLiteLlmRateFields.size(); ++i) {
    const std::string_view base = kLiteLlmRateFields[i].name;
    constexpr std::string_view kMid = "_above_", kEnd = "k_tokens";
    if (key.size() <= base.size() + kMid.size() + kEnd.size() || key.substr(0, base.size()) != base)
      continue;
    std::string_view rest = key.substr(base.size());
    if (rest.substr(0, kMid.size()) != kMid || rest.substr(rest.size() - kEnd.size()) != kEnd)
      continue;
    const std::string_view digits =
        rest.substr(kMid.size(), rest.size() - kMid.size() - kEnd.size());
    if (digits.empty() || digits.size() > 6 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    return std::pair{i, std::stoll(std::string(digits)) * 1000};
  }
  return std::nullopt;
}

// The lowest token tier in the entry, if any. An entry with several tiers (rare) keeps only
// the lowest; requests above a higher tier are then billed at the lowest tier's rates.
// Returns false if a tier rate is malformed.
bool read_litellm_tier(const json::object& object, ModelCosts& costs) {
  std::optional<std::int64_t> lowest;
  for (const auto& [key, value] : object) {
    if (const auto tier = tier_field(key); tier && (!lowest || tier->second < *lowest)) {
      lowest = tier->second;
    }
  }
  if (!lowest) return true;
  for (const auto& [key, value] : object) {
    const auto tier = tier_field(key);
    if (!tier || tier->second != *lowest || value.is_null()) continue;
    const auto rate = per_million_from_per_token(value);
    if (!rate) return false;
    costs.*kTierMembers[tier->first] = *rate;
  }
  if (std::none_of(kTierMembers.begin(), kTierMembers.end(),
                   [&costs](auto member) { return (costs.*member).has_value(); })) {
    return true;  // only null tier rates: no tier
  }
  costs.tier_threshold_tokens = *lowest;
  return true;
}

// One-hour cache writes: "cache_creation_input_token_cost_above_1hr", and its rate in the entry's
// token tier ("..._above_1hr_above_200k_tokens"). Returns false if one is malformed.
bool read_litellm_hourly_writes(const json::object& object, ModelCosts& costs) {
  constexpr std::string_view kHourly = "cache_creation_input_token_cost_above_1hr";
  const auto read = [&object](const std::string& key, std::optional<double>& member) {
    const json::value* value = object.if_contains(key);
    if (value == nullptr || value->is_null()) return true;
    member = per_million_from_per_token(*value);
    return member.has_value();
  };
  if (!read(std::string(kHourly), costs.cost_per_million_caching_input_tokens_1h)) return false;
  if (!costs.tier_threshold_tokens) return true;
  return read(fmt::format("{}_above_{}k_tokens", kHourly, *costs.tier_threshold_tokens / 1000),
              costs.cost_per_million_caching_input_tokens_1h_above);
}

// nullopt: the entry is not a usable per-token price (image models, malformed values).
std::optional<ModelCosts> litellm_entry(const json::value& value) {
  const json::object* object = value.if_object();
  if (object == nullptr) return std::nullopt;
  ModelCosts costs;
  for (std::size_t i = 0; i < kLiteLlmRateFields.size(); ++i) {
    const json::value* field = object->if_contains(kLiteLlmRateFields[i].name);
    const bool required = i < 2;  // input and output
    if (field == nullptr || field->is_null()) {
      if (required) return std::nullopt;
      // No cache price: cached tokens are billed as ordinary input.
      costs.*kLiteLlmRateFields[i].member = costs.cost_per_million_input_tokens;
      continue;
    }
    const auto rate = per_million_from_per_token(*field);
    if (!rate) return std::nullopt;
    costs.*kLiteLlmRateFields[i].member = *rate;
  }
  if (!read_litellm_tier(*object, costs) || !read_litellm_hourly_writes(*object, costs)) {
    return std::nullopt;
  }
  costs.source = "LiteLLM price file";
  if (const auto* provider = object->if_contains("litellm_provider");
      provider && provider->is_string()) {
    costs.source += fmt::format(" (litellm_provider {})", printable(provider->get_string()));
  }
  return costs;
}

std::optional<std::string_view> first_party_alias(std::string_view key, const json::value& value) {
  const auto slash = key.find('/');
  if (slash == std::string_view::npos || slash + 1 >= key.size()) return std::nullopt;
  const std::string_view prefix = key.substr(0, slash);
  const json::value* provider =
      value.is_object() ? value.get_object().if_contains("litellm_provider") : nullptr;
  if (provider == nullptr || !provider->is_string() || provider->get_string() != prefix ||
      std::find(kFirstPartyProviders.begin(), kFirstPartyProviders.end(), prefix) ==
          kFirstPartyProviders.end()) {
    return std::nullopt;
  }
  return key.substr(slash + 1);
}

CostTable parse_litellm(std::string_view json_text, std::string_view source_label,
                        std::vector<std::string>* skipped_models) {
  const json::value root = core::parse_price_json(json_text, source_label);
  const json::object* top = root.if_object();
  if (top == nullptr) {
    throw ConfigurationError(fmt::format("{}: top level must be a JSON object", source_label));
  }
  std::map<std::string, ModelCosts, std::less<>> entries;
  std::vector<std::pair<std::string, ModelCosts>> aliases;
  for (const auto& [key, value] : *top) {
    if (key == "sample_spec") continue;  // LiteLLM's documentation entry
    auto costs = litellm_entry(value);
    if (!costs) {
      if (skipped_models != nullptr) skipped_models->emplace_back(key);
      continue;
    }
    if (const auto alias = first_party_alias(key, value)) aliases.emplace_back(*alias, *costs);
    entries.insert_or_assign(std::string(key), std::move(*costs));
  }
  // Explicit keys win over aliases; among aliases the first in the file wins.
  for (auto& [alias, costs] : aliases) entries.try_emplace(std::move(alias), std::move(costs));
  return CostTable(std::move(entries));
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigurationError(fmt::format("cannot read LiteLLM price file '{}': {}", printable(path),
                                         std::strerror(errno)));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) {
    throw ConfigurationError(fmt::format("cannot read LiteLLM price file '{}'", printable(path)));
  }
  return std::move(content).str();
}

}  // namespace

CostTable CostTable::from_litellm_json(std::string_view json_text) {
  return parse_litellm(json_text, "LiteLLM price JSON", nullptr);
}

CostTable CostTable::from_litellm_json(std::string_view json_text,
                                       std::vector<std::string>& skipped_models) {
  return parse_litellm(json_text, "LiteLLM price JSON", &skipped_models);
}

CostTable CostTable::from_litellm_file(const std::string& path) {
  const std::string text = read_whole_file(path);
  return parse_litellm(text, fmt::format("LiteLLM price file '{}'", printable(path)), nullptr);
}

}  // namespace llm_caching

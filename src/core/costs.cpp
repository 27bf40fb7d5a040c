// Cost table, model lookup and exact cost arithmetic (DESIGN §6).
//
// Money: every per-million USD rate becomes an integer number of pico-USD per token
// (rate * 1e6, rounded to nearest), so a request's cost is an exact integer sum; it is rounded
// once, half up, to nano-USD. Rates finer than 1e-6 USD per million tokens are therefore rounded.
//
// I/O: src/core does no I/O, with one exception the public header promises: from_litellm_file
// reads the file it is given (nothing else here touches the file system or the network).
#include "llm_caching/costs.hpp"

#include "llm_caching/errors.hpp"

#include "core/printable.hpp"

#include <fmt/format.h>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>
#include <vector>

namespace llm_caching {

namespace detail {
// Generated at build time from data/model_costs.json by cmake/embed_text.cmake.
std::string_view default_costs_json();
}  // namespace detail

namespace {

namespace json = boost::json;

// GCC/Clang extension; `__extension__` keeps -Wpedantic quiet about it.
__extension__ typedef __int128 Int128;

// No real price comes near this; the bound keeps rate * 1e6 well inside int64 pico-USD.
constexpr double kMaxRatePerMillion = 1e9;
constexpr std::int64_t kPicoPerNano = 1000;

// Model names come from callers and files: keep them short and printable in messages.
using core::printable;

bool is_valid_rate(double rate) {
  return rate >= 0.0 && rate <= kMaxRatePerMillion;
}

// `subject` says whose price it is, e.g. "price for model 'gpt-4o'".
void check_rate(std::string_view subject, std::string_view field, double rate) {
  if (!is_valid_rate(rate)) {
    throw ConfigurationError(
        fmt::format("{}: {} must be between 0 and {} USD per million tokens, got {}", subject,
                    field, kMaxRatePerMillion, rate));
  }
}

std::string model_subject(std::string_view model) {
  return fmt::format("price for model '{}'", printable(model));
}

void validate_costs(std::string_view model, const ModelCosts& costs) {
  const std::string subject = model_subject(model);
  check_rate(subject, "input", costs.cost_per_million_input_tokens);
  check_rate(subject, "output", costs.cost_per_million_output_tokens);
  check_rate(subject, "cache_write", costs.cost_per_million_caching_input_tokens);
  check_rate(subject, "cache_read", costs.cost_per_million_caching_hit_tokens);
  const std::array<std::pair<const char*, const std::optional<double>*>, 4> tier_rates{{
      {"input_above", &costs.cost_per_million_input_tokens_above},
      {"output_above", &costs.cost_per_million_output_tokens_above},
      {"cache_write_above", &costs.cost_per_million_caching_input_tokens_above},
      {"cache_read_above", &costs.cost_per_million_caching_hit_tokens_above},
  }};
  bool any_tier_rate = false;
  for (const auto& [field, rate] : tier_rates) {
    if (rate->has_value()) {
      check_rate(subject, field, **rate);
      any_tier_rate = true;
    }
  }
  if (any_tier_rate != costs.tier_threshold_tokens.has_value()) {
    throw ConfigurationError(
        fmt::format("price for model '{}': tier_threshold_tokens and the *_above rates go together",
                    printable(model)));
  }
  if (costs.tier_threshold_tokens && *costs.tier_threshold_tokens < 0) {
    throw ConfigurationError(fmt::format(
        "price for model '{}': tier_threshold_tokens must not be negative", printable(model)));
  }
}

// ---- Lookup helpers -------------------------------------------------------------------------

bool is_prefix_char(char ch) {
  return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
}

// "openai:gpt-4o" -> "gpt-4o", "openrouter/openai/gpt-4o" -> "openai/gpt-4o". Only a word
// followed by ':' or '/' and then a letter counts, so "llama3:8b" or a fine-tune id's
// ":org::id" tail are not taken apart into something that could match a different price.
std::optional<std::string_view> without_provider_prefix(std::string_view model) {
  const auto pos = model.find_first_of(":/");
  if (pos == std::string_view::npos || pos == 0 || pos + 1 >= model.size()) return std::nullopt;
  const std::string_view prefix = model.substr(0, pos);
  if (!std::all_of(prefix.begin(), prefix.end(), is_prefix_char)) return std::nullopt;
  if (!std::isalpha(static_cast<unsigned char>(model[pos + 1]))) return std::nullopt;
  return model.substr(pos + 1);
}

// `pattern` is matched against the tail of `text`; 'D' stands for one ASCII digit.
bool ends_with_pattern(std::string_view text, std::string_view pattern) {
  if (text.size() <= pattern.size()) return false;  // something must remain before the suffix
  const std::string_view tail = text.substr(text.size() - pattern.size());
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const bool ok = pattern[i] == 'D' ? std::isdigit(static_cast<unsigned char>(tail[i])) != 0
                                      : tail[i] == pattern[i];
    if (!ok) return false;
  }
  return true;
}

// Date or version suffixes that name a snapshot of the same priced model:
// "-2024-08-06", "-20241022", "@20240620" (Vertex), "-latest" (alias), "-001" (Gemini).
// Four-digit "-MMDD" snapshots (gpt-3.5-turbo-1106) are not stripped: their prices differ.
std::optional<std::string_view> without_version_suffix(std::string_view model) {
  static constexpr std::array<std::string_view, 5> kPatterns = {"-DDDD-DD-DD", "-DDDDDDDD",
                                                                "@DDDDDDDD", "-latest", "-DDD"};
  for (std::string_view pattern : kPatterns) {
    if (ends_with_pattern(model, pattern)) return model.substr(0, model.size() - pattern.size());
  }
  return std::nullopt;
}

// ---- JSON helpers ---------------------------------------------------------------------------

json::value parse_json(std::string_view text, std::string_view source_label) {
  json::stream_parser parser;
  json::error_code ec;
  const std::size_t consumed = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    throw ConfigurationError(
        fmt::format("{}: malformed JSON at offset {}: {}", source_label, consumed, ec.message()));
  }
  return parser.release();
}

}  // namespace

// ---- CostTable: construction and lookup -----------------------------------------------------

CostTable::CostTable(std::map<std::string, ModelCosts, std::less<>> entries)
    : entries_(std::move(entries)) {
  for (const auto& [model, costs] : entries_) validate_costs(model, costs);
}

const ModelCosts* CostTable::find(std::string_view model) const {
  // The id itself, then each successively shorter provider-stripped form.
  constexpr std::size_t kMaxForms = 8;
  std::array<std::string_view, kMaxForms> forms{};
  std::size_t form_count = 0;
  forms[form_count++] = model;
  while (form_count < kMaxForms) {
    const auto shorter = without_provider_prefix(forms[form_count - 1]);
    if (!shorter) break;
    forms[form_count++] = *shorter;
  }
  const auto lookup = [this](std::string_view id) -> const ModelCosts* {
    const auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : &it->second;
  };
  for (std::size_t i = 0; i < form_count; ++i) {
    if (const auto* found = lookup(forms[i])) return found;
  }
  for (std::size_t i = 0; i < form_count; ++i) {
    if (const auto base = without_version_suffix(forms[i])) {
      if (const auto* found = lookup(*base)) return found;
    }
  }
  return nullptr;
}

const ModelCosts& CostTable::at(std::string_view model) const {
  if (const auto* found = find(model)) return *found;
  throw ConfigurationError(fmt::format(
      "no price for model '{}': pass custom_costs or load a LiteLLM price file", printable(model)));
}

void CostTable::set(std::string model, ModelCosts costs) {
  validate_costs(model, costs);
  entries_.insert_or_assign(std::move(model), std::move(costs));
}

void CostTable::merge(const CostTable& overrides) {
  for (const auto& [model, costs] : overrides.entries_) entries_.insert_or_assign(model, costs);
}

// ---- Our own format (data/model_costs.json) -------------------------------------------------

namespace {

double rate_value(std::string_view model, std::string_view field, const json::value& value) {
  if (!value.is_number()) {
    throw ConfigurationError(
        fmt::format("price for model '{}': {} must be a number", printable(model), field));
  }
  const double rate = value.to_number<double>();
  check_rate(model_subject(model), field, rate);
  return rate;
}

std::string string_value(std::string_view model, std::string_view field, const json::value& value) {
  if (!value.is_string()) {
    throw ConfigurationError(
        fmt::format("price for model '{}': {} must be a string", printable(model), field));
  }
  return std::string(value.get_string());
}

std::int64_t token_count_value(std::string_view model, std::string_view field,
                               const json::value& value) {
  if (value.is_int64() && value.get_int64() >= 0) return value.get_int64();
  if (value.is_uint64() &&
      value.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return static_cast<std::int64_t>(value.get_uint64());
  }
  throw ConfigurationError(fmt::format("price for model '{}': {} must be a non-negative integer",
                                       printable(model), field));
}

struct RateField {
  std::string_view name;
  double ModelCosts::*member;
};
struct TierRateField {
  std::string_view name;
  std::optional<double> ModelCosts::*member;
};
constexpr std::array<RateField, 4> kOwnRateFields{{
    {"input", &ModelCosts::cost_per_million_input_tokens},
    {"output", &ModelCosts::cost_per_million_output_tokens},
    {"cache_write", &ModelCosts::cost_per_million_caching_input_tokens},
    {"cache_read", &ModelCosts::cost_per_million_caching_hit_tokens},
}};
constexpr std::array<TierRateField, 4> kOwnTierRateFields{{
    {"input_above", &ModelCosts::cost_per_million_input_tokens_above},
    {"output_above", &ModelCosts::cost_per_million_output_tokens_above},
    {"cache_write_above", &ModelCosts::cost_per_million_caching_input_tokens_above},
    {"cache_read_above", &ModelCosts::cost_per_million_caching_hit_tokens_above},
}};

// Returns false if `key` is not one of the rate fields.
bool read_rate_field(std::string_view model, std::string_view key, const json::value& value,
                     ModelCosts& costs) {
  for (const auto& field : kOwnRateFields) {
    if (key == field.name) {
      costs.*field.member = rate_value(model, key, value);
      return true;
    }
  }
  for (const auto& field : kOwnTierRateFields) {
    if (key == field.name) {
      costs.*field.member = rate_value(model, key, value);
      return true;
    }
  }
  return false;
}

ModelCosts parse_own_entry(std::string_view model, const json::value& value) {
  const json::object* object = value.if_object();
  if (object == nullptr) {
    throw ConfigurationError(
        fmt::format("price for model '{}' must be a JSON object", printable(model)));
  }
  ModelCosts costs;
  for (const auto& [key, field_value] : *object) {
    if (read_rate_field(model, key, field_value, costs)) continue;
    if (key == "tier_threshold_tokens") {
      costs.tier_threshold_tokens = token_count_value(model, key, field_value);
    } else if (key == "source") {
      costs.source = string_value(model, key, field_value);
    } else if (key == "as_of") {
      costs.as_of = string_value(model, key, field_value);
    } else {
      // A typo such as "cache_reed" must not silently price cache reads at the default.
      throw ConfigurationError(fmt::format("price for model '{}': unknown field '{}'",
                                           printable(model), printable(key)));
    }
  }
  for (std::string_view required : {"input", "output"}) {
    if (!object->contains(required)) {
      throw ConfigurationError(fmt::format("price for model '{}': missing required field '{}'",
                                           printable(model), required));
    }
  }
  // A provider without a cache discount bills cached tokens as ordinary input.
  if (!object->contains("cache_write")) {
    costs.cost_per_million_caching_input_tokens = costs.cost_per_million_input_tokens;
  }
  if (!object->contains("cache_read")) {
    costs.cost_per_million_caching_hit_tokens = costs.cost_per_million_input_tokens;
  }
  validate_costs(model, costs);
  return costs;
}

}  // namespace

CostTable CostTable::from_json(std::string_view json_text) {
  constexpr std::string_view kLabel = "cost table";
  const json::value root = parse_json(json_text, kLabel);
  const json::object* top = root.if_object();
  if (top == nullptr) throw ConfigurationError("cost table: top level must be a JSON object");
  if (const auto* format = top->if_contains("format")) {
    if (!format->is_int64() || format->get_int64() != 1) {
      throw ConfigurationError("cost table: unsupported \"format\" (this library reads format 1)");
    }
  }
  const json::value* models = top->if_contains("models");
  if (models == nullptr || !models->is_object()) {
    throw ConfigurationError("cost table: \"models\" must be a JSON object");
  }
  CostTable table;
  for (const auto& [model, entry] : models->get_object()) {
    table.entries_.insert_or_assign(std::string(model), parse_own_entry(model, entry));
  }
  return table;
}

const CostTable& CostTable::defaults() {
  static const CostTable table = from_json(detail::default_costs_json());
  return table;
}

// ---- LiteLLM's model_prices_and_context_window.json -----------------------------------------

namespace {

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
// "_above_1hr" (one-hour cache writes) are not token tiers and give nullopt.
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
  if (!read_litellm_tier(*object, costs)) return std::nullopt;
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
  const json::value root = parse_json(json_text, source_label);
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

// ---- Cost arithmetic -------------------------------------------------------------------------

namespace {

struct PicoRates {  // pico-USD per token
  std::int64_t input, output, cache_write, cache_read;
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
  return {
      pick("input", costs.cost_per_million_input_tokens, costs.cost_per_million_input_tokens_above),
      pick("output", costs.cost_per_million_output_tokens,
           costs.cost_per_million_output_tokens_above),
      pick("cache_write", costs.cost_per_million_caching_input_tokens,
           costs.cost_per_million_caching_input_tokens_above),
      pick("cache_read", costs.cost_per_million_caching_hit_tokens,
           costs.cost_per_million_caching_hit_tokens_above)};
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
  // Summed in 128 bits: Usage::total_input_tokens() could overflow int64 on absurd counts.
  const Int128 total_input =
      Int128{usage.input_tokens} + usage.cache_write_tokens + usage.cache_read_tokens;
  const PicoRates rates = applicable_rates(costs, total_input);
  // Each product is below 1e15 * 2^63 < 2^113, so the sum of four cannot overflow.
  const Int128 pico = Int128{rates.input} * usage.input_tokens +
                      Int128{rates.output} * usage.output_tokens +
                      Int128{rates.cache_write} * usage.cache_write_tokens +
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

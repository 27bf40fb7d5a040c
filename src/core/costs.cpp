// Cost table and model lookup, and this project's own price format (DESIGN §6). LiteLLM's price
// file is read in costs_litellm.cpp, the cost of a call computed in costs_arithmetic.cpp.
//
// I/O: src/core does no I/O, with one exception the public header promises: from_litellm_file
// reads the file it is given (costs_litellm.cpp; nothing else here touches the file system or
// the network).
#include "llm_caching/costs.hpp"

#include "llm_caching/errors.hpp"

#include "core/costs_rates.hpp"
#include "core/printable.hpp"

#include <fmt/format.h>
#include <boost/json/stream_parser.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <utility>

namespace llm_caching {

namespace detail {
// Generated at build time from data/model_costs.json by cmake/embed_text.cmake.
std::string_view default_costs_json();
}  // namespace detail

namespace core {

bool is_valid_rate(double rate) {
  return rate >= 0.0 && rate <= kMaxRatePerMillion;
}

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
  if (costs.cost_per_million_caching_input_tokens_1h) {
    check_rate(subject, "cache_write_1h", *costs.cost_per_million_caching_input_tokens_1h);
  }
  const std::array<std::pair<const char*, const std::optional<double>*>, 5> tier_rates{{
      {"input_above", &costs.cost_per_million_input_tokens_above},
      {"output_above", &costs.cost_per_million_output_tokens_above},
      {"cache_write_above", &costs.cost_per_million_caching_input_tokens_above},
      {"cache_read_above", &costs.cost_per_million_caching_hit_tokens_above},
      {"cache_write_1h_above", &costs.cost_per_million_caching_input_tokens_1h_above},
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

boost::json::value parse_price_json(std::string_view text, std::string_view source_label) {
  boost::json::stream_parser parser;
  boost::json::error_code ec;
  const std::size_t consumed = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    throw ConfigurationError(
        fmt::format("{}: malformed JSON at offset {}: {}", source_label, consumed, ec.message()));
  }
  return parser.release();
}

}  // namespace core

namespace {

namespace json = boost::json;

// Model names come from callers and files: keep them short and printable in messages.
using core::check_rate;
using core::model_subject;
using core::printable;
using core::RateField;
using core::validate_costs;

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
struct OptionalRateField {
  std::string_view name;
  std::optional<double> ModelCosts::*member;
};
constexpr std::array<RateField, 4> kOwnRateFields{{
    {"input", &ModelCosts::cost_per_million_input_tokens},
    {"output", &ModelCosts::cost_per_million_output_tokens},
    {"cache_write", &ModelCosts::cost_per_million_caching_input_tokens},
    {"cache_read", &ModelCosts::cost_per_million_caching_hit_tokens},
}};
// Optional rates: the one-hour cache write, and the tier rates (with tier_threshold_tokens).
constexpr std::array<OptionalRateField, 6> kOwnOptionalRateFields{{
    {"cache_write_1h", &ModelCosts::cost_per_million_caching_input_tokens_1h},
    {"input_above", &ModelCosts::cost_per_million_input_tokens_above},
    {"output_above", &ModelCosts::cost_per_million_output_tokens_above},
    {"cache_write_above", &ModelCosts::cost_per_million_caching_input_tokens_above},
    {"cache_read_above", &ModelCosts::cost_per_million_caching_hit_tokens_above},
    {"cache_write_1h_above", &ModelCosts::cost_per_million_caching_input_tokens_1h_above},
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
  for (const auto& field : kOwnOptionalRateFields) {
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
  const json::value root = core::parse_price_json(json_text, kLabel);
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

}  // namespace llm_caching

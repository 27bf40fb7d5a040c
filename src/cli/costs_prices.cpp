// `llm-caching costs models` (the price table, each price with its source and date) and
// `llm-caching costs import FILE` (a LiteLLM price file merged under the built-in table, written
// in this project's format for `--prices`). docs/COSTS.md.
#include "commands.hpp"

#include "llm_caching/costs.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

namespace llm_caching::cli {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigurationError("cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// A file in either format: ours (an object with "models") or LiteLLM's.
CostTable load_prices(const std::string& path) {
  const std::string text = read_text(path);
  if (text.find("\"models\"") != std::string::npos) {
    try {
      return CostTable::from_json(text);
    } catch (const ConfigurationError&) {
      // Not ours after all (a LiteLLM file may name a model "models"): read it as LiteLLM's.
    }
  }
  return CostTable::from_litellm_json(text);
}

std::string json_text(std::string_view text) {
  return boost::json::serialize(boost::json::string(text));
}

/// One entry in data/model_costs.json's format; rates in their shortest exact decimal form.
std::string entry_json(const std::string& model, const ModelCosts& c) {
  std::string out = fmt::format(
      "    {}: {{\"input\": {}, \"output\": {}, \"cache_write\": {}, "
      "\"cache_read\": {}",
      json_text(model), c.cost_per_million_input_tokens, c.cost_per_million_output_tokens,
      c.cost_per_million_caching_input_tokens, c.cost_per_million_caching_hit_tokens);
  if (c.cost_per_million_caching_input_tokens_1h) {
    out += fmt::format(", \"cache_write_1h\": {}", *c.cost_per_million_caching_input_tokens_1h);
  }
  if (c.tier_threshold_tokens) {
    out += fmt::format(", \"tier_threshold_tokens\": {}", *c.tier_threshold_tokens);
    const auto above = [&](const char* name, const std::optional<double>& rate) {
      if (rate) out += fmt::format(", \"{}\": {}", name, *rate);
    };
    above("input_above", c.cost_per_million_input_tokens_above);
    above("output_above", c.cost_per_million_output_tokens_above);
    above("cache_write_above", c.cost_per_million_caching_input_tokens_above);
    above("cache_read_above", c.cost_per_million_caching_hit_tokens_above);
    above("cache_write_1h_above", c.cost_per_million_caching_input_tokens_1h_above);
  }
  if (!c.source.empty()) out += ", \"source\": " + json_text(c.source);
  if (!c.as_of.empty()) out += ", \"as_of\": " + json_text(c.as_of);
  return out + "}";
}

std::string table_json(const CostTable& table) {
  std::string out = "{\n  \"format\": 1,\n  \"models\": {\n";
  bool first = true;
  for (const auto& [model, costs] : table.entries()) {
    if (!first) out += ",\n";
    first = false;
    out += entry_json(model, costs);
  }
  return out + "\n  }\n}\n";
}

void list_models(const GlobalOptions& global, const std::string& prices) {
  CostTable table = CostTable::defaults();
  if (!prices.empty()) table.merge(load_prices(prices));
  if (global.json) {
    std::cout << table_json(table);
    return;
  }
  std::cout << fmt::format("{:<40} {:>9} {:>9} {:>9} {:>9}  {:<10} {}\n", "model", "input/M",
                           "output/M", "c.write/M", "c.read/M", "as of", "source");
  for (const auto& [model, c] : table.entries()) {
    std::string rates =
        fmt::format("{:<40} {:>9} {:>9} {:>9} {:>9}  {:<10} {}", model,
                    c.cost_per_million_input_tokens, c.cost_per_million_output_tokens,
                    c.cost_per_million_caching_input_tokens, c.cost_per_million_caching_hit_tokens,
                    c.as_of.empty() ? "-" : c.as_of, c.source.empty() ? "-" : c.source);
    if (c.cost_per_million_caching_input_tokens_1h) {
      rates += fmt::format(" (1-hour writes {}/M)", *c.cost_per_million_caching_input_tokens_1h);
    }
    if (c.tier_threshold_tokens)
      rates += fmt::format(" (tiered above {})", *c.tier_threshold_tokens);
    std::cout << rates << "\n";
  }
}

void import_prices(const std::string& file, const std::string& out_path) {
  std::vector<std::string> skipped;
  CostTable merged = CostTable::from_litellm_json(read_text(file), skipped);
  const std::size_t imported = merged.size();
  merged.merge(CostTable::defaults());  // ours win where both name a model
  const std::string text = table_json(merged);
  if (out_path.empty()) {
    std::cout << text;
  } else {
    std::ofstream out(out_path, std::ios::binary);
    if (!(out << text)) throw ConfigurationError("cannot write '" + out_path + "'");
  }
  std::cerr << fmt::format(
      "{} prices read from {} ({} entries skipped: no per-token price), merged under the {} "
      "built-in ones: {} models\n",
      imported, file, skipped.size(), CostTable::defaults().size(), merged.size());
}

}  // namespace

void add_price_commands(CLI::App& costs, GlobalOptions& global) {
  CLI::App* models = costs.add_subcommand(
      "models", "List the price table: each model's rates per million tokens, source and date");
  auto prices = std::make_shared<std::string>();
  models->add_option("--prices", *prices, "Merge this price file (ours or LiteLLM's) over it")
      ->check(CLI::ExistingFile);
  models->footer("Examples:\n  llm-caching costs models\n  llm-caching costs models --json");
  models->callback([&global, prices] { list_models(global, *prices); });

  CLI::App* import_cmd = costs.add_subcommand(
      "import",
      "Merge a LiteLLM model_prices_and_context_window.json under the built-in table and write "
      "the result in this project's format (for serve --prices / ask --prices)");
  auto file = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  import_cmd->add_option("FILE", *file, "LiteLLM's price file")
      ->required()
      ->check(CLI::ExistingFile);
  import_cmd->add_option("--out", *out, "Write here instead of standard output");
  import_cmd->footer(
      "Examples:\n"
      "  llm-caching costs import model_prices_and_context_window.json --out prices.json\n"
      "  llm-caching serve --prices prices.json");
  import_cmd->callback([file, out] { import_prices(*file, *out); });
}

}  // namespace llm_caching::cli

// Cost table, model lookup, exact cost arithmetic and the LiteLLM loader (DESIGN §6).
#include "llm_caching/costs.hpp"

#include "llm_caching/errors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <regex>
#include <string>
#include <vector>

namespace llm_caching {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

const std::string kSamplePath = std::string(LLMC_TEST_DATA_DIR) + "/litellm_sample.json";

// Expects `fn` to throw ConfigurationError whose message contains every string in `parts`.
template <typename Fn>
void expect_configuration_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected ConfigurationError";
  } catch (const ConfigurationError& error) {
    for (const auto& part : parts) EXPECT_THAT(error.what(), HasSubstr(part));
  }
}

ModelCosts flat_rates(double input, double output, double cache_write, double cache_read) {
  ModelCosts costs;
  costs.cost_per_million_input_tokens = input;
  costs.cost_per_million_output_tokens = output;
  costs.cost_per_million_caching_input_tokens = cache_write;
  costs.cost_per_million_caching_hit_tokens = cache_read;
  return costs;
}

// ---- Default table ---------------------------------------------------------------------------

TEST(DefaultCosts, HasEveryProviderFamily) {
  const CostTable& table = CostTable::defaults();
  for (const char* model : {"gpt-4o",
                            "gpt-4o-mini",
                            "gpt-4.1",
                            "gpt-4.1-mini",
                            "gpt-4.1-nano",
                            "o1",
                            "o3",
                            "o3-mini",
                            "o4-mini",
                            "gpt-5",
                            "gpt-5-mini",
                            "gpt-5-nano",
                            "gpt-3.5-turbo",
                            "claude-3-5-haiku",
                            "claude-3-5-sonnet",
                            "claude-3-7-sonnet",
                            "claude-sonnet-4",
                            "claude-opus-4",
                            "claude-opus-4-1",
                            "claude-3-haiku",
                            "claude-3-opus",
                            "claude-haiku-4-5",
                            "claude-sonnet-4-5",
                            "gemini-2.0-flash",
                            "gemini-2.0-flash-lite",
                            "gemini-1.5-flash",
                            "gemini-1.5-pro",
                            "gemini-2.5-pro",
                            "gemini-2.5-flash",
                            "gemini-2.5-flash-lite",
                            "deepseek-chat",
                            "deepseek-reasoner",
                            "llama-3.3-70b-versatile",
                            "mistral-large-latest"}) {
    EXPECT_NE(table.entries().find(model), table.entries().end()) << model;
  }
}

TEST(DefaultCosts, KnownPricesAreLoaded) {
  const ModelCosts& mini = CostTable::defaults().at("gpt-4o-mini");
  EXPECT_EQ(mini.cost_per_million_input_tokens, 0.15);
  EXPECT_EQ(mini.cost_per_million_output_tokens, 0.60);
  EXPECT_EQ(mini.cost_per_million_caching_hit_tokens, 0.075);
  const ModelCosts& sonnet = CostTable::defaults().at("claude-sonnet-4-5");
  EXPECT_EQ(sonnet.tier_threshold_tokens, 200000);
  EXPECT_EQ(sonnet.cost_per_million_input_tokens_above, 6.0);
  EXPECT_EQ(sonnet.cost_per_million_output_tokens_above, 22.5);
  const ModelCosts& gemini_pro = CostTable::defaults().at("gemini-1.5-pro");
  EXPECT_EQ(gemini_pro.tier_threshold_tokens, 128000);
  EXPECT_EQ(gemini_pro.cost_per_million_input_tokens_above, 2.5);
}

TEST(DefaultCosts, EveryEntryHasSourceDateAndSaneRates) {
  const std::regex iso_date(R"(\d{4}-\d{2}-\d{2})");
  for (const auto& [model, costs] : CostTable::defaults().entries()) {
    SCOPED_TRACE(model);
    EXPECT_THAT(costs.source, HasSubstr("https://"));
    EXPECT_TRUE(std::regex_match(costs.as_of, iso_date)) << costs.as_of;
    EXPECT_GT(costs.cost_per_million_input_tokens, 0.0);
    // Embedding models bill their input only: they have no output tokens.
    if (model.find("embedding") != std::string::npos) {
      EXPECT_EQ(costs.cost_per_million_output_tokens, 0.0);
    } else {
      EXPECT_GT(costs.cost_per_million_output_tokens, 0.0);
    }
    EXPECT_GE(costs.cost_per_million_caching_input_tokens, 0.0);
    EXPECT_GE(costs.cost_per_million_caching_hit_tokens, 0.0);
    // A cache read never costs more than a plain input token.
    EXPECT_LE(costs.cost_per_million_caching_hit_tokens, costs.cost_per_million_input_tokens);
    if (costs.tier_threshold_tokens) {
      EXPECT_GE(costs.cost_per_million_input_tokens_above.value_or(-1.0),
                costs.cost_per_million_input_tokens);
      EXPECT_GE(costs.cost_per_million_output_tokens_above.value_or(-1.0),
                costs.cost_per_million_output_tokens);
    }
  }
}

TEST(DefaultCosts, AnthropicCacheRatesFollowTheMultipliers) {
  // 5-minute cache writes cost 1.25x input, cache reads 0.1x input (compared in pico-USD).
  int checked = 0;
  for (const auto& [model, costs] : CostTable::defaults().entries()) {
    if (model.rfind("claude-", 0) != 0) continue;
    SCOPED_TRACE(model);
    const double input_pico = costs.cost_per_million_input_tokens * 1e6;
    EXPECT_EQ(std::llround(costs.cost_per_million_caching_input_tokens * 1e6),
              std::llround(input_pico * 1.25));
    EXPECT_EQ(std::llround(costs.cost_per_million_caching_hit_tokens * 1e6),
              std::llround(input_pico * 0.1));
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

// ---- Lookup ----------------------------------------------------------------------------------

TEST(CostLookup, ExactId) {
  const CostTable& table = CostTable::defaults();
  EXPECT_EQ(table.find("gpt-4o-mini"), &table.entries().at("gpt-4o-mini"));
}

TEST(CostLookup, ProviderPrefixIsStripped) {
  const CostTable& table = CostTable::defaults();
  const ModelCosts* mini = &table.entries().at("gpt-4o-mini");
  EXPECT_EQ(table.find("openai:gpt-4o-mini"), mini);
  EXPECT_EQ(table.find("openai/gpt-4o-mini"), mini);
  EXPECT_EQ(table.find("openrouter/openai/gpt-4o-mini"), mini);
  EXPECT_EQ(table.find("google-gla:gemini-2.5-flash"), &table.entries().at("gemini-2.5-flash"));
  EXPECT_EQ(table.find("models/gemini-2.5-pro"), &table.entries().at("gemini-2.5-pro"));
  EXPECT_EQ(table.find("groq:llama-3.3-70b-versatile"),
            &table.entries().at("llama-3.3-70b-versatile"));
}

TEST(CostLookup, DateAndVersionSuffixesAreStripped) {
  const CostTable& table = CostTable::defaults();
  EXPECT_EQ(table.find("gpt-4o-2024-08-06"), &table.entries().at("gpt-4o"));
  EXPECT_EQ(table.find("claude-3-5-haiku-20241022"), &table.entries().at("claude-3-5-haiku"));
  EXPECT_EQ(table.find("claude-3-5-haiku-latest"), &table.entries().at("claude-3-5-haiku"));
  EXPECT_EQ(table.find("claude-3-5-sonnet@20240620"), &table.entries().at("claude-3-5-sonnet"));
  EXPECT_EQ(table.find("gemini-2.0-flash-001"), &table.entries().at("gemini-2.0-flash"));
}

TEST(CostLookup, PrefixAndDateTogether) {
  const CostTable& table = CostTable::defaults();
  EXPECT_EQ(table.find("anthropic:claude-3-5-haiku-20241022"),
            &table.entries().at("claude-3-5-haiku"));
  EXPECT_EQ(table.find("openai/gpt-4o-mini-2024-07-18"), &table.entries().at("gpt-4o-mini"));
}

TEST(CostLookup, DatedIdWithItsOwnPriceWinsOverTheBase) {
  // gpt-4o-2024-05-13 cost $5/M, not gpt-4o's $2.50/M: exact match comes before stripping.
  EXPECT_EQ(CostTable::defaults().at("gpt-4o-2024-05-13").cost_per_million_input_tokens, 5.0);
  EXPECT_EQ(CostTable::defaults().at("openai:gpt-4o-2024-05-13").cost_per_million_input_tokens,
            5.0);
}

TEST(CostLookup, UnknownModelIsNullAndAtNamesIt) {
  const CostTable& table = CostTable::defaults();
  EXPECT_EQ(table.find("gpt-9000"), nullptr);
  EXPECT_EQ(table.find(""), nullptr);
  // A fine-tune costs more than its base; taking it apart must not find the base price.
  EXPECT_EQ(table.find("ft:gpt-4o-mini-2024-07-18:acme::abc123"), nullptr);
  // Four-digit snapshots are priced differently from the alias and are not stripped.
  EXPECT_EQ(table.find("gpt-3.5-turbo-1106"), nullptr);
  expect_configuration_error([&] { (void)table.at("acme:gpt-9000"); },
                             {"'acme:gpt-9000'", "custom_costs", "LiteLLM"});
}

// ---- Cost arithmetic -------------------------------------------------------------------------

TEST(CostArithmetic, HandComputedOpenAiUsage) {
  Usage usage;
  usage.input_tokens = 1'234'567;
  usage.output_tokens = 765'432;
  usage.cache_read_tokens = 100'000;
  // gpt-4o-mini: input 0.15 $/M = 150,000 pico/token; output 600,000; cache read 75,000.
  // 1,234,567 * 150,000 = 185,185,050,000 pico
  // 765,432 * 600,000   = 459,259,200,000 pico
  // 100,000 * 75,000    =   7,500,000,000 pico
  // sum                 = 651,944,250,000 pico = 651,944,250 nano-USD ($0.65194425)
  EXPECT_EQ(cost_nano_usd(CostTable::defaults().at("gpt-4o-mini"), usage), 651'944'250);
}

TEST(CostArithmetic, HandComputedAnthropicCacheWriteAndRead) {
  Usage usage;
  usage.input_tokens = 1'000;
  usage.cache_write_tokens = 2'000;
  usage.cache_read_tokens = 30'000;
  usage.output_tokens = 500;
  // claude-3-5-haiku: input 0.80 $/M, write 1.00, read 0.08, output 4.00.
  // 1,000*800,000 + 2,000*1,000,000 + 30,000*80,000 + 500*4,000,000
  //   = 800,000,000 + 2,000,000,000 + 2,400,000,000 + 2,000,000,000 pico = 7,200,000 nano
  EXPECT_EQ(cost_nano_usd(CostTable::defaults().at("claude-3-5-haiku-20241022"), usage), 7'200'000);
}

TEST(CostArithmetic, TierAppliesToTheWholeRequestAboveTheThreshold) {
  const ModelCosts& sonnet = CostTable::defaults().at("claude-sonnet-4-5");
  Usage usage;
  usage.input_tokens = 150'000;
  usage.cache_read_tokens = 50'000;  // total input exactly 200,000: not above the threshold
  usage.output_tokens = 1'000;
  // 150,000*3,000,000 + 50,000*300,000 + 1,000*15,000,000 = 480,000,000,000 pico
  EXPECT_EQ(cost_nano_usd(sonnet, usage), 480'000'000);
  usage.input_tokens = 150'001;  // 200,001: every component moves to the upper tier
  // 150,001*6,000,000 + 50,000*600,000 + 1,000*22,500,000 = 952,506,000,000 pico
  EXPECT_EQ(cost_nano_usd(sonnet, usage), 952'506'000);
}

TEST(CostArithmetic, TierWithoutSomeUpperRatesKeepsTheBaseRate) {
  ModelCosts costs = flat_rates(1.0, 2.0, 1.0, 1.0);
  costs.tier_threshold_tokens = 10;
  costs.cost_per_million_input_tokens_above = 3.0;
  Usage usage;
  usage.input_tokens = 11;
  usage.output_tokens = 1'000;
  // 11*3,000,000 + 1,000*2,000,000 (output has no upper rate) = 2,033,000,000 pico
  EXPECT_EQ(cost_nano_usd(costs, usage), 2'033'000);
}

TEST(CostArithmetic, RoundsHalfUpOnceAfterSummingComponents) {
  Usage one_input;
  one_input.input_tokens = 1;
  EXPECT_EQ(cost_nano_usd(flat_rates(0.0005, 0, 0, 0), one_input), 1);    // 500 pico
  EXPECT_EQ(cost_nano_usd(flat_rates(0.000499, 0, 0, 0), one_input), 0);  // 499 pico
  EXPECT_EQ(cost_nano_usd(flat_rates(0.0025, 0, 0, 0), one_input), 3);    // 2500: up, not even
  Usage input_and_output = one_input;
  input_and_output.output_tokens = 1;
  // 400 + 400 pico = 800 pico -> 1 nano; rounding each component first would give 0.
  EXPECT_EQ(cost_nano_usd(flat_rates(0.0004, 0.0004, 0, 0), input_and_output), 1);
}

TEST(CostArithmetic, RatesFinerThanOnePicoPerTokenAreRounded) {
  Usage usage;
  usage.input_tokens = 1'000'000;
  // 0.0000004 $/M is 0.4 pico/token -> 0; 0.0000006 is 0.6 -> 1 pico/token -> 1 nano per 1e6.
  EXPECT_EQ(cost_nano_usd(flat_rates(0.0000004, 0, 0, 0), usage), 0);
  EXPECT_EQ(cost_nano_usd(flat_rates(0.0000006, 0, 0, 0), usage), 1'000);
}

TEST(CostArithmetic, TrillionsOfTokensDoNotOverflow) {
  Usage usage;
  usage.output_tokens = 1'000'000'000'000;  // 1e12 at 75 $/M: 7.5e19 pico exceeds int64
  EXPECT_EQ(cost_nano_usd(CostTable::defaults().at("claude-opus-4"), usage),
            75'000'000'000'000'000);  // $75,000,000
  usage.input_tokens = usage.cache_write_tokens = usage.cache_read_tokens = 1'000'000'000'000;
  // + 1e12 * (15 + 18.75 + 1.5) $/M = 35,250,000 USD more
  EXPECT_EQ(cost_nano_usd(CostTable::defaults().at("claude-opus-4"), usage),
            110'250'000'000'000'000);
}

TEST(CostArithmetic, CostBeyondInt64IsAnError) {
  Usage usage;
  usage.input_tokens = std::numeric_limits<std::int64_t>::max();
  usage.cache_read_tokens = std::numeric_limits<std::int64_t>::max();
  expect_configuration_error([&] { (void)cost_nano_usd(flat_rates(1000, 0, 0, 1000), usage); },
                             {"range"});
}

TEST(CostArithmetic, NegativeTokenCountsAreRejected) {
  Usage usage;
  usage.cache_read_tokens = -5;
  expect_configuration_error([&] { (void)cost_nano_usd(flat_rates(1, 1, 1, 1), usage); },
                             {"cache_read_tokens", "-5"});
}

TEST(CostArithmetic, InvalidRatesAreRejected) {
  Usage usage;
  usage.input_tokens = 1;
  EXPECT_THROW((void)cost_nano_usd(flat_rates(-1, 0, 0, 0), usage), ConfigurationError);
  EXPECT_THROW((void)cost_nano_usd(flat_rates(std::nan(""), 0, 0, 0), usage), ConfigurationError);
}

TEST(CostArithmetic, DollarConversions) {
  EXPECT_DOUBLE_EQ(nano_usd_to_dollars(651'944'250), 0.65194425);
  EXPECT_EQ(dollars_to_nano_usd(0.65194425), 651'944'250);
  EXPECT_EQ(dollars_to_nano_usd(1.5e-10), 0);
  EXPECT_EQ(dollars_to_nano_usd(1.6e-9), 2);
  EXPECT_EQ(dollars_to_nano_usd(-2.0), -2'000'000'000);
  EXPECT_EQ(dollars_to_nano_usd(std::nan("")), 0);
  EXPECT_EQ(dollars_to_nano_usd(1e30), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(dollars_to_nano_usd(-1e30), std::numeric_limits<std::int64_t>::min());
}

// ---- Building, merging, overriding -----------------------------------------------------------

TEST(CostTableEditing, MergeReplacesOnlyTheOverriddenEntries) {
  CostTable table = CostTable::defaults();
  const std::size_t size_before = table.size();
  CostTable overrides;
  overrides.set("gpt-4o-mini", flat_rates(1.0, 2.0, 1.0, 0.5));
  overrides.set("my-local-model", flat_rates(0.0, 0.0, 0.0, 0.0));
  table.merge(overrides);
  EXPECT_EQ(table.size(), size_before + 1);
  EXPECT_EQ(table.at("openai:gpt-4o-mini").cost_per_million_input_tokens, 1.0);
  EXPECT_EQ(table.at("gpt-4o").cost_per_million_input_tokens, 2.5);
  EXPECT_NE(table.find("my-local-model"), nullptr);
  // The shared defaults are untouched.
  EXPECT_EQ(CostTable::defaults().at("gpt-4o-mini").cost_per_million_input_tokens, 0.15);
}

TEST(CostTableEditing, SetAndConstructorRejectInvalidPrices) {
  CostTable table;
  EXPECT_THROW(table.set("bad", flat_rates(-0.5, 1, 1, 1)), ConfigurationError);
  ModelCosts tier_without_threshold = flat_rates(1, 1, 1, 1);
  tier_without_threshold.cost_per_million_input_tokens_above = 2.0;
  EXPECT_THROW(table.set("bad", tier_without_threshold), ConfigurationError);
  EXPECT_EQ(table.size(), 0u);
  std::map<std::string, ModelCosts, std::less<>> entries{{"bad", flat_rates(1, -1, 1, 1)}};
  EXPECT_THROW(CostTable{entries}, ConfigurationError);
}

// ---- Our JSON format -------------------------------------------------------------------------

TEST(OwnFormat, ReadsRatesTiersAndDefaultsCacheRatesToInput) {
  const CostTable table = CostTable::from_json(R"({"format": 1, "models": {
      "m1": {"input": 1, "output": 2.5, "source": "test", "as_of": "2025-01-01"},
      "m2": {"input": 1, "output": 2, "cache_write": 1.25, "cache_read": 0.1,
             "tier_threshold_tokens": 1000, "input_above": 2, "cache_read_above": 0.2}}})");
  const ModelCosts& m1 = table.at("m1");
  EXPECT_EQ(m1.cost_per_million_output_tokens, 2.5);
  EXPECT_EQ(m1.cost_per_million_caching_input_tokens, 1.0);  // absent: billed as input
  EXPECT_EQ(m1.cost_per_million_caching_hit_tokens, 1.0);
  EXPECT_EQ(m1.source, "test");
  EXPECT_EQ(m1.as_of, "2025-01-01");
  const ModelCosts& m2 = table.at("m2");
  EXPECT_EQ(m2.tier_threshold_tokens, 1000);
  EXPECT_EQ(m2.cost_per_million_input_tokens_above, 2.0);
  EXPECT_EQ(m2.cost_per_million_caching_hit_tokens_above, 0.2);
  EXPECT_FALSE(m2.cost_per_million_output_tokens_above.has_value());
}

TEST(OwnFormat, MalformedInputIsAConfigurationError) {
  expect_configuration_error([] { CostTable::from_json(R"({"models": {"m": )"); },
                             {"malformed JSON", "offset"});
  expect_configuration_error([] { CostTable::from_json("[]"); }, {"top level"});
  expect_configuration_error([] { CostTable::from_json(R"({"format": 1})"); }, {"models"});
  expect_configuration_error([] { CostTable::from_json(R"({"format": 2, "models": {}})"); },
                             {"format"});
  expect_configuration_error([] { CostTable::from_json(R"({"models": {"m": {"input": 1}}})"); },
                             {"'m'", "output"});
  expect_configuration_error(
      [] { CostTable::from_json(R"({"models": {"m": {"input": -1, "output": 1}}})"); },
      {"'m'", "input"});
  expect_configuration_error(
      [] { CostTable::from_json(R"({"models": {"m": {"input": "1", "output": 1}}})"); },
      {"'m'", "number"});
  expect_configuration_error(
      [] {
        CostTable::from_json(R"({"models": {"m": {"input": 1, "output": 1, "cache_reed": 1}}})");
      },
      {"'m'", "cache_reed"});
  expect_configuration_error(
      [] {
        CostTable::from_json(R"({"models": {"m": {"input": 1, "output": 1, "input_above": 2}}})");
      },
      {"'m'", "tier_threshold_tokens"});
  expect_configuration_error(
      [] {
        CostTable::from_json(
            R"({"models": {"m": {"input": 1, "output": 1, "tier_threshold_tokens": 1.5,
                                 "input_above": 2}}})");
      },
      {"'m'", "tier_threshold_tokens"});
  expect_configuration_error([] { CostTable::from_json(R"({"models": {"m": 3}})"); },
                             {"'m'", "object"});
}

// ---- LiteLLM format --------------------------------------------------------------------------

TEST(LiteLlm, SampleFileLoadsUsableEntriesAndSkipsTheRest) {
  const CostTable table = CostTable::from_litellm_file(kSamplePath);
  EXPECT_EQ(table.find("sample_spec"), nullptr);
  EXPECT_EQ(table.find("dall-e-3"), nullptr);
  EXPECT_EQ(table.find("broken-string-cost"), nullptr);
  EXPECT_NE(table.find("text-embedding-3-small"), nullptr);
  // 9 usable entries + bare aliases for gemini/... and deepseek/... (first-party prefixes).
  EXPECT_EQ(table.size(), 11u);
}

TEST(LiteLlm, ReportsSkippedEntries) {
  std::ifstream in(kSamplePath);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> skipped;
  (void)CostTable::from_litellm_json(text, skipped);
  EXPECT_THAT(skipped,
              UnorderedElementsAre("dall-e-3", "broken-string-cost", "broken-not-an-object",
                                   "broken-negative-cost", "broken-tier-cost"));
}

TEST(LiteLlm, PerTokenPricesBecomeExactPerMillionRates) {
  const CostTable table = CostTable::from_litellm_file(kSamplePath);
  const ModelCosts& mini = table.at("gpt-4o-mini");
  EXPECT_EQ(mini.cost_per_million_input_tokens, 0.15);  // from 1.5e-07, exactly
  EXPECT_EQ(mini.cost_per_million_output_tokens, 0.6);
  EXPECT_EQ(mini.cost_per_million_caching_hit_tokens, 0.075);
  EXPECT_EQ(mini.cost_per_million_caching_input_tokens, 0.15);  // absent: billed as input
  EXPECT_FALSE(mini.tier_threshold_tokens.has_value());
  EXPECT_EQ(table.at("deepseek-chat").cost_per_million_caching_hit_tokens, 0.028);
  EXPECT_EQ(table.at("null-cache-model").cost_per_million_caching_hit_tokens, 1.0);
  EXPECT_THAT(mini.source, HasSubstr("LiteLLM"));
}

TEST(LiteLlm, TokenTiersAndOneHourCacheWritesAreRead) {
  const CostTable table = CostTable::from_litellm_file(kSamplePath);
  const ModelCosts& sonnet = table.at("claude-sonnet-4-5-20250929");
  EXPECT_EQ(sonnet.tier_threshold_tokens, 200000);
  EXPECT_EQ(sonnet.cost_per_million_caching_input_tokens, 3.75);  // not the 1-hour 6.0
  EXPECT_EQ(sonnet.cost_per_million_input_tokens_above, 6.0);
  EXPECT_EQ(sonnet.cost_per_million_output_tokens_above, 22.5);
  EXPECT_EQ(sonnet.cost_per_million_caching_input_tokens_above, 7.5);  // not the 1-hour 12.0
  EXPECT_EQ(sonnet.cost_per_million_caching_hit_tokens_above, 0.6);
  EXPECT_EQ(sonnet.cost_per_million_caching_input_tokens_1h, 6.0);
  EXPECT_EQ(sonnet.cost_per_million_caching_input_tokens_1h_above, 12.0);
  EXPECT_FALSE(table.at("gpt-4o").cost_per_million_caching_input_tokens_1h.has_value());
  const ModelCosts& gemini = table.at("gemini-1.5-pro");
  EXPECT_EQ(gemini.tier_threshold_tokens, 128000);
  EXPECT_EQ(gemini.cost_per_million_output_tokens_above, 10.0);
}

TEST(LiteLlm, ProviderKeysAndAliases) {
  const CostTable table = CostTable::from_litellm_file(kSamplePath);
  // Exact provider-qualified keys keep their own price.
  EXPECT_EQ(table.at("openrouter/openai/gpt-4o").cost_per_million_input_tokens, 2.6);
  EXPECT_EQ(table.at("gpt-4o").cost_per_million_input_tokens, 2.5);
  // First-party prefixes give a bare alias; resellers (azure) do not.
  EXPECT_EQ(table.at("deepseek:deepseek-chat").cost_per_million_input_tokens, 0.28);
  EXPECT_EQ(table.at("deepseek-chat").cost_per_million_output_tokens, 0.42);
  EXPECT_EQ(table.find("gpt-4.1"), nullptr);
  EXPECT_NE(table.find("azure/gpt-4.1"), nullptr);
}

TEST(LiteLlm, MalformedInputIsAConfigurationError) {
  expect_configuration_error([] { CostTable::from_litellm_json(R"({"gpt-4o": {"input)"); },
                             {"LiteLLM", "malformed JSON", "offset"});
  expect_configuration_error([] { CostTable::from_litellm_json("[1, 2]"); }, {"top level"});
  expect_configuration_error([] { CostTable::from_litellm_json(R"({} trailing)"); },
                             {"malformed JSON"});
  expect_configuration_error([] { CostTable::from_litellm_file("/nonexistent/prices.json"); },
                             {"/nonexistent/prices.json"});
}

TEST(LiteLlm, MalformedFileErrorNamesTheFile) {
  const std::string path = ::testing::TempDir() + "llmc_costs_malformed_litellm.json";
  {
    std::ofstream out(path, std::ios::trunc);
    out << R"({"gpt-4o": {"input_cost_per_token": 2.5e-06,)";
  }
  expect_configuration_error([&] { CostTable::from_litellm_file(path); }, {path, "offset"});
  std::remove(path.c_str());
}

}  // namespace
}  // namespace llm_caching

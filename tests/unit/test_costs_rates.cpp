// The rate checks and JSON reading that the cost table's parts share (core/costs_rates.hpp).
#include "core/costs_rates.hpp"
#include "llm_caching/errors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

namespace llm_caching::core {
namespace {

using ::testing::HasSubstr;

std::string error_of(const std::function<void()>& check) {
  try {
    check();
  } catch (const ConfigurationError& e) {
    return e.what();
  }
  return "no ConfigurationError";
}

TEST(CostRates, ARateIsFromZeroToTheBound) {
  EXPECT_TRUE(is_valid_rate(0.0));
  EXPECT_TRUE(is_valid_rate(2.5));
  EXPECT_TRUE(is_valid_rate(kMaxRatePerMillion));
  EXPECT_FALSE(is_valid_rate(-0.01));
  EXPECT_FALSE(is_valid_rate(kMaxRatePerMillion * 2));
  EXPECT_FALSE(is_valid_rate(std::nan("")));
  EXPECT_FALSE(is_valid_rate(std::numeric_limits<double>::infinity()));
}

TEST(CostRates, ABadRateNamesItsSubjectAndField) {
  EXPECT_EQ(error_of([] { check_rate(model_subject("gpt-4o"), "output", -1.0); }),
            "price for model 'gpt-4o': output must be between 0 and 1000000000 USD per million "
            "tokens, got -1");
}

TEST(CostRates, TheSubjectShowsTheModelPrintably) {
  EXPECT_EQ(model_subject("a\nb"), "price for model 'a?b'");
}

TEST(CostRates, TierRatesAndTheirThresholdGoTogether) {
  ModelCosts costs;
  costs.cost_per_million_input_tokens = 1.0;
  EXPECT_NO_THROW(validate_costs("m", costs));
  costs.cost_per_million_input_tokens_above = 2.0;
  EXPECT_THAT(error_of([&] { validate_costs("m", costs); }),
              HasSubstr("tier_threshold_tokens and the *_above rates go together"));
  costs.tier_threshold_tokens = 200'000;
  EXPECT_NO_THROW(validate_costs("m", costs));
  costs.tier_threshold_tokens = -1;
  EXPECT_THAT(error_of([&] { validate_costs("m", costs); }),
              HasSubstr("tier_threshold_tokens must not be negative"));
  costs.tier_threshold_tokens = 1;
  costs.cost_per_million_caching_hit_tokens_above = -3.0;
  EXPECT_THAT(error_of([&] { validate_costs("m", costs); }), HasSubstr("cache_read_above"));
}

TEST(CostRates, MalformedJsonNamesTheSourceAndTheOffset) {
  EXPECT_TRUE(parse_price_json(R"({"a": 1})", "prices").is_object());
  EXPECT_THAT(error_of([] { parse_price_json(R"({"a": })", "prices"); }),
              HasSubstr("prices: malformed JSON at offset 6"));
}

}  // namespace
}  // namespace llm_caching::core

// `llm-caching costs models` and `costs import` (docs/COSTS.md): the table with sources and dates,
// and a LiteLLM file merged under the built-in prices, written in this project's format that
// `--prices` reads back.
#include <gtest/gtest.h>

#include "llm_caching/costs.hpp"
#include "support/test_env.hpp"

#include <fstream>

namespace {

constexpr const char* kCli = LLMC_CLI_PATH;

TEST(CliCosts, ModelsListsEachPriceWithItsSourceAndDate) {
  const auto result = llmc_test::run_shell(std::string(kCli) + " costs models");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("gpt-4o-mini"), std::string::npos);
  EXPECT_NE(result.output.find("https://openai.com/api/pricing/"), std::string::npos);
  EXPECT_NE(result.output.find("(tiered above 200000)"), std::string::npos);
  const auto json = llmc_test::run_shell(std::string(kCli) + " costs models --json");
  ASSERT_EQ(json.exit_code, 0);
  const auto table = llm_caching::CostTable::from_json(json.output);
  EXPECT_EQ(table.size(), llm_caching::CostTable::defaults().size());
  EXPECT_EQ(table.at("claude-sonnet-4-5").tier_threshold_tokens,
            llm_caching::CostTable::defaults().at("claude-sonnet-4-5").tier_threshold_tokens);
}

TEST(CliCosts, ImportMergesALiteLlmFileUnderTheBuiltInTable) {
  llmc_test::TempDir dir;
  std::ofstream(dir.file("litellm.json")) << R"({
    "sample_spec": {"input_cost_per_token": 0},
    "my-new-model": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07,
                     "litellm_provider": "openai"},
    "gpt-4o-mini": {"input_cost_per_token": 9e-06, "output_cost_per_token": 9e-06,
                    "litellm_provider": "openai"},
    "dall-e-3": {"output_cost_per_image": 0.04}
  })";
  const auto result =
      llmc_test::run_shell(std::string(kCli) + " costs import " + dir.file("litellm.json") +
                           " --out " + dir.file("prices.json") + " 2>&1");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("2 prices read"), std::string::npos) << result.output;
  std::ifstream in(dir.file("prices.json"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto table = llm_caching::CostTable::from_json(text);
  EXPECT_DOUBLE_EQ(table.at("my-new-model").cost_per_million_input_tokens, 0.15);
  // Ours win where both name a model.
  EXPECT_DOUBLE_EQ(
      table.at("gpt-4o-mini").cost_per_million_input_tokens,
      llm_caching::CostTable::defaults().at("gpt-4o-mini").cost_per_million_input_tokens);
  // The file is what `ask --prices` reads.
  const auto listed =
      llmc_test::run_shell(std::string(kCli) + " costs models --prices " + dir.file("prices.json"));
  EXPECT_NE(listed.output.find("my-new-model"), std::string::npos);
}

TEST(CliCosts, ReportsRefuseBadTimesAndCachesWithoutALedger) {
  llmc_test::TempDir dir;
  const auto bad = llmc_test::run_shell(
      std::string(kCli) + " costs --since 7y --cache-url sqlite://" + dir.file("c.db") + " 2>&1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--since '7y'"), std::string::npos) << bad.output;
  const auto empty = llmc_test::run_shell(
      std::string(kCli) + " costs --by model --cache-url sqlite://" + dir.file("c.db"));
  ASSERT_EQ(empty.exit_code, 0) << empty.output;
  EXPECT_NE(empty.output.find("TOTAL"), std::string::npos);
  const auto dir_cache = llmc_test::run_shell(std::string(kCli) + " costs --cache-url dir://" +
                                              dir.file("entries") + " 2>&1");
  EXPECT_NE(dir_cache.exit_code, 0);
  EXPECT_NE(dir_cache.output.find("keeps no ledger"), std::string::npos) << dir_cache.output;
}

}  // namespace

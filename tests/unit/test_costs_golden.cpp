// Golden costs (docs/COSTS.md): whole provider answers in the shapes the real APIs send, read by
// the provider's codec and priced with the shipped table, against costs worked out by hand. Each
// case pins one provider's token convention: OpenAI's prompt tokens include the cached ones,
// Anthropic's input tokens exclude cache writes and reads (and split writes by lifetime), Gemini's
// prompt count includes its cached content and its thoughts are billed as output; and the tiers
// above 200k input tokens.
#include "llm_caching/costs.hpp"
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"

#include <gtest/gtest.h>

#include <string_view>

namespace {

using llm_caching::Api;
using llm_caching::CostTable;
using llm_caching::Provider;
using llm_caching::Usage;

struct Golden {
  std::string_view name;
  Provider provider;
  Api api;
  std::string_view model;
  std::string_view body;
  Usage usage;            // what the codec must read
  std::int64_t nano_usd;  // worked out by hand from the table's per-million rates
};

// gpt-4o: $2.50 in, $10 out, $1.25 cached. 93 x 2.50 + 1024 x 1.25 + 46 x 10 = 1972.5 (/M).
constexpr std::string_view kOpenAiChatCached = R"({
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion",
  "created": 1741570283, "model": "gpt-4o-2024-08-06",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris.", "refusal": null,
               "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}},
  "service_tier": "default", "system_fingerprint": "fp_fc9f1d7035"})";

// o3-mini: $1.10 in, $4.40 out. The 1,728 reasoning tokens are inside completion_tokens.
// 75 x 1.10 + 1806 x 4.40 = 82.5 + 7946.4 = 8028.9 (/M).
constexpr std::string_view kOpenAiChatReasoning = R"({
  "id": "chatcmpl-AYy3kX", "object": "chat.completion", "created": 1738000000,
  "model": "o3-mini-2025-01-31",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "42"},
               "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 75, "completion_tokens": 1806, "total_tokens": 1881,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 1728, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}})";

// gpt-4o-mini on the Responses API: $0.15 in, $0.60 out, $0.075 cached.
// 200 x 0.15 + 128 x 0.075 + 52 x 0.60 = 30 + 9.6 + 31.2 = 70.8 (/M).
constexpr std::string_view kOpenAiResponses = R"({
  "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", "object": "response",
  "created_at": 1741476542, "status": "completed", "model": "gpt-4o-mini-2024-07-18",
  "output": [{"type": "message", "id": "msg_67ccd2bf", "status": "completed", "role": "assistant",
              "content": [{"type": "output_text", "text": "Hi.", "annotations": []}]}],
  "usage": {"input_tokens": 328, "input_tokens_details": {"cached_tokens": 128},
            "output_tokens": 52, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 380}})";

// claude-sonnet-4-5: $3 in, $15 out, $3.75 5-minute writes, $6 one-hour writes, $0.30 reads.
// 12 x 3 + 1024 x 3.75 + 1024 x 6 + 1800 x 0.30 + 393 x 15 = 36 + 3840 + 6144 + 540 + 5895.
constexpr std::string_view kAnthropicTwoLifetimes = R"({
  "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
  "model": "claude-sonnet-4-5-20250929",
  "content": [{"type": "text", "text": "Hello!"}],
  "stop_reason": "end_turn", "stop_sequence": null,
  "usage": {"input_tokens": 12, "cache_creation_input_tokens": 2048,
            "cache_read_input_tokens": 1800,
            "cache_creation": {"ephemeral_5m_input_tokens": 1024,
                               "ephemeral_1h_input_tokens": 1024},
            "output_tokens": 393, "service_tier": "standard"}})";

// Above 200k input tokens (150,000 + 1,000 written + 59,000 read = 210,000) every rate is the
// upper tier's: $6 in, $22.50 out, $12 one-hour writes, $0.60 reads.
// 150000 x 6 + 1000 x 12 + 59000 x 0.60 + 1000 x 22.50 = 900000 + 12000 + 35400 + 22500.
constexpr std::string_view kAnthropicLongContext = R"({
  "id": "msg_01LongContext", "type": "message", "role": "assistant",
  "model": "claude-sonnet-4-5-20250929",
  "content": [{"type": "text", "text": "Summary."}],
  "stop_reason": "end_turn", "stop_sequence": null,
  "usage": {"input_tokens": 150000, "cache_creation_input_tokens": 1000,
            "cache_read_input_tokens": 59000,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1000},
            "output_tokens": 1000, "service_tier": "standard"}})";

// An answer without the lifetime split (older API versions): all writes are 5-minute ones.
// claude-3-5-haiku: $0.80 in, $4 out, $1 writes, $0.08 reads.
// 20 x 0.80 + 3000 x 1 + 0 + 10 x 4 = 16 + 3000 + 40 = 3056 (/M).
constexpr std::string_view kAnthropicNoSplit = R"({
  "id": "msg_01Old", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
  "content": [{"type": "text", "text": "Ok."}], "stop_reason": "end_turn", "stop_sequence": null,
  "usage": {"input_tokens": 20, "cache_creation_input_tokens": 3000,
            "cache_read_input_tokens": 0, "output_tokens": 10}})";

// gemini-2.5-pro above 200k prompt tokens: $2.50 in, $15 out, $0.25 cached. promptTokenCount
// includes the cached 100,000; the 1,200 thoughts are output.
// 150000 x 2.50 + 100000 x 0.25 + 2000 x 15 = 375000 + 25000 + 30000.
constexpr std::string_view kGeminiLongCached = R"({
  "candidates": [{"content": {"parts": [{"text": "Done."}], "role": "model"},
                  "finishReason": "STOP", "index": 0}],
  "usageMetadata": {"promptTokenCount": 250000, "candidatesTokenCount": 800,
                    "totalTokenCount": 252000, "cachedContentTokenCount": 100000,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 250000}],
                    "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 100000}],
                    "thoughtsTokenCount": 1200},
  "modelVersion": "gemini-2.5-pro", "responseId": "mP7Eae7fJuDhnsEP0bSPyAo"})";

// gemini-2.5-flash: $0.30 in, $2.50 out. 8 x 0.30 + (12 + 20) x 2.50 = 2.4 + 80 = 82.4 (/M).
constexpr std::string_view kGeminiFlashThoughts = R"({
  "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"},
                  "finishReason": "STOP", "index": 0}],
  "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 12, "totalTokenCount": 40,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
                    "thoughtsTokenCount": 20},
  "modelVersion": "gemini-2.5-flash", "responseId": "x1"})";

// deepseek-chat (OpenAI's wire format): $0.28 in, $0.42 out, $0.028 cache hits.
// 176 x 0.28 + 1024 x 0.028 + 300 x 0.42 = 49.28 + 28.672 + 126 = 203.952 (/M).
constexpr std::string_view kDeepSeek = R"({
  "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e", "object": "chat.completion",
  "created": 1705651092, "model": "deepseek-chat",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
               "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
            "prompt_cache_hit_tokens": 1024, "prompt_cache_miss_tokens": 176},
  "system_fingerprint": "fp_a49d71b8a1"})";

// text-embedding-3-small: $0.02 in. 8 x 0.02 = 0.16 (/M).
constexpr std::string_view kEmbeddings = R"({
  "object": "list",
  "data": [{"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292]}],
  "model": "text-embedding-3-small", "usage": {"prompt_tokens": 8, "total_tokens": 8}})";

const Golden kGoldens[] = {
    {"openai chat, cached prompt",
     Provider::openai,
     Api::chat,
     "gpt-4o",
     kOpenAiChatCached,
     {.input_tokens = 93, .output_tokens = 46, .cache_read_tokens = 1024, .requests = 1},
     1'972'500},
    {"openai chat, reasoning",
     Provider::openai,
     Api::chat,
     "o3-mini",
     kOpenAiChatReasoning,
     {.input_tokens = 75, .output_tokens = 1806, .requests = 1},
     8'028'900},
    {"openai responses",
     Provider::openai,
     Api::responses,
     "gpt-4o-mini",
     kOpenAiResponses,
     {.input_tokens = 200, .output_tokens = 52, .cache_read_tokens = 128, .requests = 1},
     70'800},
    {"anthropic, 5-minute and 1-hour writes",
     Provider::anthropic,
     Api::chat,
     "claude-sonnet-4-5",
     kAnthropicTwoLifetimes,
     {.input_tokens = 12,
      .output_tokens = 393,
      .cache_write_tokens = 2048,
      .cache_read_tokens = 1800,
      .requests = 1,
      .cache_write_1h_tokens = 1024},
     16'455'000},
    {"anthropic, above 200k",
     Provider::anthropic,
     Api::chat,
     "claude-sonnet-4-5",
     kAnthropicLongContext,
     {.input_tokens = 150000,
      .output_tokens = 1000,
      .cache_write_tokens = 1000,
      .cache_read_tokens = 59000,
      .requests = 1,
      .cache_write_1h_tokens = 1000},
     969'900'000},
    {"anthropic, no lifetime split",
     Provider::anthropic,
     Api::chat,
     "claude-3-5-haiku",
     kAnthropicNoSplit,
     {.input_tokens = 20, .output_tokens = 10, .cache_write_tokens = 3000, .requests = 1},
     3'056'000},
    {"gemini, above 200k with cached content and thoughts",
     Provider::gemini,
     Api::chat,
     "gemini-2.5-pro",
     kGeminiLongCached,
     {.input_tokens = 150000, .output_tokens = 2000, .cache_read_tokens = 100000, .requests = 1},
     430'000'000},
    {"gemini, thoughts are output",
     Provider::gemini,
     Api::chat,
     "gemini-2.5-flash",
     kGeminiFlashThoughts,
     {.input_tokens = 8, .output_tokens = 32, .requests = 1},
     82'400},
    {"deepseek, prompt cache hits",
     Provider::openai,
     Api::chat,
     "deepseek-chat",
     kDeepSeek,
     {.input_tokens = 176, .output_tokens = 300, .cache_read_tokens = 1024, .requests = 1},
     203'952},
    {"openai embeddings",
     Provider::openai,
     Api::embeddings,
     "text-embedding-3-small",
     kEmbeddings,
     {.input_tokens = 8, .requests = 1},
     160},
};

TEST(GoldenCosts, RealAnswersArePricedToTheNanoDollar) {
  for (const Golden& golden : kGoldens) {
    SCOPED_TRACE(golden.name);
    const Usage usage =
        llm_caching::providers::parse_usage(golden.provider, golden.api, golden.body);
    EXPECT_EQ(usage, golden.usage);
    EXPECT_EQ(llm_caching::cost_nano_usd(CostTable::defaults().at(golden.model), usage),
              golden.nano_usd);
  }
}

TEST(GoldenCosts, OneHourWritesWithoutTheirOwnRateAreBilledAsWrites) {
  llm_caching::ModelCosts price = CostTable::defaults().at("claude-sonnet-4-5");
  price.cost_per_million_caching_input_tokens_1h.reset();
  price.cost_per_million_caching_input_tokens_1h_above.reset();
  const Usage usage =
      llm_caching::providers::parse_usage(Provider::anthropic, Api::chat, kAnthropicTwoLifetimes);
  // 36 + 2048 x 3.75 + 540 + 5895 = 14151 (/M).
  EXPECT_EQ(llm_caching::cost_nano_usd(price, usage), 14'151'000);
}

TEST(GoldenCosts, MoreOneHourWritesThanWritesIsAnError) {
  const Usage usage{.cache_write_tokens = 10, .requests = 1, .cache_write_1h_tokens = 11};
  EXPECT_THROW(llm_caching::cost_nano_usd(CostTable::defaults().at("claude-sonnet-4-5"), usage),
               llm_caching::ConfigurationError);
}

}  // namespace

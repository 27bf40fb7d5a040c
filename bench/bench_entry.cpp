// Cost of turning a cached answer into bytes and back (DESIGN §4): this runs on every cache hit
// and every store, so it must stay far below a network round trip to Redis.
#include "core/checksum.hpp"
#include "core/entry.hpp"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

namespace {

using llm_caching::core::CacheEntry;
using llm_caching::core::EncodeOptions;

// A realistic OpenAI chat completion body of about 2 KB, as a provider returns it.
std::string openai_chat_completion() {
  return R"({
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741570283,
  "model": "gpt-4o-2024-08-06",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Caching LLM calls pays off whenever the same prompt is sent more than once. The key must cover everything that can change the answer: the model, the messages, temperature, tools, the response format and any seed. Fields that cannot change the answer, such as a user id or request metadata, should be left out so that equivalent requests share one entry.\n\nA few practical rules:\n\n1. Canonicalise the request before hashing it, so that key order and number formatting do not split the cache.\n2. Store the native response byte for byte, so that a replay is indistinguishable from a live answer.\n3. Record usage and cost with the entry, so that a hit can report the money it saved.\n4. Give entries a time to live that matches how quickly the underlying data changes.\n5. Treat a corrupt or unreadable entry as a miss: log it, delete it and call the provider again.\n\nWith these in place, a test suite that exercises real prompts runs in seconds instead of minutes, and costs nothing after the first run.",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 1117,
    "completion_tokens": 226,
    "total_tokens": 1343,
    "prompt_tokens_details": {
      "cached_tokens": 1024,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_fc9f1d7035"
})";
}

CacheEntry realistic_entry() {
  CacheEntry e;
  e.provider = "openai";
  e.model = "gpt-4o-2024-08-06";
  e.created_at_ms = 1'741'570'283'512;
  e.ttl_ms = 7LL * 24 * 3600 * 1000;
  e.response = openai_chat_completion();
  e.usage = {.input_tokens = 93,
             .output_tokens = 226,
             .cache_write_tokens = 0,
             .cache_read_tokens = 1024,
             .requests = 1};
  e.cost_nano_usd = 2'724'250;
  return e;
}

EncodeOptions options_for(bool compressed) {
  return compressed ? EncodeOptions{.compress_threshold = 0}
                    : EncodeOptions{.compress_threshold = SIZE_MAX};
}

void BM_EncodeEntry(benchmark::State& state) {
  const CacheEntry entry = realistic_entry();
  const EncodeOptions opts = options_for(state.range(0) != 0);
  std::size_t encoded_size = 0;
  for (auto _ : state) {
    std::string bytes = llm_caching::core::encode_entry(entry, opts);
    encoded_size = bytes.size();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["encoded_bytes"] = static_cast<double>(encoded_size);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(entry.response.size()));
}

void BM_DecodeEntry(benchmark::State& state) {
  const CacheEntry entry = realistic_entry();
  const std::string bytes =
      llm_caching::core::encode_entry(entry, options_for(state.range(0) != 0));
  for (auto _ : state) {
    auto decoded = llm_caching::core::decode_entry(bytes);
    if (!std::holds_alternative<CacheEntry>(decoded)) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(decoded);
  }
  state.counters["encoded_bytes"] = static_cast<double>(bytes.size());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(entry.response.size()));
}

void BM_Crc32c(benchmark::State& state) {
  const std::string data(static_cast<std::size_t>(state.range(0)), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(llm_caching::core::crc32c(data));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

// Argument 1 = zstd-compressed, 0 = stored uncompressed (the default below 8 KiB).
BENCHMARK(BM_EncodeEntry)->ArgName("zstd")->Arg(1)->Arg(0);
BENCHMARK(BM_DecodeEntry)->ArgName("zstd")->Arg(1)->Arg(0);
BENCHMARK(BM_Crc32c)->Arg(2048);

}  // namespace

BENCHMARK_MAIN();

// Cost of deriving a cache key for a realistic ~1 KB OpenAI chat request: the key is computed on
// every call, hit or miss, so it must stay far below a memory-cache lookup.
#include "llm_caching/cache_key.hpp"

#include <benchmark/benchmark.h>
#include <boost/json/parse.hpp>

#include <string>

namespace {

namespace json = boost::json;
using llm_caching::Provider;

// System prompt + 3 messages + sampling parameters + one tool, as an SDK would send it.
const std::string chat_request_text = R"({
  "model": "gpt-4o-mini",
  "messages": [
    {"role": "system", "content": "You are a concise assistant for a travel company. Answer in at most three sentences, prefer metric units, and never invent prices. If you need live data, call a tool."},
    {"role": "user", "content": "I am planning a weekend in Lisbon in early October. What is the weather usually like, and what should I pack?"},
    {"role": "assistant", "content": "Early October in Lisbon is mild: typically 17-25 °C with occasional showers. Pack light layers, a light rain jacket and comfortable walking shoes for the hills."},
    {"role": "user", "content": "Great. Can you check the forecast for Saturday and suggest one indoor activity if it rains?"}
  ],
  "temperature": 0.2,
  "top_p": 1,
  "max_tokens": 300,
  "seed": 12345,
  "stream": false,
  "user": "user-8f14e45f",
  "tools": [
    {"type": "function", "function": {
      "name": "get_forecast",
      "description": "Weather forecast for a city and date",
      "parameters": {"type": "object",
        "properties": {"city": {"type": "string"}, "date": {"type": "string", "format": "date"}},
        "required": ["city", "date"]}}}
  ],
  "tool_choice": "auto"
})";

void BM_DeriveKeyParsed(benchmark::State& state) {
  const json::value request = json::parse(chat_request_text);
  for (auto _ : state) {
    auto key = llm_caching::derive_key(Provider::openai, "gpt-4o-mini", request, "scope-1");
    benchmark::DoNotOptimize(key);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(chat_request_text.size()));
}
BENCHMARK(BM_DeriveKeyParsed);

void BM_CanonicalJson(benchmark::State& state) {
  const json::value request = json::parse(chat_request_text);
  for (auto _ : state) {
    auto canonical = llm_caching::canonical_json(request);
    benchmark::DoNotOptimize(canonical);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(chat_request_text.size()));
}
BENCHMARK(BM_CanonicalJson);

void BM_ParseExactAndDeriveKey(benchmark::State& state) {
  for (auto _ : state) {
    const json::value request = llm_caching::parse_json_exact(chat_request_text);
    auto key = llm_caching::derive_key(Provider::openai, "gpt-4o-mini", request, "scope-1");
    benchmark::DoNotOptimize(key);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(chat_request_text.size()));
}
BENCHMARK(BM_ParseExactAndDeriveKey);

// For comparison: Boost.JSON's own parser (fast, but not correctly rounded for long doubles).
void BM_ParseBoostAndDeriveKey(benchmark::State& state) {
  for (auto _ : state) {
    const json::value request = json::parse(chat_request_text);
    auto key = llm_caching::derive_key(Provider::openai, "gpt-4o-mini", request, "scope-1");
    benchmark::DoNotOptimize(key);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(chat_request_text.size()));
}
BENCHMARK(BM_ParseBoostAndDeriveKey);

}  // namespace

BENCHMARK_MAIN();

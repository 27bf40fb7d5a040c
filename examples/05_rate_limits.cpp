// 05 — riding out rate limits.
//
// A 429 (or 529, 5xx, a dropped connection) is retried with exponential backoff and full jitter,
// starting at `initial_wait` and doubling; a provider's Retry-After wins over the computed wait.
// `max_wait` bounds the total time spent waiting: past it the call fails with RateLimitError,
// which says how many attempts were made and how long was waited.
//
// Usage: example_05_rate_limits [provider:model [max_wait_seconds]]
//   defaults: openai:gpt-4o-mini, 30. Exit status 0 with an answer, 75 (EX_TEMPFAIL) when rate
//   limited past max_wait, 1 on any other failure.
// Environment: OPENAI_API_KEY (and OPENAI_BASE_URL), LLM_CACHE_REDIS_URL, as in 01_basic.
#include <llm_caching/agent.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>

int main(int argc, char** argv) try {
  using namespace llm_caching;
  using namespace std::chrono_literals;
  const std::string model = argc > 1 ? argv[1] : "openai:gpt-4o-mini";
  const double max_wait_seconds = argc > 2 ? std::stod(argv[2]) : 30.0;

  Agent agent{.model = model};
  RunOptions options;
  // [readme:rate-limits]
  options.max_wait = std::chrono::milliseconds(static_cast<long>(max_wait_seconds * 1000));
  options.initial_wait = 1s;  // first backoff; doubles on every retry
  // [/readme:rate-limits]

  // A model missing from the built-in price table (a fine-tune, a self-hosted model, or the fake
  // provider's "gpt-4o-mini+429-2") needs a price before any call; price it as gpt-4o-mini.
  const std::string model_id = model.substr(model.find(':') + 1);
  if (CostTable::defaults().find(model_id) == nullptr) {
    options.custom_costs[model_id] = CostTable::defaults().at("gpt-4o-mini");
  }

  const auto started = std::chrono::steady_clock::now();
  // [readme:rate-limit-error]
  try {
    RunResult r = cached_agent_run_sync(agent, "Hello", "chat", options);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    std::cout << "answered (" << (r.cache_hit ? "HIT" : "MISS") << ", " << took.count()
              << " ms including any rate-limit waits): " << r.output << "\n";
    return 0;
  } catch (const RateLimitError& e) {
    std::cout << "rate limited: gave up after " << e.attempts() << " attempts and "
              << e.waited().count() << " ms of waiting";
    if (e.last_retry_after()) {
      std::cout << " (the provider last asked for " << e.last_retry_after()->count() << " ms)";
    }
    std::cout << "\n  " << e.what() << "\n";
    return 75;  // EX_TEMPFAIL: try again later
  }
  // [/readme:rate-limit-error]
} catch (const std::exception& e) {
  std::cerr << "example_05_rate_limits failed: " << e.what() << "\n";
  return 1;
}

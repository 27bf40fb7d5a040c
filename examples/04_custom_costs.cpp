// 04 — prices for a model the built-in table does not know.
//
// The seed's custom_costs: per-million-token rates for input, output, prompt-cache writes and
// prompt-cache reads. They are checked before the built-in table; a model that is in neither is a
// ConfigurationError before any call (never a silent $0). The library sums costs exactly in
// integer nano-USD; this program recomputes the cost by hand from the reported usage.
//
// Environment: OPENAI_API_KEY (and OPENAI_BASE_URL: "my-custom-model" is served by an
// OpenAI-compatible server of yours), LLM_CACHE_REDIS_URL, as in 01_basic.
#include <llm_caching/agent.hpp>

#include <cstdint>
#include <exception>
#include <iostream>

int main() try {
  using namespace llm_caching;
  Agent agent{.model = "openai:my-custom-model"};

  // [readme:custom-costs]
  RunOptions options;
  options.custom_costs["my-custom-model"] = ModelCosts{
      .cost_per_million_input_tokens = 1.0,
      .cost_per_million_output_tokens = 2.0,
      .cost_per_million_caching_input_tokens = 0.5,
      .cost_per_million_caching_hit_tokens = 0.1,
  };
  RunResult r = cached_agent_run_sync(agent, "Hello", "chat", options);
  // [/readme:custom-costs]

  // On a hit nothing is billed; the original call's cost is what the hit avoided.
  const std::int64_t call_cost = r.cache_hit ? r.avoided_cost_nano_usd : r.cost_nano_usd;
  const Usage& u = r.usage;
  const double by_hand = (u.input_tokens * 1.0 + u.output_tokens * 2.0 +
                          u.cache_write_tokens * 0.5 + u.cache_read_tokens * 0.1) /
                         1e6;
  std::cout << (r.cache_hit ? "HIT" : "MISS") << ": " << r.output << "\n"
            << "usage: " << u.input_tokens << " input, " << u.output_tokens << " output, "
            << u.cache_write_tokens << " cache-write, " << u.cache_read_tokens
            << " cache-read tokens\n"
            << "by hand: " << u.input_tokens << " x $1.0/M + " << u.output_tokens << " x $2.0/M + "
            << u.cache_write_tokens << " x $0.5/M + " << u.cache_read_tokens
            << " x $0.1/M = " << dollars_to_nano_usd(by_hand) << " nano-USD\n"
            << "library: " << call_cost << " nano-USD"
            << (r.cache_hit ? " (avoided; billed 0)" : "") << "\n";
  return dollars_to_nano_usd(by_hand) == call_cost ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "example_04_custom_costs failed: " << e.what() << "\n";
  return 1;
}

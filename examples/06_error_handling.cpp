// 06 — the errors a call can raise, and how to tell them apart.
//
// Every error is an llm_caching::Error (a std::runtime_error); the kinds are the seed's, plus two:
//   ConfigurationError  bad setup, raised before any I/O: unknown model price, malformed model
//                       name or cache URL, missing API key
//   RateLimitError      still rate limited when max_wait was spent (attempts(), waited())
//   CacheError          the cache failed (only with strict_cache; otherwise a miss)
//     CacheMissError    replay_only found no entry; the provider was not called
//   ProviderError       the provider answered an error, or nothing usable (http_status())
// Messages never contain the API key.
//
// Usage: example_06_error_handling [provider:model]
//   The model used for the rate-limit scenario (default openai:gpt-4o-mini, which is usually
//   just answered). Exit status 0 when every scenario was handled, 1 on anything unexpected.
// Environment: OPENAI_API_KEY (and OPENAI_BASE_URL), LLM_CACHE_REDIS_URL, as in 01_basic.
#include <llm_caching/agent.hpp>
#include <llm_caching/errors.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>

namespace {

using namespace llm_caching;

// [readme:errors]
void ask(std::string_view scenario, const Agent& agent, std::string_view prompt,
         const RunOptions& options) {
  std::cout << scenario << ": ";
  try {
    RunResult result = cached_agent_run_sync(agent, prompt, "chat", options);
    std::cout << "answered: " << result.output << "\n";
  } catch (const ConfigurationError& e) {
    std::cout << "Configuration error: " << e.what() << "\n";
  } catch (const RateLimitError& e) {
    std::cout << "Rate limit exceeded after " << e.attempts() << " attempts: " << e.what() << "\n";
  } catch (const CacheMissError& e) {  // before CacheError, its base
    std::cout << "Not in the cache: " << e.what() << "\n";
  } catch (const CacheError& e) {
    std::cout << "Cache error: " << e.what() << "\n";
  } catch (const ProviderError& e) {
    std::cout << "Provider error (HTTP " << e.http_status() << ", " << e.error_type()
              << "): " << e.what() << "\n";
  }
}
// [/readme:errors]

}  // namespace

int main(int argc, char** argv) try {
  using namespace std::chrono_literals;
  const Agent agent{.model = "openai:gpt-4o-mini"};

  // A model with no price, built in or custom: refused before any call.
  ask("unpriced model", Agent{.model = "openai:my-unpriced-model"}, "Hello", {});

  // A model name without its provider.
  ask("no provider", Agent{.model = "gpt-4o-mini"}, "Hello", {});

  // replay_only answers from the cache or fails; it never calls the provider. This is how a test
  // suite runs without API keys once the answers are recorded.
  RunOptions replay;
  replay.mode = CacheMode::replay_only;
  ask("replay only", agent, "A question this program never asks for real", replay);

  // Nothing listens there: retried as a transient failure until max_wait (here: no waiting).
  Agent unreachable = agent;
  unreachable.base_url = "http://127.0.0.1:1/v1";
  RunOptions no_waiting;
  no_waiting.max_wait = 0ms;
  ask("provider unreachable", unreachable, "Hello", no_waiting);

  // Rate limits with no patience at all: the first 429 is final.
  const Agent limited{.model = argc > 1 ? argv[1] : "openai:gpt-4o-mini"};
  const std::string model_id = limited.model.substr(limited.model.find(':') + 1);
  if (CostTable::defaults().find(model_id) == nullptr) {  // priced as gpt-4o-mini, as in 05
    no_waiting.custom_costs[model_id] = CostTable::defaults().at("gpt-4o-mini");
  }
  ask("rate limited", limited, "Hello", no_waiting);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "example_06_error_handling failed: " << e.what() << "\n";
  return 1;
}

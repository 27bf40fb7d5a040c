// A user's program built against the installed package (CMake or pkg-config): two identical
// calls to the provider at $OPENAI_BASE_URL (the fake provider), the second from the cache.
#include <llm_caching/llm_caching.hpp>

#include <iostream>

int main() {
  using namespace llm_caching;
  const Agent agent{.model = "openai:gpt-4o-mini"};
  RunOptions options;
  options.redis_url = "memory://";
  const RunResult first = cached_agent_run_sync(agent, "packaged", "package-test", options);
  const RunResult second = cached_agent_run_sync(agent, "packaged", "package-test", options);
  std::cout << (first.cache_hit ? "hit" : "miss") << ' ' << (second.cache_hit ? "hit" : "miss")
            << ' ' << second.output << '\n';
  return first.cache_hit || !second.cache_hit ? 1 : 0;
}

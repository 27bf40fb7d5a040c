// A user's program: finds the installed library with find_package(llm_caching).
#include <llm_caching/llm_caching.hpp>  // the umbrella header: everything, as users include it

#include <iostream>

int main() {
  using namespace llm_caching;
  const boost::json::value request = parse_json_exact(R"({"model":"gpt-4o-mini","messages":[]})");
  std::cout << storage_key("", derive_key(Provider::openai, "gpt-4o-mini", request).hex) << "\n";
  try {
    Agent agent{.model = "openai:gpt-4o-mini"};
    RunOptions options;
    options.redis_url = "memory://";
    options.mode = CacheMode::replay_only;
    cached_agent_run_sync(agent, "hi", "t", options);
  } catch (const CacheMissError&) {
    std::cout << "replay miss ok\n";
  }
  return 0;
}

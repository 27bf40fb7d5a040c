// 01 — the basics: one prompt through the cache, blocking and awaitable.
//
// The seed's Quick Start, `await cached_agent_run(agent=your_agent, prompt="Hello",
// task_name="chat")`, in C++. The first run asks the provider (MISS) and stores the answer; the
// same call again is answered from the cache (HIT) and costs nothing.
//
// Configuration comes from the environment, as in any real program:
//   OPENAI_API_KEY        the key (OPENAI_BASE_URL points elsewhere, e.g. a proxy or a fake)
//   LLM_CACHE_REDIS_URL   the cache (unset: an SQLite file under ~/.cache/llm-caching)
#include <llm_caching/agent.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <exception>
#include <iostream>

// A coroutine takes its arguments by value: a reference to the caller's local may dangle.
// [readme:awaitable]
boost::asio::awaitable<void> chat_in_a_coroutine(llm_caching::Agent agent) {
  using namespace llm_caching;
  // (With options: name them first. g++ 12 destroys a braced temporary such as
  // `RunOptions{...}` written inside a co_await expression twice.)
  RunResult r = co_await cached_agent_run(agent, "Hello", "chat");
  std::cout << "awaitable: " << (r.cache_hit ? "HIT" : "MISS") << ", $" << r.cost << " (avoided $"
            << r.avoided_cost << "): " << r.output << "\n";
}
// [/readme:awaitable]

int main() try {
  // [readme:basic]
  using namespace llm_caching;

  Agent agent{.model = "openai:gpt-4o-mini", .system_prompt = "Be brief."};

  // Blocking, from any thread (runs its own io_context):
  RunResult s = cached_agent_run_sync(agent, "Hello", "chat");
  std::cout << "sync: " << (s.cache_hit ? "HIT" : "MISS") << ", $" << s.cost << ": " << s.output
            << "\n";
  // [/readme:basic]

  // Awaitable, in your own Asio coroutine. Same agent, prompt and task: answered from the cache.
  boost::asio::io_context io;
  auto done = boost::asio::co_spawn(io, chat_in_a_coroutine(agent), boost::asio::use_future);
  io.run();
  done.get();  // rethrows what the coroutine threw
  return 0;
} catch (const std::exception& e) {
  std::cerr << "example_01_basic failed: " << e.what() << "\n";
  return 1;
}

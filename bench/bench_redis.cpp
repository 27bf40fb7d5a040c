// Cache hits through Redis (DESIGN §5), run by bench/run_redis_bench.sh next to redis-benchmark on
// the same server. Targets (issue 5): a hit with a cold L1 (GET + entry decode) within 1.2x of
// redis-benchmark's raw GET round trip (-c 1 -d 2048), and 64 concurrent coroutines reaching at
// least 80% of redis-benchmark -c 64 GET requests/s. The callers run on long-lived io_contexts, so
// the client serves them over a connection on that io_context (a lane, redis_client.cpp);
// BM_RedisGetFreshIoContext shows the other path (a new io_context per call, as the sync API
// makes: the command hops to the client's I/O thread and back).
// Needs LLMC_BENCH_REDIS_URL (e.g. redis://127.0.0.1:6390/0).
#include "cache/cache_url.hpp"
#include "cache/redis_backend.hpp"
#include "cache/run_blocking.hpp"
#include "cache/tiered_cache.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdlib>
#include <stdexcept>

namespace {

namespace asio = boost::asio;
using namespace llm_caching;
using llm_caching::cache::TieredCache;

constexpr std::int64_t kFixedNowMs = 1'750'000'000'000;
constexpr int kKeys = 1024;

/// An OpenAI chat completion of about 2 KB, the size of a typical cached answer.
std::shared_ptr<const core::CacheEntry> entry_2kb() {
  std::string content;
  while (content.size() < 1700) {
    content += "Caching LLM calls pays off whenever the same prompt is sent more than once. ";
  }
  auto entry = std::make_shared<core::CacheEntry>();
  entry->provider = "openai";
  entry->model = "gpt-4o-2024-08-06";
  entry->created_at_ms = kFixedNowMs;
  entry->response = R"({"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,)"
                    R"("message":{"role":"assistant","content":")" +
                    content +
                    R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":1117,)"
                    R"("completion_tokens":226,"total_tokens":1343}})";
  entry->usage.input_tokens = 1117;
  entry->usage.output_tokens = 226;
  entry->cost_nano_usd = 3'140'000;
  return entry;
}

std::string key(int i) {
  return "llm-caching:v1:bench:" + std::to_string(i);
}

struct Fixture {
  std::shared_ptr<cache::RedisBackend> backend;
  std::unique_ptr<TieredCache> cache;  // L1 disabled: every hit goes to Redis
  Fixture() {
    const char* url = std::getenv("LLMC_BENCH_REDIS_URL");
    if (url == nullptr)
      throw std::runtime_error("set LLMC_BENCH_REDIS_URL (run_redis_bench.sh does)");
    backend =
        std::make_shared<cache::RedisBackend>(std::get<RedisOptions>(cache::parse_cache_url(url)));
    cache = std::make_unique<TieredCache>(backend, 0, true);
    const auto entry = entry_2kb();
    for (int i = 0; i < kKeys; ++i)
      cache::run_blocking(cache->put(key(i), entry, std::chrono::hours(1)));
  }
};

Fixture& fixture() {
  static Fixture instance;
  return instance;
}

void BM_RedisHitColdL1(benchmark::State& state) {
  TieredCache& cache = *fixture().cache;
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        int i = 0;
        for (auto _ : state) {
          auto entry = co_await cache.get(key(i++ % kKeys), kFixedNowMs);
          if (!entry) throw std::runtime_error("unexpected miss");
          benchmark::DoNotOptimize(entry);
        }
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
}
BENCHMARK(BM_RedisHitColdL1)->UseRealTime();

/// The same without the entry decode: the client's GET alone (hop + round trip).
void BM_RedisClientGet(benchmark::State& state) {
  cache::RedisBackend& backend = *fixture().backend;
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        int i = 0;
        for (auto _ : state) benchmark::DoNotOptimize(co_await backend.get(key(i++ % kKeys)));
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
}
BENCHMARK(BM_RedisClientGet)->UseRealTime();

/// A new io_context per GET, as run_blocking and the sync API make: the hop-through path.
void BM_RedisGetFreshIoContext(benchmark::State& state) {
  cache::RedisBackend& backend = *fixture().backend;
  int i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(cache::run_blocking(backend.get(key(i++ % kKeys))));
}
BENCHMARK(BM_RedisGetFreshIoContext)->UseRealTime();

/// 64 coroutines on one long-lived caller thread (its io_context is run to completion once per
/// iteration and reused, as a server's event loop lives on); items/s is hits per second.
void BM_RedisHitConcurrent64(benchmark::State& state) {
  TieredCache& cache = *fixture().cache;
  constexpr int kCoroutines = 64;
  constexpr int kHitsEach = 50;
  asio::io_context io;
  for (auto _ : state) {
    io.restart();
    for (int c = 0; c < kCoroutines; ++c) {
      asio::co_spawn(
          io,
          [&cache, c]() -> asio::awaitable<void> {
            for (int i = 0; i < kHitsEach; ++i) {
              auto entry = co_await cache.get(key((c * kHitsEach + i) % kKeys), kFixedNowMs);
              if (!entry) throw std::runtime_error("unexpected miss");
            }
          },
          [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
          });
    }
    io.run();
  }
  state.SetItemsProcessed(state.iterations() * kCoroutines * kHitsEach);
}
BENCHMARK(BM_RedisHitConcurrent64)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

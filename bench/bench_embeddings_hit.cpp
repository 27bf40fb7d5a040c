// An embeddings request of 100 inputs whose embeddings are all cached (issue 30's target: answered
// in <= 1 ms), through Gateway::handle in-process: the body's parse, 100 key derivations, 100 L1
// lookups and the answer's pieces (100 x 1536 floats, about 1.9 MB of JSON, gathered by the
// socket's write, not joined: the stream here counts them). The socket is not in it:
// bench/gateway/embeddings_socket.sh measures the whole way.
#include "cache/memory_backend.hpp"
#include "cache/tiered_cache.hpp"
#include "exchange/exchange.hpp"
#include "gateway/controls.hpp"
#include "gateway/gateway.hpp"
#include "gateway/worker_state.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <cstdio>
#include <random>

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace llm_caching;
using namespace llm_caching::gateway;

constexpr std::size_t kInputs = 100;
constexpr std::size_t kDimensions = 1536;  // text-embedding-3-small
const std::string kModel = "text-embedding-3-small";
const std::string kCallerKey = "sk-bench-embeddings";

/// Keeps the answer's size, so the bench can check it really answered.
class CountingStream final : public ResponseStream {
 public:
  std::size_t bytes = 0;
  int status = 0;
  asio::awaitable<bool> send(OutgoingResponse response) override {
    bytes = response.body.size();
    status = response.status;
    co_return true;
  }
  /// As the socket's stream: the pieces are counted where they lie, never joined.
  asio::awaitable<bool> send_gathered(int code, Headers, GatheredBody body) override {
    bytes = body.size();
    status = code;
    co_return true;
  }
  asio::awaitable<bool> begin_chunked(int, Headers) override { co_return false; }
  asio::awaitable<bool> write_chunk(std::string_view) override { co_return false; }
  asio::awaitable<bool> end_chunked(Headers) override { co_return false; }
  void abort() override {}
};

/// An embedding as OpenAI writes it: 1536 floats of 8 to 10 significant digits.
std::string embedding_text(std::mt19937& random) {
  std::uniform_real_distribution<double> value(-0.1, 0.1);
  std::string text = "[";
  char number[32];
  for (std::size_t i = 0; i < kDimensions; ++i) {
    if (i > 0) text += ',';
    text.append(number, std::snprintf(number, sizeof number, "%.10f", value(random)));
  }
  return text + "]";
}

void BM_EmbeddingsAllCached(benchmark::State& state) {
  auto cache = std::make_shared<cache::TieredCache>(
      std::make_shared<cache::MemoryBackend>(MemoryOptions{}), 512 * kMiB, false);
  auto exchange = std::make_shared<exchange::Exchange>(cache);
  GatewayConfig config;
  // The public endpoint (never called: every input is a hit), so the key's scope is the
  // caller's tenant alone, as tenant_scope below computes it; another upstream's endpoint would
  // be in the scope too (DESIGN §3).
  Gateway gateway(config, exchange);
  asio::io_context io;
  providers::HttpClient client(io.get_executor());
  gateway::WorkerState worker(client);

  // The cached inputs, under the keys the route derives for this caller.
  json::array inputs;
  std::mt19937 random(30);
  const std::string scope = tenant_scope(kCallerKey);
  for (std::size_t i = 0; i < kInputs; ++i) {
    const std::string input = "document chunk number " + std::to_string(i) + " of the corpus";
    inputs.emplace_back(input);
    const json::object one{{"model", kModel}, {"input", input}};
    const std::string key =
        storage_key("", derive_key(Provider::openai, Api::embeddings, kModel, one, scope).hex);
    auto entry = std::make_shared<core::CacheEntry>();
    entry->provider = "openai";
    entry->model = kModel;
    entry->created_at_ms = exchange::system_now_ms();
    entry->response = embedding_text(random);
    entry->cost_nano_usd = 200;
    cache->put_l1(key, std::move(entry));
  }
  IncomingRequest request{"POST",
                          "/v1/embeddings",
                          {},
                          json::serialize(json::object{{"model", kModel}, {"input", inputs}})};
  request.headers.emplace_back("content-type", "application/json");
  request.headers.emplace_back("authorization", "Bearer " + kCallerKey);

  CountingStream out;
  for (auto _ : state) {
    asio::co_spawn(io, gateway.handle(worker, request, out), asio::detached);
    io.run();
    io.restart();
  }
  if (out.status != 200) state.SkipWithError("the request was not answered from the cache");
  state.counters["answer_bytes"] = static_cast<double>(out.bytes);
}
BENCHMARK(BM_EmbeddingsAllCached)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

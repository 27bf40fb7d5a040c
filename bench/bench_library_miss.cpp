// Library misses over HTTPS against the fake provider (issue 21): what a miss costs beyond the
// provider's own time, now that provider connections are pooled for the process.
//  - BM_ProviderDirect: one keep-alive HttpClient POSTs the request the library would send: the
//    fake provider's own time plus the transport, the baseline.
//  - BM_ProviderFreshClient: a new HttpClient per call (TCP + TLS handshake each time), what
//    every library miss paid before the pool.
//  - BM_LibraryMiss: cached_agent_run_sync with a new prompt each iteration (a miss on the memory
//    tier): request building, key, pricing, the pooled call, storing, parsing.
// Target: BM_LibraryMiss median - BM_ProviderDirect median <= 0.3 ms (docs/PERFORMANCE.md).
#include "llm_caching/agent.hpp"
#include "providers/http_client.hpp"
#include "support/fake_provider.hpp"
#include "support/test_env.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>

#include <cstdlib>
#include <memory>
#include <string>

namespace {

namespace asio = boost::asio;
using namespace llm_caching;

struct Fake {
  llmc_test::TestCertificates certs = llmc_test::make_test_certificates();
  llmc_test::FakeProvider provider{{.tls = &certs}};
};

Fake& fake() {
  static Fake instance;
  return instance;
}

providers::HttpRequest request_for(const std::string& prompt) {
  providers::HttpRequest request;
  request.url = fake().provider.base_url() + "/v1/chat/completions";
  request.headers = {{"authorization", "Bearer sk-bench"}, {"content-type", "application/json"}};
  request.body = boost::json::serialize(boost::json::object{
      {"model", "gpt-4o-mini"},
      {"messages",
       boost::json::array{boost::json::object{{"role", "user"}, {"content", prompt}}}}});
  return request;
}

void BM_ProviderDirect(benchmark::State& state) {
  asio::io_context io;
  providers::HttpClient client(io.get_executor(), {.ca_file = fake().certs.ca_cert});
  std::int64_t i = 0;
  for (auto _ : state) {
    auto response =
        llmc_test::run_sync(io, client.send(request_for("direct " + std::to_string(i++))));
    if (response.status != 200) state.SkipWithError("the fake provider did not answer 200");
  }
}
BENCHMARK(BM_ProviderDirect)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_ProviderFreshClient(benchmark::State& state) {
  std::int64_t i = 0;
  for (auto _ : state) {
    asio::io_context io;
    providers::HttpClient client(io.get_executor(), {.ca_file = fake().certs.ca_cert});
    auto response =
        llmc_test::run_sync(io, client.send(request_for("fresh " + std::to_string(i++))));
    if (response.status != 200) state.SkipWithError("the fake provider did not answer 200");
  }
}
BENCHMARK(BM_ProviderFreshClient)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_LibraryMiss(benchmark::State& state) {
  setenv("OPENAI_BASE_URL", (fake().provider.base_url() + "/v1").c_str(), 1);
  setenv("OPENAI_API_KEY", "sk-bench", 1);
  setenv("LLM_CACHING_CA_FILE", fake().certs.ca_cert.c_str(), 1);
  const Agent agent{.model = "openai:gpt-4o-mini"};
  RunOptions options;
  options.redis_url = "memory://";
  static std::int64_t i = 0;  // across the runs: every prompt is new
  for (auto _ : state) {
    const RunResult r =
        cached_agent_run_sync(agent, "miss " + std::to_string(i++), "bench", options);
    if (r.cache_hit) state.SkipWithError("expected a miss");
  }
}
BENCHMARK(BM_LibraryMiss)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

// The ledger's CPU per call (docs/COSTS.md; issue 24: at most 2 µs per gateway hit). A hit pays
// for building its record and handing it to the writer (BM_LedgerHandOver); the writer thread
// pays for folding the hits of a batch (BM_LedgerFoldHits: 1,000 hits of 10 tenants in one
// second become 10 rows) and for storing the rows, per row in batches of 1,000: a SQLite
// transaction (BM_LedgerSqliteAppend) or the Redis script's arguments (BM_LedgerRedisEncode; the
// server's work is Redis's, not the gateway's). Per hit under load, the store's share is divided
// by the fold factor.
#include "cache/sqlite_backend.hpp"
#include "core/ledger.hpp"
#include "exchange/ledger_writer.hpp"

#include <benchmark/benchmark.h>

#include <unistd.h>
#include <filesystem>
#include <memory>
#include <string>

namespace {

using namespace llm_caching;
namespace asio = boost::asio;

/// The record of a gateway hit, built from its request's strings as route_memo.cpp builds it.
core::LedgerRecord hit_record(const std::string& task, const std::string& model,
                              const std::string& tenant, const std::string& tags) {
  core::LedgerRecord r;
  r.time_ms = 1'796'515'200'000;
  r.task = task;
  r.model = model;
  r.provider = "openai";
  r.tenant = tenant;
  r.tags = tags;
  r.input_tokens = 1117;
  r.output_tokens = 226;
  r.avoided_nano_usd = 303'150;
  r.latency_us = 14;
  r.outcome = core::LedgerOutcome::hit;
  return r;
}

/// A ledger that keeps nothing: the hand-over alone is measured, not the memory of millions of
/// records.
class DiscardingLedger final : public cache::Backend {
 public:
  asio::awaitable<std::optional<std::string>> get(std::string) override { co_return std::nullopt; }
  asio::awaitable<void> put(std::string, std::string, std::chrono::milliseconds) override {
    co_return;
  }
  asio::awaitable<bool> erase(std::string) override { co_return false; }
  asio::awaitable<std::uint64_t> clear(std::string) override { co_return 0; }
  asio::awaitable<std::uint64_t> prune() override { co_return 0; }
  asio::awaitable<cache::BackendStats> stats() override { co_return cache::BackendStats{}; }
  std::string describe() const override { return "discard://"; }
  bool keeps_ledger() const noexcept override { return true; }
  asio::awaitable<void> ledger_append(std::vector<core::LedgerRecord>,
                                      core::LedgerBatchId) override {
    co_return;
  }
};

void BM_LedgerHandOver(benchmark::State& state) {
  auto backend = std::make_shared<DiscardingLedger>();
  exchange::LedgerOptions options{.enabled = true};
  exchange::LedgerWriter writer(backend, options);
  const std::string task = "nightly-eval", model = "gpt-4o-mini", tags = "batch,eval";
  const std::string tenant = "key:0123456789abcdef0123456789abcdef";
  for (auto _ : state) writer.record(hit_record(task, model, tenant, tags));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LedgerHandOver);

void BM_LedgerSqliteAppend(benchmark::State& state) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("llmc-bench-ledger-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  SqliteOptions options;
  options.path = dir / "cache.db";
  {
    cache::SqliteBackend backend(options);
    const std::vector<core::LedgerRecord> batch(
        1000, hit_record("nightly-eval", "gpt-4o-mini", "key:0123456789abcdef", "batch"));
    for (auto _ : state) backend.ledger_append_now(batch);
    state.SetItemsProcessed(state.iterations() * 1000);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_LedgerSqliteAppend)->Unit(benchmark::kMillisecond);

void BM_LedgerFoldHits(benchmark::State& state) {
  std::vector<core::LedgerRecord> batch;
  for (int i = 0; i < 1000; ++i) {
    core::LedgerRecord r = hit_record("nightly-eval", "gpt-4o-mini",
                                      "key:0123456789abcdef" + std::to_string(i % 10), "batch");
    r.time_ms += i % 1000;
    batch.push_back(std::move(r));
  }
  std::vector<core::LedgerRecord> work;
  work.reserve(batch.size());
  for (auto _ : state) {
    work = batch;
    benchmark::DoNotOptimize(core::coalesce_served_records(work));
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_LedgerFoldHits)->Unit(benchmark::kMicrosecond);

void BM_LedgerRedisEncode(benchmark::State& state) {
  const core::LedgerRecord record =
      hit_record("nightly-eval", "gpt-4o-mini", "key:0123456789abcdef", "batch");
  for (auto _ : state) benchmark::DoNotOptimize(core::encode_ledger_line(record));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LedgerRedisEncode);

}  // namespace

BENCHMARK_MAIN();

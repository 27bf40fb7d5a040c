// The dir:// backend (test-suite mode, issue 22): a hit with a cold L1 on a 2 KB answer in a
// directory of 10,000 entries (target: median <= 50 us), and `llm-caching cache export` of
// 100,000 entries from SQLite into a directory (the real command, timed end to end). The trees are
// built under a fresh directory in /tmp/llm-caching-bench/ at each run and removed after.
#include "cache/dir_backend.hpp"
#include "cache/sqlite_backend.hpp"
#include "cache/tiered_cache.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace llm_caching;
using llm_caching::cache::TieredCache;

constexpr std::size_t kProbeKeys = 4096;

/// An OpenAI chat completion of about 2 KB (as bench_cache_hit's).
std::string response_2kb(std::uint64_t i) {
  std::string content = "answer " + std::to_string(i) + ": ";
  while (content.size() < 1700) {
    content +=
        "Caching LLM calls pays off whenever the same prompt is sent more than once; the key "
        "must cover everything that can change the answer. ";
  }
  return R"({"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion",)"
         R"("created":1741570283,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":)"
         R"({"role":"assistant","content":")" +
         content +
         R"(","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":)"
         R"({"prompt_tokens":1117,"completion_tokens":226,"total_tokens":1343},)"
         R"("system_fingerprint":"fp_fc9f1d7035"})";
}

/// The canonical request of a chat call with a 1 KB prompt (what a format 3 entry carries).
std::string request_1kb(std::uint64_t i) {
  std::string prompt = "question " + std::to_string(i) + ": ";
  while (prompt.size() < 1024) prompt += "Explain, with one example, why caches need good keys. ";
  return R"({"messages":[{"content":"You are a careful assistant.","role":"system"},)"
         R"({"content":")" +
         prompt + R"(","role":"user"}],"model":"gpt-4o-2024-08-06","temperature":0.2})";
}

/// An encoded entry; `with_request`: format 3, carrying its request (else format 2).
std::string entry_bytes(std::uint64_t i, bool with_request = false) {
  core::CacheEntry entry;
  if (with_request) {
    entry.request = request_1kb(i);
    entry.api = "chat";
  }
  entry.provider = "openai";
  entry.model = "gpt-4o-2024-08-06";
  entry.created_at_ms = 1'750'000'000'000;
  entry.response = response_2kb(i);
  entry.usage.input_tokens = 1117;
  entry.usage.output_tokens = 226;
  entry.cost_nano_usd = 3'140'000;
  return core::encode_entry(entry);
}

std::string storage_key(std::uint64_t i) {
  char hex[65];
  std::snprintf(hex, sizeof hex, "%064llx", static_cast<unsigned long long>(i * 2654435761ull));
  return std::string("llm-caching:v1:bench:") + hex;
}

/// A fresh directory, removed when the bench ends.
struct BenchDir {
  fs::path path;
  BenchDir() {
    fs::create_directories("/tmp/llm-caching-bench");
    char name[] = "/tmp/llm-caching-bench/dir-XXXXXX";
    if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = name;
  }
  ~BenchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// A DirBackend over `entries` entries, written once per process (the repetitions share it).
std::shared_ptr<cache::DirBackend> filled_dir(std::uint64_t entries, bool with_request) {
  static BenchDir dir;
  static std::map<std::pair<std::uint64_t, bool>, std::shared_ptr<cache::DirBackend>> built;
  auto& backend = built[{entries, with_request}];
  if (!backend) {
    backend = std::make_shared<cache::DirBackend>(DirOptions{
        .path = dir.path / ("cache-" + std::to_string(entries) + (with_request ? "-v3" : ""))});
    for (std::uint64_t i = 0; i < entries; ++i) {
      backend->put_now(storage_key(i), entry_bytes(i, with_request));
    }
  }
  return backend;
}

void BM_DirHitColdL1(benchmark::State& state) {
  const auto entries = static_cast<std::uint64_t>(state.range(0));
  const bool with_request = state.range(1) != 0;  // format 3 entries (issue 22) or format 2
  auto l2 = filled_dir(entries, with_request);
  state.counters["entry_bytes"] = static_cast<double>(entry_bytes(0, with_request).size());
  state.counters["file_bytes"] = static_cast<double>(fs::file_size(l2->file_of(storage_key(0))));
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < kProbeKeys; ++i) keys.push_back(storage_key((i * 7919) % entries));
  TieredCache cache(l2, /*l1_max_bytes=*/0, false);  // every get reads and parses the file
  asio::io_context io;
  std::exception_ptr error;
  std::size_t misses = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::size_t i = 0;
        for (auto _ : state) {
          auto entry = co_await cache.get(keys[i++ % keys.size()], 0);
          if (!entry) ++misses;
          benchmark::DoNotOptimize(entry);
        }
      },
      [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
  if (misses != 0) state.SkipWithError("unexpected misses");
}
BENCHMARK(BM_DirHitColdL1)
    ->Args({10'000, 0})
    ->Args({10'000, 1})
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->Unit(benchmark::kMicrosecond);

/// `llm-caching cache export sqlite://... dir://...`, the command as a user runs it.
void BM_ExportSqliteToDir(benchmark::State& state) {
  const auto entries = static_cast<std::uint64_t>(state.range(0));
  BenchDir dir;
  const fs::path db = dir.path / "source.db";
  {
    cache::SqliteBackend source(SqliteOptions{.path = db, .max_bytes = 64 * kGiB});
    std::vector<cache::Backend::PutItem> batch;
    for (std::uint64_t i = 0; i < entries; ++i) {
      batch.push_back({storage_key(i), entry_bytes(i), std::chrono::milliseconds(0)});
      if (batch.size() == 1000 || i + 1 == entries) {
        source.put_many_now(batch);
        batch.clear();
      }
    }
  }
  int run = 0;
  for (auto _ : state) {
    const fs::path target = dir.path / ("export-" + std::to_string(run++));
    const std::string command = std::string(LLMC_CLI_PATH) + " cache export sqlite://" +
                                db.string() + " dir://" + target.string() + " >/dev/null 2>&1";
    if (std::system(command.c_str()) != 0) state.SkipWithError("export failed");
  }
  state.counters["entries_per_s"] =
      benchmark::Counter(static_cast<double>(entries) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ExportSqliteToDir)
    ->Arg(100'000)
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();

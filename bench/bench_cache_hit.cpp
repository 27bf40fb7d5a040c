// Cost of a cache hit through the tiers (DESIGN §2): an L1 hit (decoded entry in memory) and a
// SQLite hit with a cold L1 (read + decode), at 1k and 1M stored entries. Targets: L1 hit <= 5 us
// including key derivation (measured by another bench), SQLite hit <= 30 us, and a 1M-entry hit
// within 1.5x of a 1k-entry hit. The 1M-entry file is built once under /tmp/llm-caching-bench/
// and reused by later runs.
#include "cache/memory_backend.hpp"
#include "cache/sqlite_backend.hpp"
#include "cache/tiered_cache.hpp"

#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace llm_caching;
using llm_caching::cache::TieredCache;

constexpr std::int64_t kFixedNowMs = 1'750'000'000'000;
constexpr std::size_t kProbeKeys = 4096;

/// An OpenAI chat completion of about 2 KB, the size of a typical cached answer.
std::string response_2kb() {
  std::string content;
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

std::shared_ptr<const core::CacheEntry> entry_2kb() {
  auto entry = std::make_shared<core::CacheEntry>();
  entry->provider = "openai";
  entry->model = "gpt-4o-2024-08-06";
  entry->created_at_ms = kFixedNowMs;
  entry->response = response_2kb();
  entry->usage.input_tokens = 93;
  entry->usage.cache_read_tokens = 1024;
  entry->usage.output_tokens = 226;
  entry->cost_nano_usd = 3'140'000;
  return entry;
}

/// Storage keys shaped like real ones (precomputed: key derivation is another bench).
std::string storage_key(std::uint64_t i) {
  std::string key = "llm-caching:v1:default:";
  std::uint64_t x = i + 0x9e3779b97f4a7c15ull;
  for (int word = 0; word < 4; ++word) {
    x += 0x9e3779b97f4a7c15ull;  // splitmix64
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(z));
    key += hex;
  }
  return key;
}

/// Runs `cache.get` for every benchmark iteration inside one coroutine on one io_context.
void run_hits(benchmark::State& state, TieredCache& cache, const std::vector<std::string>& keys) {
  asio::io_context io;
  std::exception_ptr error;
  std::size_t misses = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::size_t i = 0;
        for (auto _ : state) {
          auto entry = co_await cache.get(keys[i++ % keys.size()], kFixedNowMs);
          if (!entry) ++misses;
          benchmark::DoNotOptimize(entry);
        }
      },
      [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
  if (misses != 0) state.SkipWithError("unexpected misses");
}

void BM_MemoryTierHit(benchmark::State& state) {
  auto l2 = std::make_shared<cache::MemoryBackend>(MemoryOptions{});
  TieredCache cache(l2, 64 * kMiB, false);
  const std::vector<std::string> keys = {storage_key(42)};
  asio::io_context io;
  asio::co_spawn(io, cache.put(keys[0], entry_2kb(), std::chrono::milliseconds(0)),
                 [](std::exception_ptr e) {
                   if (e) std::rethrow_exception(e);
                 });
  io.run();
  run_hits(state, cache, keys);
}
BENCHMARK(BM_MemoryTierHit)->Repetitions(5)->ReportAggregatesOnly(true);

/// A SQLite file holding `entries` encoded 2 KB entries, built once and reused.
fs::path bench_database(std::uint64_t entries) {
  const fs::path dir = "/tmp/llm-caching-bench";
  const fs::path path = dir / ("cache-" + std::to_string(entries) + ".db");
  const SqliteOptions options{.path = path, .max_bytes = 64 * kGiB};
  {
    cache::SqliteBackend existing(options);
    if (existing.stats_now().entries == entries) return path;
  }
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  { cache::SqliteBackend create_schema(options); }

  // Bulk load in one transaction with SQLite directly; the schema's triggers keep the totals.
  const std::string value = core::encode_entry(*entry_2kb());
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("open");
  sqlite3_exec(db, "PRAGMA synchronous=OFF; BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO entries(key, value, expires_at, size, last_access, id) "
                     "VALUES (?1, ?2, 0, ?3, ?4, ?5)",
                     -1, &insert, nullptr);
  for (std::uint64_t i = 0; i < entries; ++i) {
    const std::string key = storage_key(i);
    sqlite3_bind_text(insert, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    sqlite3_bind_blob(insert, 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert, 3, static_cast<std::int64_t>(key.size() + value.size()));
    sqlite3_bind_int64(insert, 4, kFixedNowMs);
    sqlite3_bind_int64(insert, 5, cache::sqlite_entry_id(key));
    if (sqlite3_step(insert) != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
    sqlite3_reset(insert);
  }
  sqlite3_finalize(insert);
  sqlite3_exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return path;
}

/// Keys spread over the whole file, so the 1M case walks many different b-tree pages.
std::vector<std::string> probe_keys(std::uint64_t entries) {
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < kProbeKeys; ++i) {
    keys.push_back(storage_key((i * 2654435761ull) % entries));
  }
  return keys;
}

/// Args: entries, and the memory map in MiB (SqliteOptions::mmap_bytes; the default is 64).
void BM_SqliteHitColdL1(benchmark::State& state) {
  const auto entries = static_cast<std::uint64_t>(state.range(0));
  // A fixed clock equal to the rows' last_access: hits stay read-only, as in steady use.
  auto l2 = std::make_shared<cache::SqliteBackend>(
      SqliteOptions{.path = bench_database(entries),
                    .max_bytes = 64 * kGiB,
                    .mmap_bytes = static_cast<std::uint64_t>(state.range(1)) * kMiB},
      [] { return kFixedNowMs; });
  TieredCache cache(l2, /*l1_max_bytes=*/0, false);
  run_hits(state, cache, probe_keys(entries));
}
BENCHMARK(BM_SqliteHitColdL1)
    ->ArgNames({"entries", "mmap_mib"})
    ->Args({1'000, 64})
    ->Args({1'000'000, 64})
    ->Args({1'000'000, 1024})
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->Unit(benchmark::kMicrosecond);

/// The SQLite read alone (no decode, no coroutine), to split the hit's cost.
void BM_SqliteBackendRead(benchmark::State& state) {
  const auto entries = static_cast<std::uint64_t>(state.range(0));
  cache::SqliteBackend backend(
      SqliteOptions{.path = bench_database(entries), .max_bytes = 64 * kGiB},
      [] { return kFixedNowMs; });
  const std::vector<std::string> keys = probe_keys(entries);
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(backend.get_now(keys[i++ % keys.size()]));
}
BENCHMARK(BM_SqliteBackendRead)
    ->Arg(1'000)
    ->Arg(1'000'000)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->Unit(benchmark::kMicrosecond);

/// Decoding a 2 KB entry alone (what the cold-L1 hit adds on top of the read).
void BM_DecodeEntry2kb(benchmark::State& state) {
  const std::string bytes = core::encode_entry(*entry_2kb());
  for (auto _ : state) benchmark::DoNotOptimize(core::decode_entry(bytes));
}
BENCHMARK(BM_DecodeEntry2kb)->Repetitions(5)->ReportAggregatesOnly(true);

/// Bytes this process has handed to write(2) and friends so far (/proc/self/io `wchar`): the WAL
/// appends and, from the checkpoint thread, the copies back into the file.
std::uint64_t bytes_written_by_process() {
  std::FILE* io = std::fopen("/proc/self/io", "r");
  if (io == nullptr) return 0;
  unsigned long long bytes = 0;
  char line[128];
  while (std::fgets(line, sizeof line, io) != nullptr) {
    if (std::sscanf(line, "wchar: %llu", &bytes) == 1) break;
  }
  std::fclose(io);
  return bytes;
}

/// The gateway's write-behind on SQLite: each iteration stores a batch of `batch` new 2 KB
/// entries in one transaction (put_many), into a file that starts empty and grows with the run.
/// At ~1,000 misses/s the 5 ms gathering makes batches of about 5. CPU time is the process's,
/// the checkpoint thread's included.
void BM_SqliteWriteBehindBatch(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  const fs::path dir = "/tmp/llm-caching-bench";
  fs::create_directories(dir);
  const fs::path path = dir / "write-behind.db";
  for (const char* suffix : {"", "-wal", "-shm", "-locks"}) fs::remove(path.string() + suffix);
  cache::SqliteBackend backend(SqliteOptions{.path = path, .max_bytes = 64 * kGiB});
  const std::string value = core::encode_entry(*entry_2kb());
  std::uint64_t next = 0;
  std::vector<cache::Backend::PutItem> items(batch);
  const std::uint64_t written_before = bytes_written_by_process();
  for (auto _ : state) {
    for (cache::Backend::PutItem& item : items) {
      item = cache::Backend::PutItem{storage_key(next++), value, std::chrono::milliseconds(0)};
    }
    backend.put_many_now(items);
  }
  const std::uint64_t written = bytes_written_by_process() - written_before;
  state.SetItemsProcessed(static_cast<std::int64_t>(next));
  state.counters["written_kb_per_entry"] =
      static_cast<double>(written) / 1024.0 / static_cast<double>(next);
}
BENCHMARK(BM_SqliteWriteBehindBatch)
    ->Arg(5)
    ->Iterations(4000)
    ->MeasureProcessCPUTime()
    ->Repetitions(3)
    ->ReportAggregatesOnly(true)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

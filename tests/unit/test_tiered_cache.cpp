// TieredCache: L1 of decoded entries over an L2 of encoded bytes; corrupt entries; failure policy;
// the process registry.
#include "cache/memory_backend.hpp"
#include "cache/run_blocking.hpp"
#include "cache/sqlite_backend.hpp"
#include "cache/tiered_cache.hpp"
#include "llm_caching/errors.hpp"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace llm_caching::cache {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using EntryPtr = TieredCache::EntryPtr;

constexpr std::int64_t kNow = 1'700'000'000'000;
const std::string kKey = "llm-caching:v1:default:5d41402abc4b2a76b9719d911017c592";

EntryPtr make_entry(std::string response = R"({"id":"chatcmpl-1","choices":[]})",
                    std::int64_t ttl_ms = 0) {
  auto entry = std::make_shared<core::CacheEntry>();
  entry->provider = "openai";
  entry->model = "gpt-4o-mini";
  entry->created_at_ms = kNow;
  entry->ttl_ms = ttl_ms;
  entry->response = std::move(response);
  entry->usage.input_tokens = 12;
  entry->usage.output_tokens = 34;
  entry->cost_nano_usd = 5600;
  return entry;
}

/// A backend whose every operation fails, as a dead server or an unreadable file would.
class FailingBackend final : public Backend {
 public:
  asio::awaitable<std::optional<std::string>> get(std::string) override {
    throw std::runtime_error("connection refused");
    co_return std::nullopt;
  }
  asio::awaitable<void> put(std::string, std::string, std::chrono::milliseconds) override {
    throw std::runtime_error("connection refused");
    co_return;
  }
  asio::awaitable<bool> erase(std::string) override {
    throw std::runtime_error("connection refused");
    co_return false;
  }
  asio::awaitable<std::uint64_t> clear(std::string) override {
    throw std::runtime_error("connection refused");
    co_return 0;
  }
  asio::awaitable<std::uint64_t> prune() override {
    throw CacheError("disk on fire");
    co_return 0;
  }
  asio::awaitable<BackendStats> stats() override {
    throw std::runtime_error("connection refused");
    co_return BackendStats{};
  }
  std::string describe() const override { return "failing://"; }
};

/// Captures spdlog output for one test.
class CapturedLog {
 public:
  CapturedLog()
      : previous_(spdlog::default_logger()),
        logger_(std::make_shared<spdlog::logger>(
            "captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_))) {
    spdlog::set_default_logger(logger_);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return stream_.str(); }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::logger> logger_;
};

class TieredCacheTest : public ::testing::Test {
 protected:
  std::shared_ptr<MemoryBackend> l2_ = std::make_shared<MemoryBackend>(MemoryOptions{});
  TieredCache cache_{l2_, 64 * kMiB, false};

  EntryPtr get(const std::string& key, std::int64_t now = kNow) {
    return run_blocking(cache_.get(key, now));
  }
  TieredStats stats() { return run_blocking(cache_.stats()); }
};

TEST_F(TieredCacheTest, MissThenPutThenHit) {
  EXPECT_EQ(get(kKey), nullptr);
  const EntryPtr entry = make_entry();
  run_blocking(cache_.put(kKey, entry, milliseconds(0)));
  const EntryPtr got = get(kKey);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(*got, *entry);
  EXPECT_TRUE(l2_->get_now(kKey).has_value());  // written through to the L2
  EXPECT_EQ(stats().l1_hits, 1u);
}

TEST_F(TieredCacheTest, L2HitDecodesFillsL1AndTheNextHitSkipsL2) {
  const EntryPtr entry = make_entry(std::string(2048, 'r'));
  l2_->put_now(kKey, core::encode_entry(*entry), milliseconds(0));  // as another process would

  const EntryPtr first = get(kKey);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(*first, *entry);
  const EntryPtr second = get(kKey);
  EXPECT_EQ(second, first);  // the same decoded object, not a second decode

  const TieredStats s = stats();
  EXPECT_EQ(s.l1_misses, 1u);
  EXPECT_EQ(s.l1_hits, 1u);
  EXPECT_EQ(s.l2.hits, 1u);  // the second get never reached the L2
  EXPECT_EQ(s.l1_entries, 1u);
  EXPECT_GT(s.l1_bytes, 0u);
}

TEST_F(TieredCacheTest, CorruptL2EntryIsAMissLoggedCountedAndErased) {
  CapturedLog log;
  l2_->put_now(kKey, "LLMC-not-really-an-entry secret-looking-bytes", milliseconds(0));
  EXPECT_EQ(get(kKey), nullptr);
  EXPECT_FALSE(l2_->get_now(kKey).has_value());
  EXPECT_EQ(stats().corrupt, 1u);
  EXPECT_EQ(stats().backend_errors, 0u);
  EXPECT_THAT(log.text(), AllOf(HasSubstr(kKey), Not(HasSubstr("secret-looking-bytes"))));
}

TEST_F(TieredCacheTest, TruncatedEntryIsCorrupt) {
  const std::string encoded = core::encode_entry(*make_entry(std::string(4000, 'x')));
  l2_->put_now(kKey, encoded.substr(0, encoded.size() / 2), milliseconds(0));
  CapturedLog log;
  EXPECT_EQ(get(kKey), nullptr);
  EXPECT_EQ(stats().corrupt, 1u);
}

TEST_F(TieredCacheTest, ExpiredEntriesAreMissesInBothTiers) {
  const EntryPtr entry = make_entry("{}", /*ttl_ms=*/1000);
  run_blocking(cache_.put(kKey, entry, milliseconds(0)));  // L2 keeps it: the entry's ttl rules
  EXPECT_NE(get(kKey, kNow + 999), nullptr);
  EXPECT_EQ(get(kKey, kNow + 1000), nullptr);  // L1 drops it, L2 copy decodes as expired

  TieredCache cold_l1(l2_, 0, false);
  EXPECT_NE(run_blocking(cold_l1.get(kKey, kNow + 999)), nullptr);
  EXPECT_EQ(run_blocking(cold_l1.get(kKey, kNow + 1000)), nullptr);
}

TEST_F(TieredCacheTest, DisabledL1ReadsL2EveryTime) {
  TieredCache no_l1(l2_, 0, false);
  run_blocking(no_l1.put(kKey, make_entry(), milliseconds(0)));
  for (int i = 0; i < 3; ++i) EXPECT_NE(run_blocking(no_l1.get(kKey, kNow)), nullptr);
  const TieredStats s = run_blocking(no_l1.stats());
  EXPECT_EQ(s.l2.hits, 3u);
  EXPECT_EQ(s.l1_entries, 0u);
  EXPECT_EQ(s.l1_hits, 0u);
}

TEST_F(TieredCacheTest, L1IsBoundedByTheEntriesMemoryAndFallsBackToL2) {
  const EntryPtr entry = make_entry(std::string(800, 'a'));
  const std::uint64_t one =
      core::entry_memory_bytes(*entry) + (kKey + "1").size() + kLruEntryOverhead;
  TieredCache small(l2_, 2 * one, false);
  for (const char* suffix : {"1", "2", "3"}) {
    run_blocking(small.put(kKey + suffix, entry, milliseconds(0)));
  }
  TieredStats s = run_blocking(small.stats());
  EXPECT_EQ(s.l1_entries, 2u);
  EXPECT_EQ(s.l1_evictions, 1u);
  EXPECT_LE(s.l1_bytes, 2 * one);
  EXPECT_NE(run_blocking(small.get(kKey + "1", kNow)), nullptr);  // evicted from L1, still in L2
  EXPECT_EQ(run_blocking(small.stats()).l2.hits, 1u);
}

TEST_F(TieredCacheTest, ACompressibleEntryCountsItsDecodedSizeAgainstTheL1) {
  // The L1 holds decoded entries: a 256 KiB answer that zstd shrinks to a few hundred bytes
  // still takes 256 KiB of memory, so a 600 KiB L1 keeps two of them, not hundreds.
  const EntryPtr entry = make_entry(std::string(256 * 1024, 'a'));
  ASSERT_LT(core::encode_entry(*entry).size(), 4096u);
  TieredCache small(l2_, 600 * 1024, false);
  for (int i = 0; i < 5; ++i) {
    run_blocking(small.put(kKey + std::to_string(i), entry, milliseconds(0)));
  }
  const TieredStats s = run_blocking(small.stats());
  EXPECT_EQ(s.l1_entries, 2u);
  EXPECT_EQ(s.l1_evictions, 3u);
  EXPECT_LE(s.l1_bytes, 600u * 1024);
  EXPECT_EQ(s.l2.writes, 5u);  // all five still reached the L2
}

TEST_F(TieredCacheTest, EraseAndClearReachBothTiers) {
  for (const char* key : {"ns:a:1", "ns:a:2", "ns:b:1"}) {
    run_blocking(cache_.put(key, make_entry(), milliseconds(0)));
  }
  EXPECT_TRUE(run_blocking(cache_.erase("ns:b:1")));
  EXPECT_EQ(get("ns:b:1"), nullptr);
  EXPECT_EQ(run_blocking(cache_.clear("ns:a:")), 2u);
  EXPECT_EQ(get("ns:a:1"), nullptr);
  EXPECT_EQ(stats().l1_entries, 0u);
  EXPECT_EQ(stats().l2.entries, 0u);
}

TEST_F(TieredCacheTest, GraceReadReturnsAnExpiredEntryMarkedUntilTheGraceEnds) {
  const EntryPtr entry = make_entry("{}", /*ttl_ms=*/1000);
  run_blocking(cache_.put(kKey, entry, milliseconds(0)));
  const auto fresh = run_blocking(cache_.get(kKey, kNow + 999, 500));
  ASSERT_NE(fresh.entry, nullptr);
  EXPECT_FALSE(fresh.expired);

  const auto stale = run_blocking(cache_.get(kKey, kNow + 1200, 500));
  ASSERT_NE(stale.entry, nullptr);
  EXPECT_EQ(*stale.entry, *entry);
  EXPECT_TRUE(stale.expired);
  EXPECT_EQ(stale.expired_for_ms, 200);
  EXPECT_EQ(get(kKey, kNow + 1200), nullptr);  // the plain read still says miss

  EXPECT_NE(run_blocking(cache_.get(kKey, kNow + 1500, 500)).entry, nullptr);
  EXPECT_EQ(run_blocking(cache_.get(kKey, kNow + 1501, 500)).entry, nullptr);  // past the grace
}

TEST_F(TieredCacheTest, PruneDropsExpiredFromL1) {
  run_blocking(cache_.put("short", make_entry("{}", 10), milliseconds(10)));
  run_blocking(cache_.put("long", make_entry("{}", 0), milliseconds(0)));
  run_blocking(cache_.prune(kNow + 10));
  EXPECT_EQ(stats().l1_entries, 1u);
}

TEST(TieredCacheFailures, FailingBackendDegradesByDefault) {
  CapturedLog log;
  TieredCache cache(std::make_shared<FailingBackend>(), kMiB, /*strict=*/false);
  EXPECT_EQ(run_blocking(cache.get(kKey, kNow)), nullptr);
  EXPECT_NO_THROW(run_blocking(cache.put(kKey, make_entry(), milliseconds(0))));
  // The L1 still serves what this process stored.
  EXPECT_NE(run_blocking(cache.get(kKey, kNow)), nullptr);
  EXPECT_NO_THROW(run_blocking(cache.erase(kKey)));
  EXPECT_NO_THROW(run_blocking(cache.clear("")));
  EXPECT_NO_THROW(run_blocking(cache.prune(kNow)));
  const TieredStats s = run_blocking(cache.stats());
  EXPECT_EQ(s.backend_errors, 6u);  // get, put, erase, clear, prune, stats
  // Logged once, not once per failure.
  const std::string text = log.text();
  EXPECT_THAT(text, AllOf(HasSubstr("failing://"), HasSubstr("connection refused")));
  EXPECT_EQ(text.find("failed during"), text.rfind("failed during"));
}

TEST(TieredCacheFailures, StrictModeRaisesCacheError) {
  TieredCache cache(std::make_shared<FailingBackend>(), kMiB, /*strict=*/true);
  try {
    run_blocking(cache.get(kKey, kNow));
    ADD_FAILURE() << "no CacheError";
  } catch (const CacheError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("failing://"), HasSubstr("connection refused")));
  }
  EXPECT_THROW(run_blocking(cache.put(kKey, make_entry(), milliseconds(0))), CacheError);
  EXPECT_THROW(run_blocking(cache.prune(kNow)), CacheError);  // already a CacheError: kept
  EXPECT_THROW(run_blocking(cache.stats()), CacheError);
}

TEST(TieredCacheConcurrency, ThreadsSharingOneCacheSeeTheirOwnWrites) {
  auto cache = std::make_shared<TieredCache>(std::make_shared<MemoryBackend>(MemoryOptions{}),
                                             256 * 1024, false);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const std::string key = "t" + std::to_string(t) + ":" + std::to_string(i % 50);
        auto entry = make_entry(key);
        run_blocking(cache->put(key, entry, milliseconds(0)));
        const EntryPtr got = run_blocking(cache->get(key, kNow));
        if (got == nullptr || got->response != key) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "llmc-tiered-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  CacheRegistry registry_;
};

TEST_F(RegistryTest, SameUrlGivesTheSameInstance) {
  const std::string url = "sqlite://" + (dir_ / "shared.db").string();
  const auto a = registry_.open(CacheOptions{.url = url});
  const auto b = registry_.open(CacheOptions{.url = url});
  EXPECT_EQ(a, b);
  // Another spelling of the same file shares the opened backend.
  const auto c =
      registry_.open(CacheOptions{.url = "sqlite://" + (dir_ / "x" / ".." / "shared.db").string()});
  EXPECT_EQ(c, a);
  EXPECT_NE(registry_.open(CacheOptions{.url = "sqlite://" + (dir_ / "other.db").string()}), a);
}

TEST_F(RegistryTest, StrictAndL1SizeGetTheirOwnTieringOverOneBackend) {
  const std::string url = "sqlite://" + (dir_ / "shared.db").string();
  const auto lenient = registry_.open(CacheOptions{.url = url});
  const auto strict = registry_.open(CacheOptions{.url = url, .strict = true});
  EXPECT_NE(lenient, strict);
  EXPECT_TRUE(strict->strict());
  EXPECT_EQ(lenient->backend(), strict->backend());
}

TEST_F(RegistryTest, EnvironmentVariableSelectsTheBackend) {
  const std::string url = "sqlite://" + (dir_ / "from-env.db").string();
  ::setenv("LLM_CACHE_REDIS_URL", url.c_str(), 1);
  const auto from_env = registry_.open(CacheOptions{});
  ::unsetenv("LLM_CACHE_REDIS_URL");
  EXPECT_EQ(from_env, registry_.open(CacheOptions{.url = url}));
  EXPECT_EQ(from_env->describe(), url);
}

TEST_F(RegistryTest, EntriesWrittenThroughOneCallerAreSeenByAnother) {
  const std::string url = "memory://?max_bytes=12345678";
  run_blocking(registry_.open(CacheOptions{.url = url})->put(kKey, make_entry(), milliseconds(0)));
  EXPECT_NE(run_blocking(registry_.open(CacheOptions{.url = url})->get(kKey, kNow)), nullptr);
}

TEST_F(RegistryTest, BadUrlIsAConfigurationError) {
  EXPECT_THROW(registry_.open(CacheOptions{.url = "sqlite://relative.db"}), ConfigurationError);
}

TEST_F(RegistryTest, UnopenableFileDegradesOrRaisesWhenStrict) {
  const fs::path bad = dir_ / "garbage.db";
  std::ofstream(bad) << std::string(4096, 'g');
  const std::string url = "sqlite://" + bad.string();
  EXPECT_THROW(registry_.open(CacheOptions{.url = url, .strict = true}), CacheError);

  CapturedLog log;
  const auto degraded = registry_.open(CacheOptions{.url = url});
  EXPECT_EQ(run_blocking(degraded->get(kKey, kNow)), nullptr);
  EXPECT_EQ(run_blocking(degraded->stats()).backend_errors, 2u);
  EXPECT_THAT(log.text(), HasSubstr("llm-caching cache clear"));
}

}  // namespace
}  // namespace llm_caching::cache

// The Backend contract (cache/backend.hpp) every local backend keeps, run against each of them:
// memory://, sqlite:// and dir://. Backend-specific behaviour (eviction, WAL, the dir:// files)
// has its own test file; Redis runs this contract's cases in tests/integration/.
#include "cache/cache_url.hpp"
#include "cache/run_blocking.hpp"
#include "cache/tiered_cache.hpp"
#include "core/entry.hpp"
#include "llm_caching/cache_key.hpp"

#include "support/test_env.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <thread>

namespace llm_caching::cache {
namespace {

using std::chrono::milliseconds;

struct BackendKind {
  std::string name;
  /// The URL for a store under `dir` (a fresh temp dir).
  std::function<std::string(const std::filesystem::path& dir)> url;
  /// Whether a put's TTL expires the value (dir:// entries are fixtures and never expire).
  bool honours_ttl = true;
};

std::ostream& operator<<(std::ostream& out, const BackendKind& kind) {
  return out << kind.name;
}

std::string key_of(std::string_view ns, char digit) {
  return storage_key(ns, std::string(64, digit));
}

std::string entry_bytes(std::string_view answer) {
  core::CacheEntry entry;
  entry.provider = "openai";
  entry.model = "gpt-4o-mini";
  entry.response = fmt::format(R"({{"choices":[{{"message":{{"content":"{}"}}}}]}})", answer);
  entry.usage.input_tokens = 3;
  entry.cost_nano_usd = 42;
  return core::encode_entry(entry);
}

class BackendContract : public ::testing::TestWithParam<BackendKind> {
 protected:
  llmc_test::TempDir dir;
  std::shared_ptr<Backend> backend = open_backend(parse_cache_url(GetParam().url(dir.path())));

  template <class T>
  T run(asio::awaitable<T> task) {
    return run_blocking(std::move(task));
  }
};

TEST_P(BackendContract, PutThenGetGivesTheEntryBackAndAnAbsentKeyMisses) {
  const std::string key = key_of("tests", 'a');
  run(backend->put(key, entry_bytes("hello"), milliseconds(0)));
  const auto got = run(backend->get(key));
  ASSERT_TRUE(got.has_value());
  const auto decoded = core::decode_entry(*got);
  ASSERT_TRUE(std::holds_alternative<core::CacheEntry>(decoded));
  const auto& entry = std::get<core::CacheEntry>(decoded);
  EXPECT_EQ(entry.model, "gpt-4o-mini");
  EXPECT_EQ(entry.cost_nano_usd, 42);
  EXPECT_NE(entry.response.find("hello"), std::string::npos);
  EXPECT_EQ(run(backend->get(key_of("tests", 'b'))), std::nullopt);
}

TEST_P(BackendContract, AnyBytesUnderAnyKeyRoundTripExactly) {
  const std::string binary("\0\x01\xff zero and high bytes \n", 25);
  for (const std::string key : {"k1", "a key with spaces/and/slashes", "../../escape", ""}) {
    run(backend->put(key, binary + key, milliseconds(0)));
  }
  for (const std::string key : {"k1", "a key with spaces/and/slashes", "../../escape", ""}) {
    EXPECT_EQ(run(backend->get(key)), binary + key) << key;
  }
}

TEST_P(BackendContract, PutReplacesEraseRemovesAndSaysWhetherItDid) {
  const std::string key = key_of("default", 'c');
  run(backend->put(key, entry_bytes("first"), milliseconds(0)));
  run(backend->put(key, entry_bytes("second"), milliseconds(0)));
  EXPECT_NE(run(backend->get(key))->find("second"), std::string::npos);
  EXPECT_TRUE(run(backend->erase(key)));
  EXPECT_FALSE(run(backend->erase(key)));
  EXPECT_EQ(run(backend->get(key)), std::nullopt);
}

TEST_P(BackendContract, ClearTakesAPrefixAndListKeysListsWhatIsStored) {
  run(backend->put(key_of("one", '1'), entry_bytes("a"), milliseconds(0)));
  run(backend->put(key_of("one", '2'), entry_bytes("b"), milliseconds(0)));
  run(backend->put(key_of("two", '3'), entry_bytes("c"), milliseconds(0)));
  std::vector<std::string> listed;
  std::string cursor;
  do {
    Backend::KeyPage page = run(backend->list_keys("llm-caching:v1:", cursor, 2));
    listed.insert(listed.end(), page.keys.begin(), page.keys.end());
    cursor = page.cursor;
  } while (!cursor.empty());
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(listed,
            (std::vector<std::string>{key_of("one", '1'), key_of("one", '2'), key_of("two", '3')}));
  EXPECT_EQ(run(backend->list_keys("llm-caching:v1:two:", "", 100)).keys,
            std::vector<std::string>{key_of("two", '3')});

  EXPECT_EQ(run(backend->clear("llm-caching:v1:one:")), 2u);
  EXPECT_EQ(run(backend->get(key_of("one", '1'))), std::nullopt);
  EXPECT_TRUE(run(backend->get(key_of("two", '3'))).has_value());
  EXPECT_EQ(run(backend->stats()).entries, 1u);
}

TEST_P(BackendContract, ATtlExpiresTheValueWhereTheBackendKeepsTtls) {
  const std::string key = key_of("ttl", 'd');
  run(backend->put(key, entry_bytes("short"), milliseconds(1)));
  std::this_thread::sleep_for(milliseconds(5));
  EXPECT_EQ(run(backend->get(key)).has_value(), !GetParam().honours_ttl);
  run(backend->put(key_of("ttl", 'e'), entry_bytes("never"), milliseconds(-1)));
  EXPECT_EQ(run(backend->get(key_of("ttl", 'e'))), std::nullopt);  // negative: nothing stored
}

TEST_P(BackendContract, ALockIsHeldByOneTokenUntilItsHolderUnlocks) {
  const std::string lock = TieredCache::lock_key(key_of("locks", 'f'));
  EXPECT_TRUE(run(backend->try_lock(lock, "token-a", milliseconds(60'000))));
  EXPECT_FALSE(run(backend->try_lock(lock, "token-b", milliseconds(60'000))));
  run(backend->unlock(lock, "token-b"));  // not its holder: changes nothing
  EXPECT_FALSE(run(backend->try_lock(lock, "token-b", milliseconds(60'000))));
  run(backend->unlock(lock, "token-a"));
  EXPECT_TRUE(run(backend->try_lock(lock, "token-b", milliseconds(60'000))));
  run(backend->unlock(lock, "token-b"));
  // The lock is no entry: listing and stats do not see it.
  EXPECT_TRUE(run(backend->list_keys("llm-caching:v1:", "", 100)).keys.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Local, BackendContract,
    ::testing::Values(
        BackendKind{"memory", [](const auto&) { return std::string("memory://"); }},
        BackendKind{"sqlite", [](const auto& d) { return "sqlite://" + (d / "c.db").string(); }},
        BackendKind{"dir", [](const auto& d) { return "dir://" + (d / "cache").string(); },
                    /*honours_ttl=*/false}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace llm_caching::cache

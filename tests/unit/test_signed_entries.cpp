// Signed entries (core/entry_signature.hpp, docs/SECURITY-MODEL.md "Poisoned caches"): the MAC
// itself, pure; the tiers refusing what no key of theirs signed, over the memory, SQLite and
// dir:// backends; where the keys come from. Redis: tests/integration/test_signed_entries_redis.
#include "cache/dir_backend.hpp"
#include "cache/memory_backend.hpp"
#include "cache/run_blocking.hpp"
#include "cache/signing_keys.hpp"
#include "cache/sqlite_backend.hpp"
#include "cache/tiered_cache.hpp"
#include "core/entry.hpp"
#include "core/entry_signature.hpp"
#include "llm_caching/errors.hpp"
#include "support/test_env.hpp"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

namespace llm_caching {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kKey = "llm-caching:v1:default:" + std::string(64, 'a');
const std::string kOtherKey = "llm-caching:v1:default:" + std::string(64, 'b');
const std::string kSecret = "first-signing-key-0123456789";
const std::string kNewSecret = "second-signing-key-9876543210";
constexpr std::int64_t kNow = 1'700'000'000'000;

core::CacheEntry sample_entry(std::string response = R"({"id":"chatcmpl-1","choices":[]})") {
  core::CacheEntry entry;
  entry.provider = "openai";
  entry.model = "gpt-4o-mini";
  entry.created_at_ms = kNow;
  entry.response = std::move(response);
  entry.usage.input_tokens = 12;
  entry.usage.output_tokens = 3;
  entry.cost_nano_usd = 4200;
  return entry;
}

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

// ---- the MAC --------------------------------------------------------------------------------

TEST(EntrySignature, ASignedEntryChecksUnderItsKeyAndStillDecodes) {
  const std::string signed_bytes =
      core::sign_entry(core::encode_entry(sample_entry()), kKey, kSecret);
  EXPECT_EQ(core::check_signature(signed_bytes, kKey, {kSecret, ""}), core::SignatureCheck::valid);
  auto decoded = core::decode_entry(signed_bytes);  // a reader without the key reads it
  ASSERT_TRUE(std::holds_alternative<core::CacheEntry>(decoded));
  EXPECT_EQ(std::get<core::CacheEntry>(decoded), sample_entry());
}

TEST(EntrySignature, ALargeCompressedEntrySignsToo) {
  const std::string big(20000, 'x');
  const std::string signed_bytes =
      core::sign_entry(core::encode_entry(sample_entry(big)), kKey, kSecret);
  EXPECT_EQ(core::check_signature(signed_bytes, kKey, {kSecret, ""}), core::SignatureCheck::valid);
  EXPECT_EQ(std::get<core::CacheEntry>(core::decode_entry(signed_bytes)).response, big);
}

TEST(EntrySignature, UnsignedForgedMovedOrAlteredEntriesAreRefused) {
  const core::SigningKeys keys{kSecret, ""};
  const std::string plain = core::encode_entry(sample_entry());
  EXPECT_EQ(core::check_signature(plain, kKey, keys), core::SignatureCheck::unsigned_entry);
  // Signed by someone with another key: a poisoner who knows the format but not the key.
  EXPECT_EQ(
      core::check_signature(core::sign_entry(plain, kKey, "not-our-key-000000000"), kKey, keys),
      core::SignatureCheck::wrong_mac);
  // Our own signature, copied under another key: refused, as the key is covered.
  const std::string ours = core::sign_entry(plain, kKey, kSecret);
  EXPECT_EQ(core::check_signature(ours, kOtherKey, keys), core::SignatureCheck::wrong_mac);
  // Any byte changed, in the header, payload or MAC.
  for (const std::size_t at : {std::size_t{4}, std::size_t{20}, ours.size() - 1}) {
    std::string altered = ours;
    altered[at] = static_cast<char>(altered[at] ^ 0x01);
    EXPECT_NE(core::check_signature(altered, kKey, keys), core::SignatureCheck::valid) << at;
  }
  // A signed flag on bytes too short to hold a MAC.
  std::string short_bytes = plain.substr(0, core::kEntryHeaderSize);
  short_bytes[5] = static_cast<char>(core::kEntryFlagSigned);
  EXPECT_EQ(core::check_signature(short_bytes, kKey, keys), core::SignatureCheck::unsigned_entry);
  EXPECT_EQ(std::get<core::DecodeError>(core::decode_entry(short_bytes)),
            core::DecodeError::truncated);
}

TEST(EntrySignature, ThePreviousKeyIsAcceptedDuringARotation) {
  const std::string old_signed =
      core::sign_entry(core::encode_entry(sample_entry()), kKey, kSecret);
  EXPECT_EQ(core::check_signature(old_signed, kKey, {kNewSecret, kSecret}),
            core::SignatureCheck::valid_previous);
  EXPECT_EQ(core::check_signature(old_signed, kKey, {kNewSecret, ""}),
            core::SignatureCheck::wrong_mac);
}

TEST(EntrySignature, TheMacComesOffAndGoesBackOn) {
  const std::string plain = core::encode_entry(sample_entry());
  const std::string signed_bytes = core::sign_entry(plain, kKey, kSecret);
  EXPECT_EQ(core::entry_mac(plain), "");
  EXPECT_EQ(core::entry_mac(signed_bytes).size(), core::kEntryMacBytes);
  EXPECT_EQ(core::unsigned_entry(signed_bytes), plain);
  EXPECT_EQ(core::attach_mac(plain, core::entry_mac(signed_bytes)), signed_bytes);
}

// ---- the tiers ------------------------------------------------------------------------------

/// A cache over `backend` with signing keys, as CacheRegistry::open makes one.
std::shared_ptr<cache::TieredCache> signed_cache(std::shared_ptr<cache::Backend> backend,
                                                 core::SigningKeys keys) {
  auto cache = std::make_shared<cache::TieredCache>(std::move(backend), 64 * kMiB, false);
  cache->set_signing_keys(std::move(keys));
  return cache;
}

class SignedTiers : public ::testing::TestWithParam<std::string> {
 protected:
  llmc_test::TempDir dir_;
  std::shared_ptr<cache::Backend> backend_ = open();

  std::shared_ptr<cache::Backend> open() {
    if (GetParam() == "sqlite") {
      return std::make_shared<cache::SqliteBackend>(SqliteOptions{.path = dir_.path() / "c.db"});
    }
    if (GetParam() == "dir") {
      return std::make_shared<cache::DirBackend>(DirOptions{.path = dir_.path() / "recorded"});
    }
    return std::make_shared<cache::MemoryBackend>(MemoryOptions{});
  }
  void write_raw(const std::string& bytes) {
    cache::run_blocking(backend_->put(kKey, bytes, milliseconds(0)));
  }
  bool stored() { return cache::run_blocking(backend_->get(kKey)).has_value(); }
};

TEST_P(SignedTiers, AnEntryWrittenWithTheKeyIsReadBackByAnotherProcess) {
  auto writer = signed_cache(backend_, {kSecret, ""});
  cache::run_blocking(
      writer->put(kKey, std::make_shared<core::CacheEntry>(sample_entry()), milliseconds(0)));
  auto reader = signed_cache(backend_, {kSecret, ""});  // a cold L1: the L2's bytes are checked
  const auto got = cache::run_blocking(reader->get(kKey, kNow));
  ASSERT_NE(got, nullptr);
  EXPECT_THAT(got->response, HasSubstr("chatcmpl-1"));  // dir:// gives it back in canonical form
  EXPECT_EQ(reader->entry_refusals().wrong_mac + reader->entry_refusals().unsigned_entry, 0u);
}

TEST_P(SignedTiers, AnUnsignedEntryIsAMissCountedLoggedAndDeleted) {
  write_raw(core::encode_entry(sample_entry(R"({"poisoned":true})")));
  CapturedLog log;
  auto cache = signed_cache(backend_, {kSecret, ""});
  EXPECT_EQ(cache::run_blocking(cache->get(kKey, kNow)), nullptr);
  EXPECT_EQ(cache->entry_refusals().unsigned_entry, 1u);
  EXPECT_THAT(log.text(), HasSubstr(kKey));
  EXPECT_THAT(log.text(), HasSubstr("unsigned"));
  EXPECT_THAT(log.text(), Not(HasSubstr(kSecret)));
  // dir:// keeps its files (a suite commits them); every other store loses the entry.
  EXPECT_EQ(stored(), GetParam() == "dir");
  const cache::TieredStats stats = cache::run_blocking(cache->stats());
  EXPECT_EQ(stats.refused_unsigned, 1u);
}

TEST_P(SignedTiers, AnEntrySignedWithAnotherKeyIsAMiss) {
  auto poisoner = signed_cache(backend_, {"the-poisoners-own-key-123", ""});
  cache::run_blocking(
      poisoner->put(kKey, std::make_shared<core::CacheEntry>(sample_entry(R"({"poisoned":true})")),
                    milliseconds(0)));
  auto cache = signed_cache(backend_, {kSecret, ""});
  EXPECT_EQ(cache::run_blocking(cache->get(kKey, kNow)), nullptr);
  EXPECT_EQ(cache->entry_refusals().wrong_mac, 1u);
}

TEST_P(SignedTiers, ARotationReadsTheOldKeysEntriesAndSignsWithTheNewOne) {
  auto before = signed_cache(backend_, {kSecret, ""});
  cache::run_blocking(
      before->put(kKey, std::make_shared<core::CacheEntry>(sample_entry()), milliseconds(0)));
  auto during = signed_cache(backend_, {kNewSecret, kSecret});
  ASSERT_NE(cache::run_blocking(during->get(kKey, kNow)), nullptr);
  // A write during the rotation is signed with the new key: readable once the old one is gone.
  cache::run_blocking(
      during->put(kOtherKey, std::make_shared<core::CacheEntry>(sample_entry()), milliseconds(0)));
  auto after = signed_cache(backend_, {kNewSecret, ""});
  EXPECT_NE(cache::run_blocking(after->get(kOtherKey, kNow)), nullptr);
  EXPECT_EQ(cache::run_blocking(after->get(kKey, kNow)), nullptr);  // the old key's entry
  EXPECT_EQ(after->entry_refusals().wrong_mac, 1u);
}

TEST_P(SignedTiers, WithoutAKeySignedEntriesAreStillRead) {
  auto writer = signed_cache(backend_, {kSecret, ""});
  cache::run_blocking(
      writer->put(kKey, std::make_shared<core::CacheEntry>(sample_entry()), milliseconds(0)));
  auto unsigned_reader = signed_cache(backend_, {});
  EXPECT_NE(cache::run_blocking(unsigned_reader->get(kKey, kNow)), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Backends, SignedTiers, ::testing::Values("memory", "sqlite", "dir"));

TEST(SignedDirFiles, AHandEditedAnswerIsRefusedAndTheFileKept) {
  llmc_test::TempDir dir;
  auto backend = std::make_shared<cache::DirBackend>(DirOptions{.path = dir.path()});
  auto cache = signed_cache(backend, {kSecret, ""});
  cache::run_blocking(
      cache->put(kKey, std::make_shared<core::CacheEntry>(sample_entry()), milliseconds(0)));
  const auto file = dir.path() / "default" / (std::string(64, 'a') + ".json");
  std::stringstream text;
  text << std::ifstream(file).rdbuf();
  std::string edited = text.str();
  ASSERT_THAT(edited, HasSubstr("\"mac\""));
  ASSERT_THAT(edited, HasSubstr("chatcmpl-1"));
  edited.replace(edited.find("chatcmpl-1"), 10, "chatcmpl-X");
  std::ofstream(file, std::ios::trunc) << edited;

  auto reader = signed_cache(backend, {kSecret, ""});
  EXPECT_EQ(cache::run_blocking(reader->get(kKey, kNow)), nullptr);
  EXPECT_EQ(reader->entry_refusals().wrong_mac, 1u);
  EXPECT_TRUE(std::filesystem::exists(file));
}

// ---- where the keys come from -----------------------------------------------------------------

cache::GetEnv env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
    const auto found = vars.find(name);
    if (found == vars.end() || found->second.empty()) return std::nullopt;
    return found->second;
  };
}

std::string configuration_error(const CacheOptions& options, const cache::GetEnv& env) {
  try {
    cache::resolve_signing_keys(options, env);
  } catch (const ConfigurationError& e) {
    return e.what();
  }
  return "no ConfigurationError";
}

TEST(SigningKeys, FromTheEnvironmentOrAFile) {
  EXPECT_FALSE(cache::resolve_signing_keys({}, env_of({})).enabled());
  const auto keys = cache::resolve_signing_keys(
      {},
      env_of({{"LLM_CACHE_SIGNING_KEY", kNewSecret}, {"LLM_CACHE_SIGNING_KEY_PREVIOUS", kSecret}}));
  EXPECT_EQ(keys.current, kNewSecret);
  EXPECT_EQ(keys.previous, kSecret);

  llmc_test::TempDir dir;
  std::ofstream(dir.file("key")) << kSecret << "\n";
  const auto from_file =
      cache::resolve_signing_keys({}, env_of({{"LLM_CACHE_SIGNING_KEY_FILE", dir.file("key")}}));
  EXPECT_EQ(from_file.current, kSecret);  // the file's trailing newline is not part of the key
  // Options win over the environment.
  const auto from_options = cache::resolve_signing_keys(
      CacheOptions{.signing_key = kNewSecret}, env_of({{"LLM_CACHE_SIGNING_KEY", kSecret}}));
  EXPECT_EQ(from_options.current, kNewSecret);
}

TEST(SigningKeys, MistakesAreConfigurationErrorsThatNeverShowTheKey) {
  const std::string both = configuration_error(
      {}, env_of({{"LLM_CACHE_SIGNING_KEY", kSecret}, {"LLM_CACHE_SIGNING_KEY_FILE", "/x"}}));
  EXPECT_THAT(both, HasSubstr("LLM_CACHE_SIGNING_KEY_FILE"));
  EXPECT_THAT(both, Not(HasSubstr(kSecret)));
  const std::string short_key =
      configuration_error({}, env_of({{"LLM_CACHE_SIGNING_KEY", "hunter2-short"}}));
  EXPECT_THAT(short_key, HasSubstr("at least 16"));
  EXPECT_THAT(short_key, Not(HasSubstr("hunter2")));
  EXPECT_THAT(configuration_error({}, env_of({{"LLM_CACHE_SIGNING_KEY_PREVIOUS", kSecret}})),
              HasSubstr("without LLM_CACHE_SIGNING_KEY"));
  EXPECT_THAT(
      configuration_error({}, env_of({{"LLM_CACHE_SIGNING_KEY_FILE", "/nonexistent/llmc-key"}})),
      HasSubstr("cannot read the key file /nonexistent/llmc-key"));
}

}  // namespace
}  // namespace llm_caching

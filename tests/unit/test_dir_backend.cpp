// DirBackend (`dir://`) and its documents: the files a test suite commits. Readable, stable
// bytes, nothing written on read, atomic writes, redaction, and a broken file named in errors.
// The contract it shares with the other backends is in test_backend_contract.cpp.
#include "cache/cache_url.hpp"
#include "cache/dir_backend.hpp"
#include "cache/dir_document.hpp"
#include "cache/tiered_cache.hpp"
#include "core/entry.hpp"
#include "core/sha256.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"

#include "support/files.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace llm_caching::cache {
namespace {

using llmc_test::slurp;
using llmc_test::tree_hashes;

namespace fs = std::filesystem;
using std::chrono::milliseconds;

const std::string kKey = storage_key("tests", std::string(64, 'a'));

core::CacheEntry sample_entry() {
  core::CacheEntry entry;
  entry.provider = "openai";
  entry.model = "gpt-4o-mini";
  entry.created_at_ms = 1'700'000'000'000;
  entry.ttl_ms = 3'600'000;
  entry.response =
      R"({"id":"chatcmpl-1","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"}}],)"
      R"("usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7},"temperature":0.1})";
  entry.usage.input_tokens = 5;
  entry.usage.output_tokens = 2;
  entry.cost_nano_usd = 1950;
  return entry;
}

core::CacheEntry decoded(const std::optional<std::string>& bytes) {
  EXPECT_TRUE(bytes.has_value());
  auto result = core::decode_entry(bytes.value_or(""));
  EXPECT_TRUE(std::holds_alternative<core::CacheEntry>(result));
  return std::get<core::CacheEntry>(result);
}

struct DirBackendTest : ::testing::Test {
  llmc_test::TempDir tmp;
  fs::path root = tmp.path() / "llm-cache";
  DirBackend backend{DirOptions{.path = root}};
};

TEST_F(DirBackendTest, AnEntryIsOneReadableFileInItsNamespaceFolder) {
  backend.put_now(kKey, core::encode_entry(sample_entry()));
  const fs::path file = root / "tests" / (std::string(64, 'a') + ".json");
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(backend.file_of(kKey), file);
  const std::string text = slurp(file);
  // Pretty, sorted, the answer as JSON; the volatile fields (time of recording, expiry) absent.
  EXPECT_EQ(text.substr(0, 40), "{\n  \"cost_nano_usd\": 1950,\n  \"cost_usd\":") << text;
  EXPECT_NE(text.find("        \"message\": {\n          \"content\": \"Hi!\","), std::string::npos)
      << text;
  EXPECT_NE(text.find("\"model\": \"gpt-4o-mini\""), std::string::npos);
  EXPECT_NE(text.find("\"input_tokens\": 5"), std::string::npos);
  EXPECT_EQ(text.find("created"), std::string::npos);
  EXPECT_EQ(text.find("1700000000000"), std::string::npos);
  EXPECT_EQ(text.find("expires"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');

  // Read back: the same answer, usage and cost; it never expires.
  const core::CacheEntry back = decoded(backend.get_now(kKey));
  EXPECT_EQ(back.provider, "openai");
  EXPECT_EQ(back.usage.input_tokens, 5);
  EXPECT_EQ(back.cost_nano_usd, 1950);
  EXPECT_EQ(back.ttl_ms, 0);
  EXPECT_EQ(canonical_json(parse_json_exact(back.response)),
            canonical_json(parse_json_exact(sample_entry().response)));
}

TEST_F(DirBackendTest, RecordingTheSameAnswerAgainWritesTheSameBytes) {
  backend.put_now(kKey, core::encode_entry(sample_entry()));
  const std::string first = slurp(backend.file_of(kKey));
  core::CacheEntry later = sample_entry();
  later.created_at_ms += 86'400'000;  // recorded a day later, with another TTL
  later.ttl_ms = 0;
  // Same answer, other key order and spacing (a provider's whitespace is not the answer).
  later.response = R"({"temperature": 0.1, "usage":{"total_tokens":7,"completion_tokens":2,)"
                   R"("prompt_tokens":5}, "choices":[{"message":{"content":"Hi!","role":)"
                   R"("assistant"},"index":0}],"id":"chatcmpl-1"})";
  DirBackend other{DirOptions{.path = root}};  // another process's backend
  other.put_now(kKey, core::encode_entry(later));
  EXPECT_EQ(slurp(backend.file_of(kKey)), first);
  // And what a replay returns, stored again, is the same file too.
  backend.put_now(kKey, *backend.get_now(kKey));
  EXPECT_EQ(slurp(backend.file_of(kKey)), first);
}

TEST_F(DirBackendTest, ReadsLeaveTheTreeByteIdenticalAndWriteNothing) {
  backend.put_now(kKey, core::encode_entry(sample_entry()));
  backend.put_now(storage_key("other", std::string(64, 'b')), core::encode_entry(sample_entry()));
  const auto before = tree_hashes(root);
  const auto mtime = fs::last_write_time(backend.file_of(kKey));
  for (int i = 0; i < 3; ++i) {
    DirBackend reader{DirOptions{.path = root}};
    EXPECT_TRUE(reader.get_now(kKey).has_value());
    EXPECT_FALSE(reader.get_now(storage_key("tests", std::string(64, 'c'))).has_value());
    EXPECT_EQ(reader.stats_now().entries, 2u);
  }
  EXPECT_EQ(tree_hashes(root), before);
  EXPECT_EQ(fs::last_write_time(backend.file_of(kKey)), mtime);
}

TEST_F(DirBackendTest, AStreamIsKeptAsItsListOfEventsAndReplayedAsTheSameText) {
  core::CacheEntry entry = sample_entry();
  // Each event's JSON comes back in RFC 8785 form (members sorted, no spaces): the same events.
  entry.stream =
      "event: message_start\ndata: {\"n\":1,\"type\":\"message_start\"}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      "data: [DONE]\n\n";
  backend.put_now(kKey, core::encode_entry(entry));
  const std::string text = slurp(backend.file_of(kKey));
  EXPECT_NE(text.find("\"stream\": [\n    {\n      \"data\": {\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\"event\": \"message_start\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"data\": \"[DONE]\",\n      \"data_as\": \"text\""), std::string::npos);
  EXPECT_EQ(decoded(backend.get_now(kKey)).stream, entry.stream);
}

TEST_F(DirBackendTest, BodiesThatAreNotJsonOrNotUtf8RoundTripExactly) {
  core::CacheEntry entry = sample_entry();
  entry.response = "plain text, not JSON";
  entry.stream = std::string("id: 7\ndata: x\r\n\r\n\xff\xfe", 20);  // no event list for this one
  backend.put_now(kKey, core::encode_entry(entry));
  const core::CacheEntry back = decoded(backend.get_now(kKey));
  EXPECT_EQ(back.response, entry.response);
  EXPECT_EQ(back.stream, entry.stream);
  EXPECT_NE(slurp(backend.file_of(kKey)).find("\"stream_as\": \"base64\""), std::string::npos);
}

TEST_F(DirBackendTest, ABrokenFileIsAnErrorNamingTheFileAndAMissForDegradingTiers) {
  backend.put_now(kKey, core::encode_entry(sample_entry()));
  const fs::path file = backend.file_of(kKey);
  std::string text = slurp(file);
  std::ofstream(file, std::ios::trunc) << text.substr(0, text.size() / 2);  // truncated
  try {
    backend.get_now(kKey);
    ADD_FAILURE() << "no error";
  } catch (const CacheError& e) {
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  EXPECT_NE(backend.unreadable_reason(kKey).find(file.string()), std::string::npos);
  EXPECT_EQ(backend.unreadable_reason(storage_key("tests", std::string(64, 'd'))), "");

  auto shared = std::make_shared<DirBackend>(DirOptions{.path = root});
  TieredCache degrading(shared, 0, /*strict=*/false);
  EXPECT_EQ(run_blocking(degrading.get(kKey, 0)), nullptr);
  EXPECT_TRUE(fs::exists(file));  // a hand-broken file is the user's to fix: never deleted
  TieredCache strict(shared, 0, /*strict=*/true);
  EXPECT_THROW(run_blocking(strict.get(kKey, 0)), CacheError);

  // A hand edit that adds a field, or a file moved under another key's name, is named too.
  std::ofstream(file, std::ios::trunc) << text.substr(0, 1) << "\"note\": 1," << text.substr(1);
  EXPECT_NE(backend.unreadable_reason(kKey).find("unknown field \"note\""), std::string::npos);
  const std::string other_key = storage_key("tests", std::string(64, 'e'));
  fs::copy_file(backend.file_of(kKey), backend.file_of(other_key));
  std::ofstream(backend.file_of(kKey), std::ios::trunc) << text;
  fs::copy_file(backend.file_of(kKey), backend.file_of(other_key),
                fs::copy_options::overwrite_existing);
  EXPECT_NE(backend.unreadable_reason(other_key).find("another key"), std::string::npos);
}

TEST_F(DirBackendTest, RedactionScrubsMatchesFromTheFileAndABadPatternIsNamedNotQuoted) {
  DirBackend redacting{DirOptions{.path = root, .redact = {"sk-[A-Za-z0-9]+", "Bearer \\S+"}}};
  core::CacheEntry entry = sample_entry();
  entry.response = R"({"content":"use key sk-abc123XYZ and Bearer tok.en-1 now"})";
  redacting.put_now(kKey, core::encode_entry(entry));
  const std::string text = slurp(redacting.file_of(kKey));
  EXPECT_EQ(text.find("sk-abc123XYZ"), std::string::npos) << text;
  EXPECT_EQ(text.find("tok.en-1"), std::string::npos) << text;
  EXPECT_NE(text.find("use key [REDACTED] and [REDACTED] now"), std::string::npos) << text;

  try {
    DirBackend bad{DirOptions{.path = root, .redact = {"ok", "secret-(unclosed"}}};
    ADD_FAILURE() << "no error";
  } catch (const ConfigurationError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("LLM_CACHE_REDACT: pattern 2 of 2"), std::string::npos) << what;
    EXPECT_EQ(what.find("secret-(unclosed"), std::string::npos) << what;
  }
  // From the environment, one pattern a line, where a URL is resolved.
  llmc_test::ScopedEnv env("LLM_CACHE_REDACT", "first\nsecond\r\n\n");
  BackendConfig config = parse_cache_url("dir://x");
  apply_environment(config);
  EXPECT_EQ(std::get<DirOptions>(config).redact, (std::vector<std::string>{"first", "second"}));
}

TEST_F(DirBackendTest, NamespacesNeverEscapeTheTreeOrNameAHiddenFolder) {
  EXPECT_EQ(dir_folder_name("tests"), "tests");
  EXPECT_EQ(dir_folder_name("a.b-c_d"), "a.b-c_d");
  EXPECT_EQ(dir_folder_name("../up"), "%2E.%2Fup");
  EXPECT_EQ(dir_folder_name(".hidden"), "%2Ehidden");
  const std::string key = storage_key("../up", std::string(64, 'f'));
  backend.put_now(key, core::encode_entry(sample_entry()));
  EXPECT_TRUE(fs::exists(root / "%2E.%2Fup" / (std::string(64, 'f') + ".json")));
  EXPECT_EQ(backend.keys_now(""), std::vector<std::string>{key});
  EXPECT_EQ(backend.clear_now("llm-caching:v1:../up:"), 1u);
}

TEST_F(DirBackendTest, ARelativePathIsTakenFromTheWorkingDirectory) {
  const fs::path old = fs::current_path();
  fs::current_path(tmp.path());
  const BackendConfig config = parse_cache_url("dir://tests/llm-cache");
  auto opened = open_backend(config);
  fs::current_path(old);
  EXPECT_EQ(opened->describe(), "dir://" + (tmp.path() / "tests" / "llm-cache").string());
  EXPECT_TRUE(fs::is_directory(tmp.path() / "tests" / "llm-cache"));
  EXPECT_THROW(parse_cache_url("dir://"), ConfigurationError);
  EXPECT_THROW(parse_cache_url("dir://x?max_bytes=1"), ConfigurationError);
}

TEST_F(DirBackendTest, ThreadsWritingOneKeyLeaveOneWholeFileAndNoTemporaryFiles) {
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      DirBackend mine{DirOptions{.path = root}};
      for (int i = 0; i < 50; ++i) {
        core::CacheEntry entry = sample_entry();
        entry.cost_nano_usd = t * 1000 + i;
        mine.put_now(kKey, core::encode_entry(entry));
        EXPECT_TRUE(mine.get_now(kKey).has_value());  // never a partial file
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(tree_hashes(root).size(), 1u);  // the entry; no .tmp file left behind
  EXPECT_EQ(backend.stats_now().entries, 1u);
}

}  // namespace
}  // namespace llm_caching::cache

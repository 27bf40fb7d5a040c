// The walk a replay miss makes for its nearest entry (TieredCache::recorded_neighbours): bounded
// (entries and pages), the missed key and entries without a request left out, unreadable and
// refused entries skipped without being deleted; and how dir:// shows an entry's request
// (reviewable, redacted, read back to the same bytes).
#include "cache/dir_backend.hpp"
#include "cache/dir_document.hpp"
#include "cache/run_blocking.hpp"
#include "cache/sqlite_backend.hpp"
#include "cache/tiered_cache.hpp"
#include "core/entry.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace llm_caching::cache {
namespace {

using std::chrono::milliseconds;

std::string key_of(int i) {
  std::string hex = std::to_string(i);
  return "llm-caching:v1:suite:" + std::string(64 - hex.size(), '0') + hex;
}

core::CacheEntry entry_with(std::string request) {
  core::CacheEntry e;
  e.provider = "openai";
  e.model = "gpt-4o-mini";
  e.response = R"({"choices":[]})";
  e.request = std::move(request);
  e.api = "chat";
  return e;
}

class Neighbours : public ::testing::Test {
 protected:
  void put(TieredCache& cache, const std::string& key, const core::CacheEntry& e) {
    run_blocking(io_, cache.put_l2(key, core::encode_entry(e), milliseconds(0)));
  }
  TieredCache::Neighbours walk(TieredCache& cache, const std::string& except,
                               TieredCache::NeighbourBounds bounds = {}) {
    return run_blocking(io_, cache.recorded_neighbours("llm-caching:v1:suite:", except, bounds));
  }
  asio::io_context io_;
  llmc_test::TempDir dir_;
};

TEST_F(Neighbours, ReadsTheNamespaceLeavingOutTheMissedKeyAndEntriesWithoutARequest) {
  TieredCache cache(std::make_shared<SqliteBackend>(SqliteOptions{.path = dir_.path() / "c.db"}), 0,
                    false);
  for (int i = 0; i < 6; ++i)
    put(cache, key_of(i), entry_with(R"({"n":)" + std::to_string(i) + "}"));
  put(cache, key_of(6), entry_with(""));  // recorded before format 3
  run_blocking(io_, cache.put_l2("llm-caching:v1:other:" + std::string(64, 'a'),
                                 core::encode_entry(entry_with("{}")), milliseconds(0)));
  const auto found = walk(cache, key_of(2));
  EXPECT_EQ(found.read, 6u);
  EXPECT_FALSE(found.bounded);
  ASSERT_EQ(found.entries.size(), 5u);
  for (const auto& [key, entry] : found.entries) {
    EXPECT_NE(key, key_of(2));
    EXPECT_TRUE(key.starts_with("llm-caching:v1:suite:")) << key;
    EXPECT_FALSE(entry->request.empty());
  }
}

TEST_F(Neighbours, StopsAtItsBoundOfEntries) {
  TieredCache cache(std::make_shared<SqliteBackend>(SqliteOptions{.path = dir_.path() / "c.db"}), 0,
                    false);
  for (int i = 0; i < 40; ++i) put(cache, key_of(i), entry_with("{}"));
  const auto by_entries = walk(cache, "", {.max_entries = 7, .max_pages = 16});
  EXPECT_EQ(by_entries.read, 7u);
  EXPECT_TRUE(by_entries.bounded);
  const auto all = walk(cache, "", {.max_entries = 40, .max_pages = 16});
  EXPECT_EQ(all.read, 40u);
  EXPECT_EQ(all.entries.size(), 40u);
}

TEST_F(Neighbours, SkipsAHandBrokenFileAndEntriesNoKeyOfOursSignedWithoutTouchingThem) {
  auto dir = std::make_shared<DirBackend>(DirOptions{.path = dir_.path() / "tree"});
  TieredCache writer(dir, 0, false);
  for (int i = 0; i < 3; ++i) put(writer, key_of(i), entry_with(R"({"n":1})"));
  std::ofstream(dir->file_of(key_of(1)), std::ios::trunc) << "{ broken";
  EXPECT_EQ(walk(writer, "").entries.size(), 2u);

  TieredCache signing(dir, 0, false);
  signing.set_signing_keys({"a-signing-key-0123456789", ""});
  put(signing, key_of(5), entry_with(R"({"n":5})"));
  const auto found = walk(signing, "");
  ASSERT_EQ(found.entries.size(), 1u) << "the unsigned entries are not shown";
  EXPECT_EQ(found.entries[0].first, key_of(5));
  EXPECT_TRUE(std::filesystem::exists(dir->file_of(key_of(0)))) << "nothing is deleted";
  EXPECT_EQ(dir->entry_location(key_of(0)), dir->file_of(key_of(0)).string());
}

TEST(DirDocumentRequest, ShowsTheRequestParsedAndRedactedAndReadsItBack) {
  core::CacheEntry e = entry_with(
      R"({"messages":[{"content":"my token is tok-123456","role":"user"}],"model":"gpt-4o-mini","temperature":0.2})");
  e.scope_digest = core::request_scope_digest("key:abc");
  const Redactor none;
  const std::string doc = entry_document(key_of(1), e, none);
  EXPECT_NE(doc.find(R"("format": "llm-caching-dir-entry/2")"), std::string::npos) << doc;
  EXPECT_NE(doc.find("  \"request\": {\n    \"messages\": [\n      {\n"), std::string::npos)
      << "one field a line, reviewable in a diff: " << doc;
  EXPECT_NE(doc.find(R"("temperature": 0.2)"), std::string::npos) << doc;
  EXPECT_NE(doc.find(R"("api": "chat")"), std::string::npos) << doc;
  const auto parsed = std::get<ParsedDocument>(parse_document(doc));
  EXPECT_EQ(std::get<core::CacheEntry>(core::decode_entry(parsed.value)), e)
      << "the request reads back to the keyed bytes";

  const Redactor redact({"tok-[0-9]+"}, "LLM_CACHE_REDACT");
  const std::string scrubbed = entry_document(key_of(1), e, redact);
  EXPECT_EQ(scrubbed.find("tok-123456"), std::string::npos) << scrubbed;
  EXPECT_NE(scrubbed.find("my token is [REDACTED]"), std::string::npos) << scrubbed;
  const auto back = std::get<core::CacheEntry>(
      core::decode_entry(std::get<ParsedDocument>(parse_document(scrubbed)).value));
  EXPECT_EQ(back.request, redact.apply_to_request(e.request));
  EXPECT_EQ(none.apply_to_request(e.request), e.request);
}

TEST(DirDocumentRequest, AnOldDocumentStillReadsAndMayNotCarryARequest) {
  core::CacheEntry old = entry_with("");
  old.api.clear();
  const std::string doc = entry_document(key_of(1), old, Redactor{});
  EXPECT_NE(doc.find(R"("format": "llm-caching-dir-entry/1")"), std::string::npos) << doc;
  EXPECT_EQ(doc.find("\"request\""), std::string::npos);
  core::CacheEntry back = std::get<core::CacheEntry>(
      core::decode_entry(std::get<ParsedDocument>(parse_document(doc)).value));
  EXPECT_EQ(back, old);
  std::string mixed = doc;
  mixed.insert(mixed.find("\"response\""), "\"request\": {},\n  ");
  const auto refused = parse_document(mixed);
  ASSERT_TRUE(std::holds_alternative<std::string>(refused));
  EXPECT_NE(std::get<std::string>(refused).find(
                "needs \"request\" and \"format\": \"llm-caching-dir-entry/2\""),
            std::string::npos)
      << std::get<std::string>(refused);
}

}  // namespace
}  // namespace llm_caching::cache

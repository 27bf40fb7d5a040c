// The task in `dir://` files (docs/TESTING.md): a document names the task that recorded its
// answer and reads it back; the same answer recorded by another task leaves the first task's
// file alone (stable bytes, whatever order a suite runs in); older documents still read. And the
// tiers' form of a stored request (LLM_CACHE_REDACT, every backend).
#include "cache/dir_backend.hpp"
#include "cache/dir_document.hpp"
#include "cache/memory_backend.hpp"
#include "cache/run_blocking.hpp"
#include "cache/tiered_cache.hpp"
#include "core/entry.hpp"
#include "core/entry_signature.hpp"
#include "llm_caching/cache_key.hpp"

#include "support/files.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace llm_caching::cache {
namespace {

using llmc_test::slurp;

namespace fs = std::filesystem;

const std::string kKey = storage_key("suite", std::string(64, 'c'));

core::CacheEntry answer(std::string task, std::string content = "Paris.") {
  core::CacheEntry e;
  e.provider = "openai";
  e.model = "gpt-4o-mini";
  e.response = R"({"choices":[{"message":{"content":")" + content + R"(","role":"assistant"}}]})";
  e.usage = {.input_tokens = 12, .output_tokens = 2, .requests = 1};
  e.cost_nano_usd = 1950;
  e.request = R"({"messages":[{"content":"Capital of France?","role":"user"}],"model":"m"})";
  e.api = "chat";
  e.task = std::move(task);
  return e;
}

core::CacheEntry read_back(std::string_view document) {
  const auto parsed = parse_document(document);
  EXPECT_TRUE(std::holds_alternative<ParsedDocument>(parsed))
      << std::get<std::string>(parsed) << "\n"
      << document;
  const auto& value = std::get<ParsedDocument>(parsed).value;
  return std::get<core::CacheEntry>(core::decode_entry(value));
}

TEST(DirTask, ADocumentNamesTheTaskThatRecordedItAndReadsItBack) {
  const core::CacheEntry e = answer("capitals");
  const std::string doc = entry_document(kKey, e, Redactor{});
  EXPECT_NE(doc.find(R"("format": "llm-caching-dir-entry/3")"), std::string::npos) << doc;
  EXPECT_NE(doc.find("\n  \"task\": \"capitals\",\n"), std::string::npos) << doc;
  EXPECT_EQ(read_back(doc), e);
  EXPECT_EQ(document_task(doc), "capitals");

  core::CacheEntry without_request = answer("embed");
  without_request.request.clear();
  without_request.api.clear();
  const std::string bare = entry_document(kKey, without_request, Redactor{});
  EXPECT_EQ(bare.find("\"request\""), std::string::npos) << bare;
  EXPECT_EQ(read_back(bare), without_request);
}

TEST(DirTask, DocumentsWithoutATaskAreWrittenAndReadAsBefore) {
  const std::string v2 = entry_document(kKey, answer(""), Redactor{});
  EXPECT_NE(v2.find(R"("format": "llm-caching-dir-entry/2")"), std::string::npos) << v2;
  EXPECT_EQ(v2.find("\"task\""), std::string::npos);
  EXPECT_EQ(read_back(v2), answer(""));
  EXPECT_EQ(document_task(v2), "");

  // A task needs format /3; a /3 document needs a task that is not empty.
  std::string tasked_v2 = v2;
  tasked_v2.insert(tasked_v2.find("\"usage\""), "\"task\": \"x\",\n  ");
  const auto refused = parse_document(tasked_v2);
  ASSERT_TRUE(std::holds_alternative<std::string>(refused));
  EXPECT_NE(std::get<std::string>(refused).find("\"task\" needs \"format\""), std::string::npos);
  std::string empty_task = entry_document(kKey, answer("t"), Redactor{});
  empty_task.replace(empty_task.find("\"task\": \"t\""), 11, "\"task\": \"\"");
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_document(empty_task)));
}

struct DirTaskBackend : ::testing::Test {
  llmc_test::TempDir tmp;
  fs::path root = tmp.path() / "llm-cache";
  DirBackend backend{DirOptions{.path = root}};
};

TEST_F(DirTaskBackend, TheSameAnswerFromAnotherTaskLeavesTheFirstTasksFile) {
  backend.put_now(kKey, core::encode_entry(answer("first")));
  const std::string first = slurp(backend.file_of(kKey));
  DirBackend other{DirOptions{.path = root}};  // another test process, another task
  other.put_now(kKey, core::encode_entry(answer("second")));
  EXPECT_EQ(slurp(backend.file_of(kKey)), first);
  other.put_now(kKey, core::encode_entry(answer("")));
  EXPECT_EQ(slurp(backend.file_of(kKey)), first) << "a writer that names no task";
  EXPECT_EQ(std::get<core::CacheEntry>(core::decode_entry(*backend.get_now(kKey))).task, "first");

  // Another answer is recorded, under the task that recorded it.
  other.put_now(kKey, core::encode_entry(answer("second", "Paris, France.")));
  const std::string changed = slurp(backend.file_of(kKey));
  EXPECT_NE(changed.find("\"task\": \"second\""), std::string::npos) << changed;
  EXPECT_NE(changed.find("Paris, France."), std::string::npos) << changed;
}

TEST_F(DirTaskBackend, ASignedEntryFromAnotherTaskIsWrittenWithItsOwnMac) {
  backend.put_now(kKey, core::encode_entry(answer("first")));
  // The MAC covers the task: keeping the first file would leave a MAC that does not match.
  const core::SigningKeys keys{"a-signing-key-0123456789", ""};
  const std::string stored = backend.stored_form(kKey, core::encode_entry(answer("second")));
  backend.put_now(kKey, core::sign_entry(stored, kKey, keys.current));
  const std::string text = slurp(backend.file_of(kKey));
  EXPECT_NE(text.find("\"task\": \"second\""), std::string::npos) << text;
  EXPECT_EQ(core::check_signature(*backend.get_now(kKey), kKey, keys), core::SignatureCheck::valid);
}

TEST(TieredStoredRequest, ScrubsTheRequestWithTheCachesPatternsWhateverTheBackend) {
  TieredCache cache(std::make_shared<MemoryBackend>(MemoryOptions{}), 0, false);
  const std::string request = R"({"messages":[{"content":"key sk-abcdef12 here","role":"user"}]})";
  EXPECT_EQ(cache.stored_request(request), request) << "no patterns: the request as keyed";
  cache.set_redactor(Redactor({"sk-[a-z0-9]+"}, "LLM_CACHE_REDACT"));
  EXPECT_EQ(cache.stored_request(request),
            R"({"messages":[{"content":"key [REDACTED] here","role":"user"}]})");
  EXPECT_EQ(cache.redactor().apply_to_request("not json sk-abc"), "not json sk-abc")
      << "only a canonical request is scrubbed";
  // A match that cuts a character in two leaves text that is not UTF-8: nothing is kept.
  const Redactor cutting({"\xc3"}, "LLM_CACHE_REDACT");
  EXPECT_EQ(cutting.apply_to_request(R"({"a":"é"})"), "");
}

}  // namespace
}  // namespace llm_caching::cache

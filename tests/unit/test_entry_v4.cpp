// Entry format 4 (DESIGN §4): an entry names the task that recorded it. Round trips, the v3 and
// v2 forms of an entry without a task (their bytes unchanged), strict decoding of the task, the
// signature covering it, and the task name as an entry keeps it (entry_task_name).
#include "core/checksum.hpp"
#include "core/entry.hpp"
#include "core/entry_signature.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <variant>

namespace llm_caching::core {
namespace {

namespace json = boost::json;

CacheEntry recorded_by(std::string task) {
  CacheEntry e;
  e.provider = "openai";
  e.model = "gpt-4o-mini";
  e.created_at_ms = 1'760'000'000'123;
  e.response = R"({"id":"chatcmpl-1","choices":[{"message":{"content":"Hi"}}]})";
  e.usage = {.input_tokens = 12, .output_tokens = 3, .requests = 1};
  e.cost_nano_usd = 4'200;
  e.request = R"({"messages":[{"content":"Hi","role":"user"}],"model":"gpt-4o-mini"})";
  e.api = "chat";
  e.task = std::move(task);
  return e;
}

CacheEntry decoded(std::string_view bytes) {
  auto r = decode_entry(bytes);
  EXPECT_TRUE(std::holds_alternative<CacheEntry>(r))
      << (std::holds_alternative<DecodeError>(r) ? to_string(std::get<DecodeError>(r)) : "");
  return std::holds_alternative<CacheEntry>(r) ? std::get<CacheEntry>(r) : CacheEntry{};
}

void put_le32(std::string& bytes, std::size_t offset, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes[offset + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

/// An uncompressed envelope of `version` around a meta object and the bodies (CRC made to fit).
std::string envelope(char version, const json::object& meta, std::string_view bodies) {
  const std::string text = json::serialize(meta);
  std::string payload(4, '\0');
  put_le32(payload, 0, static_cast<std::uint32_t>(text.size()));
  payload += text;
  payload += bodies;
  std::string out("LLMC", 4);
  out += version;
  out.append(11, '\0');
  put_le32(out, 8, static_cast<std::uint32_t>(payload.size()));
  put_le32(out, 12, crc32c(payload));
  return out + payload;
}

json::object meta_of(const std::string& bytes) {
  const std::uint32_t size =
      static_cast<unsigned char>(bytes[16]) | static_cast<unsigned char>(bytes[17]) << 8;
  return json::parse(bytes.substr(20, size)).as_object();
}

TEST(EntryV4, AnEntryNamingItsTaskRoundTripsAsFormat4) {
  const CacheEntry e = recorded_by("summaries");
  const std::string bytes = encode_entry(e);
  EXPECT_EQ(bytes[4], '\x04');
  EXPECT_EQ(meta_of(bytes).at("task"), "summaries");
  EXPECT_EQ(decoded(bytes), e);
  CacheEntry big = e;
  big.response = R"({"text":")" + std::string(20'000, 'r') + R"("})";
  EXPECT_EQ(decoded(encode_entry(big)), big) << "compressed too";
  EXPECT_EQ(entry_memory_bytes(e), entry_memory_bytes(recorded_by("")) + e.task.size());
}

TEST(EntryV4, ATaskWithoutARequestIsKeptToo) {
  CacheEntry e = recorded_by("embed");
  e.request.clear();
  e.api.clear();
  const std::string bytes = encode_entry(e);
  EXPECT_EQ(bytes[4], '\x04');
  EXPECT_EQ(decoded(bytes), e);
}

TEST(EntryV4, AnEntryWithoutATaskKeepsTheBytesOfFormats3And2) {
  const CacheEntry v3 = recorded_by("");
  const std::string bytes = encode_entry(v3);
  EXPECT_EQ(bytes[4], '\x03') << "entries signed or committed before format 4 keep their bytes";
  EXPECT_EQ(meta_of(bytes).size(), 12u);
  EXPECT_EQ(decoded(bytes), v3);
  CacheEntry v2 = v3;
  v2.request.clear();
  v2.api.clear();
  EXPECT_EQ(encode_entry(v2)[4], '\x02');
  EXPECT_EQ(decoded(encode_entry(v2)), v2);
}

TEST(EntryV4, TheTaskIsReadStrictly) {
  const CacheEntry e = recorded_by("summaries");
  const std::string bodies = e.response + e.request;
  const json::object good = meta_of(encode_entry(e));
  EXPECT_EQ(good.size(), 13u);
  EXPECT_EQ(decoded(envelope('\x04', good, bodies)), e);
  const auto with = [&](json::value v) {
    json::object meta = good;
    meta["task"] = std::move(v);
    return decode_entry(envelope('\x04', meta, bodies));
  };
  EXPECT_EQ(std::get<DecodeError>(with("")), DecodeError::bad_payload)
      << "an empty task is written as format 3";
  EXPECT_EQ(std::get<DecodeError>(with(7)), DecodeError::bad_payload);
  json::object without = good;
  without.erase("task");
  EXPECT_EQ(std::get<DecodeError>(decode_entry(envelope('\x04', without, bodies))),
            DecodeError::bad_payload);
  EXPECT_EQ(std::get<DecodeError>(decode_entry(envelope('\x03', good, bodies))),
            DecodeError::unknown_version)
      << "the payload's \"v\" says 4";
  json::object as_v3 = good;
  as_v3["v"] = 3;
  EXPECT_EQ(std::get<DecodeError>(decode_entry(envelope('\x03', as_v3, bodies))),
            DecodeError::bad_payload)
      << "a format 3 entry has no task";
  std::string newer = encode_entry(e);
  newer[4] = '\x05';
  EXPECT_EQ(std::get<DecodeError>(decode_entry(newer)), DecodeError::unknown_version);
}

TEST(EntryV4, AnEntryWrittenFromTheFormatsDescriptionDecodes) {
  // tests/fuzz/corpus/entry/tasked0 was written by a script from the layout in core/entry.hpp
  // (not by encode_entry), so the format, not only the round trip, is pinned; it seeds the fuzzer.
  std::ifstream in(LLMC_SOURCE_DIR "/tests/fuzz/corpus/entry/tasked0", std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const CacheEntry e = decoded(bytes.str());
  EXPECT_EQ(e.task, "capitals");
  EXPECT_EQ(e.api, "chat");
  EXPECT_EQ(e.request, R"({"messages":[{"content":"Capital of France?","role":"user"}],)"
                       R"("model":"gpt-4o-mini"})");
  EXPECT_EQ(e.cost_nano_usd, 1950);
  EXPECT_EQ(encode_entry(e), bytes.str()) << "encode_entry writes the same bytes";
}

TEST(EntryV4, TheSignatureCoversTheTask) {
  const std::string key = "llm-caching:v1:default:" + std::string(64, 'a');
  const SigningKeys keys{"a-signing-key-0123456789", ""};
  const std::string signed_bytes = sign_entry(encode_entry(recorded_by("a")), key, keys.current);
  EXPECT_EQ(check_signature(signed_bytes, key, keys), SignatureCheck::valid);
  const std::string forged = attach_mac(encode_entry(recorded_by("b")), entry_mac(signed_bytes));
  EXPECT_EQ(check_signature(forged, key, keys), SignatureCheck::wrong_mac);
}

TEST(EntryV4, TruncationsAndBitFlipsNeverCrash) {
  const std::string good = encode_entry(recorded_by("a task"));
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_TRUE(std::holds_alternative<DecodeError>(decode_entry(good.substr(0, n)))) << n;
  }
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    std::string flipped = good;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    (void)decode_entry(flipped);  // any result but a crash
  }
}

TEST(EntryTaskName, KeepsPrintableUtf8AndShowsEverythingElseAsAQuestionMark) {
  EXPECT_EQ(entry_task_name("summaries"), "summaries");
  EXPECT_EQ(entry_task_name("résumé 🚀"), "résumé 🚀");
  EXPECT_EQ(entry_task_name("a\nb\tc\x7f"), "a?b?c?");
  EXPECT_EQ(entry_task_name("bad \xff\xc3 utf8"), "bad ?? utf8");
  EXPECT_EQ(entry_task_name("\xc2\x85"), "??") << "a C1 control character";
  EXPECT_EQ(entry_task_name("\xed\xa0\x80"), "???") << "a surrogate";
  EXPECT_EQ(entry_task_name(""), "");
}

TEST(EntryTaskName, IsCutOnACharacterBoundary) {
  EXPECT_EQ(entry_task_name(std::string(200, 'x')), std::string(kMaxEntryTaskBytes, 'x'));
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "é";  // two bytes each
  const std::string kept = entry_task_name(accents);
  EXPECT_EQ(kept.size(), kMaxEntryTaskBytes);
  const std::string odd = entry_task_name("x" + accents);
  EXPECT_EQ(odd.size(), kMaxEntryTaskBytes - 1) << "the character that would not fit is left out";
  EXPECT_EQ(entry_task_name(odd), odd) << "stable: a kept name is kept as it is";
}

}  // namespace
}  // namespace llm_caching::core

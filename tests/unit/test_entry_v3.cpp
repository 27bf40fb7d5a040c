// Entry format 3 (DESIGN §4): an entry carries the request it answers (the keyed canonical
// request, its API and a digest of its scope). Round trips, the v2 form of an entry without a
// request, strict decoding of the new fields, signatures covering them, sweeps that never crash.
#include "core/checksum.hpp"
#include "core/entry.hpp"
#include "core/entry_signature.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <random>
#include <string>
#include <variant>

namespace llm_caching::core {
namespace {

namespace json = boost::json;

CacheEntry with_request() {
  CacheEntry e;
  e.provider = "openai";
  e.model = "gpt-4o-mini";
  e.created_at_ms = 1'760'000'000'123;
  e.response = R"({"id":"chatcmpl-1","choices":[{"message":{"content":"Hi"}}]})";
  e.usage = {.input_tokens = 12, .output_tokens = 3, .requests = 1};
  e.cost_nano_usd = 4'200;
  e.request = R"({"messages":[{"content":"Grüße 🚀","role":"user"}],"model":"gpt-4o-mini"})";
  e.api = "chat";
  e.scope_digest = request_scope_digest("key:0123456789abcdef");
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

/// An uncompressed v3 envelope around a meta object and the bodies after it (CRC made to fit).
std::string v3_bytes(const json::object& meta, std::string_view bodies) {
  const std::string text = json::serialize(meta);
  std::string payload(4, '\0');
  put_le32(payload, 0, static_cast<std::uint32_t>(text.size()));
  payload += text;
  payload += bodies;
  std::string out("LLMC\x03\x00\x00\x00", 8);
  out.append(8, '\0');
  put_le32(out, 8, static_cast<std::uint32_t>(payload.size()));
  put_le32(out, 12, crc32c(payload));
  return out + payload;
}

/// The meta object encode_entry writes for `e` (read back from its bytes).
json::object meta_of(const CacheEntry& e) {
  const std::string bytes = encode_entry(e);
  const std::uint32_t size =
      static_cast<unsigned char>(bytes[16]) | static_cast<unsigned char>(bytes[17]) << 8;
  return json::parse(bytes.substr(20, size)).as_object();
}

TEST(EntryV3, AnEntryWithItsRequestRoundTripsAsFormat3) {
  const CacheEntry e = with_request();
  const std::string small = encode_entry(e);
  EXPECT_EQ(small[4], '\x03');
  EXPECT_EQ(decoded(small), e);
  CacheEntry big = e;
  big.request = R"({"prompt":")" + std::string(20'000, 'q') + R"("})";
  const std::string compressed = encode_entry(big);
  EXPECT_EQ(compressed[5] & 1, 1) << "compressed above the threshold";
  EXPECT_EQ(decoded(compressed), big);
  EXPECT_EQ(entry_memory_bytes(big), entry_memory_bytes(e) + big.request.size() - e.request.size());
}

TEST(EntryV3, AnEntryWithoutARequestIsStillWrittenAsFormat2) {
  CacheEntry e = with_request();
  e.request.clear();
  const std::string bytes = encode_entry(e);
  EXPECT_EQ(bytes[4], '\x02') << "entries signed or committed before format 3 keep their bytes";
  const CacheEntry back = decoded(bytes);
  EXPECT_TRUE(back.api.empty() && back.scope_digest.empty()) << "kept only with a request";
  e.api.clear();
  e.scope_digest.clear();
  EXPECT_EQ(back, e);
}

TEST(EntryV3, TheRequestAndItsFieldsAreReadStrictly) {
  const CacheEntry e = with_request();
  const std::string bodies = e.response + e.request;
  const json::object good = meta_of(e);
  EXPECT_EQ(good.size(), 12u);
  EXPECT_EQ(decoded(v3_bytes(good, bodies)), e);
  for (const char* field : {"api", "scope_digest", "request_bytes"}) {
    json::object without = good;
    without.erase(field);
    EXPECT_EQ(std::get<DecodeError>(decode_entry(v3_bytes(without, bodies))),
              DecodeError::bad_payload)
        << field;
  }
  const auto with = [&](const char* field, json::value v) {
    json::object meta = good;
    meta[field] = std::move(v);
    return decode_entry(v3_bytes(meta, bodies));
  };
  EXPECT_EQ(std::get<DecodeError>(with("api", 3)), DecodeError::bad_payload);
  EXPECT_EQ(std::get<DecodeError>(with("request_bytes", 0)), DecodeError::bad_payload)
      << "a format 3 entry always carries its request";
  EXPECT_EQ(std::get<DecodeError>(with("request_bytes", -1)), DecodeError::bad_payload);
  EXPECT_EQ(std::get<DecodeError>(with("request_bytes", std::int64_t{1} << 40)),
            DecodeError::bad_payload);
  EXPECT_EQ(std::get<DecodeError>(with("v", 2)), DecodeError::unknown_version);
  EXPECT_EQ(std::get<DecodeError>(decode_entry(v3_bytes(good, bodies + "x"))),
            DecodeError::bad_payload);
  std::string newer = encode_entry(e);
  newer[4] = '\x04';
  EXPECT_EQ(std::get<DecodeError>(decode_entry(newer)), DecodeError::unknown_version);
}

TEST(EntryV3, TheSignatureCoversTheRequest) {
  const std::string key = "llm-caching:v1:default:" + std::string(64, 'a');
  const SigningKeys keys{"a-signing-key-0123456789", ""};
  const std::string signed_bytes = sign_entry(encode_entry(with_request()), key, keys.current);
  EXPECT_EQ(check_signature(signed_bytes, key, keys), SignatureCheck::valid);
  CacheEntry changed = with_request();
  changed.request = R"({"messages":[{"content":"Grüße 🚗","role":"user"}],"model":"gpt-4o-mini"})";
  // The same MAC on an entry whose request alone differs: refused.
  const std::string forged = attach_mac(encode_entry(changed), entry_mac(signed_bytes));
  EXPECT_EQ(check_signature(forged, key, keys), SignatureCheck::wrong_mac);
}

TEST(EntryV3, TheScopeDigestTellsScopesApartAndKeepsNothingOfThem) {
  EXPECT_EQ(request_scope_digest(""), "");
  const std::string a = request_scope_digest("key:0123456789abcdef0123456789abcdef");
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(a.find("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, request_scope_digest("key:0123456789abcdef0123456789abcdee"));
  EXPECT_EQ(a, request_scope_digest("key:0123456789abcdef0123456789abcdef"));
}

TEST(EntryV3, TruncationsBitFlipsAndMutationsNeverCrash) {
  const std::string good = encode_entry(with_request());
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_TRUE(std::holds_alternative<DecodeError>(decode_entry(good.substr(0, n)))) << n;
  }
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    std::string bytes = good;
    bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_TRUE(std::holds_alternative<DecodeError>(decode_entry(bytes))) << bit;
  }
  // Mutated payloads under a CRC made to fit reach the payload reader: never a crash.
  std::mt19937 rng(22);
  for (int i = 0; i < 20'000; ++i) {
    std::string bytes = good;
    const std::size_t at = 16 + rng() % (bytes.size() - 16);
    bytes[at] = static_cast<char>(rng());
    put_le32(bytes, 12, crc32c(std::string_view(bytes).substr(16)));
    (void)decode_entry(bytes);
  }
}

}  // namespace
}  // namespace llm_caching::core

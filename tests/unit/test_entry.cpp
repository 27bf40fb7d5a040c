// The cache entry envelope (DESIGN §4) and its CRC-32C: round trips, every DecodeError, and
// exhaustive truncation / bit-flip / random-input sweeps that must never crash.
#include "core/checksum.hpp"
#include "core/entry.hpp"

#include <gtest/gtest.h>
#include <zstd.h>
#include <boost/json.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace llm_caching::core {
namespace {

namespace json = boost::json;

// ---- helpers ----

CacheEntry small_entry() {
  CacheEntry e;
  e.provider = "openai";
  e.model = "gpt-4o-mini";
  e.created_at_ms = 1'760'000'000'123;
  e.ttl_ms = 86'400'000;
  e.response = R"({"id":"chatcmpl-1","choices":[{"message":{"content":"Hi"}}]})";
  e.usage = {.input_tokens = 12,
             .output_tokens = 3,
             .cache_write_tokens = 0,
             .cache_read_tokens = 4,
             .requests = 1};
  e.cost_nano_usd = 4'200;
  return e;
}

CacheEntry large_unicode_entry() {
  CacheEntry e = small_entry();
  e.provider = "anthropic";
  e.model = "claude-sonnet-4-5";
  std::string text;
  for (int i = 0; i < 200; ++i)
    text += "Grüße, 世界! naïve café — 🚀 line " + std::to_string(i) + "\\n";
  e.response = R"({"content":[{"type":"text","text":")" + text + R"("}]})";
  e.stream =
      "event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
      "event: content_block_delta\ndata: {\"text\":\"Grüße 🚀\"}\n\n";
  return e;
}

std::string_view payload_of(std::string_view encoded) {
  return encoded.substr(kEntryHeaderSize);
}

void put_le32(std::string& bytes, std::size_t offset, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes[offset + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

// An envelope around arbitrary stored bytes with a correct length and CRC, so that decoding
// gets past the integrity checks and exercises the decompressor / payload reader. Version 1 by
// default: the format of entries stored before v2, which decode_entry still reads.
std::string wrap(std::string_view stored, bool zstd = false, char version = 1) {
  std::string out("LLMC\x01\x00\x00\x00", 8);
  out[4] = version;
  out[5] = zstd ? 1 : 0;
  out.append(8, '\0');
  put_le32(out, 8, static_cast<std::uint32_t>(stored.size()));
  put_le32(out, 12, crc32c(stored));
  out += stored;
  return out;
}

json::object usage_object(const Usage& u) {
  return {{"input_tokens", u.input_tokens},
          {"output_tokens", u.output_tokens},
          {"cache_write_tokens", u.cache_write_tokens},
          {"cache_read_tokens", u.cache_read_tokens},
          {"requests", u.requests}};
}

// The fields every format version writes about an entry, under version `v`.
json::object entry_fields(const CacheEntry& e, int v) {
  return {{"v", v},
          {"provider", e.provider},
          {"model", e.model},
          {"created_at_ms", e.created_at_ms},
          {"ttl_ms", e.ttl_ms},
          {"usage", usage_object(e.usage)},
          {"cost_nano_usd", e.cost_nano_usd}};
}

// A version-1 payload, as entries stored before v2 hold it: one object, bodies as JSON strings.
json::object payload_object(const CacheEntry& e) {
  json::object o = entry_fields(e, 1);
  o["response"] = e.response;
  if (!e.stream.empty()) o["stream"] = e.stream;
  return o;
}

// The v2 meta object of an entry (what encode_entry writes before the bodies).
json::object meta_object(const CacheEntry& e) {
  json::object o = entry_fields(e, 2);
  o["response_bytes"] = static_cast<std::int64_t>(e.response.size());
  o["stream_bytes"] = static_cast<std::int64_t>(e.stream.size());
  return o;
}

// A v2 payload from a meta object and the bodies that follow it.
std::string v2_payload(const json::object& meta, std::string_view bodies) {
  const std::string text = json::serialize(meta);
  std::string out(4, '\0');
  put_le32(out, 0, static_cast<std::uint32_t>(text.size()));
  return out + text + std::string(bodies);
}

std::string zstd_compress(std::string_view data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const std::size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

DecodeError error_of(const std::variant<CacheEntry, DecodeError>& r) {
  EXPECT_TRUE(std::holds_alternative<DecodeError>(r)) << "decoded successfully";
  return std::holds_alternative<DecodeError>(r) ? std::get<DecodeError>(r)
                                                : static_cast<DecodeError>(-1);
}

CacheEntry entry_of(const std::variant<CacheEntry, DecodeError>& r) {
  EXPECT_TRUE(std::holds_alternative<CacheEntry>(r))
      << "decode failed: "
      << (std::holds_alternative<DecodeError>(r) ? to_string(std::get<DecodeError>(r))
                                                 : std::string_view{});
  return std::holds_alternative<CacheEntry>(r) ? std::get<CacheEntry>(r) : CacheEntry{};
}

// ---- CRC-32C ----

TEST(Crc32c, MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(Crc32cTest, HardwareAndTableImplementationsAgree) {
  std::mt19937_64 rng(42);
  for (std::size_t len = 0; len < 300; ++len) {
    std::string data(len, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    for (std::size_t offset = 0; offset < std::min<std::size_t>(len, 9); ++offset) {
      const std::string_view view = std::string_view(data).substr(offset);
      ASSERT_EQ(crc32c(view), detail::crc32c_portable(0, view)) << len << "/" << offset;
      ASSERT_EQ(crc32c_extend(0x12345678u, view), detail::crc32c_portable(0x12345678u, view));
    }
  }
}

TEST(Crc32c, MatchesIscsiTestVectors) {  // RFC 3720 appendix B.4
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending += static_cast<char>(i);
    descending += static_cast<char>(31 - i);
  }
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32c(descending), 0x113FDB5Cu);
}

TEST(Crc32c, ExtendingOverAnySplitEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 100; ++i) data += static_cast<char>(i * 37 + 11);
  const std::uint32_t whole = crc32c(data);
  for (std::size_t split = 0; split <= data.size(); ++split) {
    const std::string_view v(data);
    EXPECT_EQ(crc32c_extend(crc32c(v.substr(0, split)), v.substr(split)), whole) << split;
  }
}

// ---- round trips and layout ----

TEST(Entry, SmallEntryRoundTripsUncompressedWithTheDocumentedHeader) {
  const CacheEntry e = small_entry();
  const std::string bytes = encode_entry(e);
  ASSERT_GE(bytes.size(), kEntryHeaderSize);
  EXPECT_EQ(bytes.substr(0, 4), "LLMC");
  EXPECT_EQ(bytes[4], 2);  // format version
  EXPECT_EQ(bytes[5], 0);  // not compressed
  EXPECT_EQ(bytes[6], 0);
  EXPECT_EQ(bytes[7], 0);
  std::string expected_tail(8, '\0');
  put_le32(expected_tail, 0, static_cast<std::uint32_t>(bytes.size() - kEntryHeaderSize));
  put_le32(expected_tail, 4, crc32c(payload_of(bytes)));
  EXPECT_EQ(bytes.substr(8, 8), expected_tail);

  // v2 payload: meta length, meta JSON, then the response as it is (no escaping).
  const std::string_view payload = payload_of(bytes);
  EXPECT_EQ(payload, v2_payload(meta_object(e), e.response));
  EXPECT_EQ(payload.substr(payload.size() - e.response.size()), e.response);

  EXPECT_EQ(entry_of(decode_entry(bytes)), e);
}

TEST(Entry, LargeUnicodeEntryWithStreamRoundTripsCompressed) {
  const CacheEntry e = large_unicode_entry();
  const std::string bytes = encode_entry(e);
  EXPECT_EQ(bytes[5], 1);                      // zstd
  EXPECT_LT(bytes.size(), e.response.size());  // repetitive text compresses well
  const CacheEntry back = entry_of(decode_entry(bytes));
  EXPECT_EQ(back, e);
  EXPECT_EQ(back.stream, e.stream);
}

TEST(Entry, CompressesExactlyFromTheThreshold) {
  const CacheEntry e = small_entry();
  const std::size_t json_size = encode_entry(e, {.compress_threshold = SIZE_MAX}).size() - 16;
  EXPECT_EQ(encode_entry(e, {.compress_threshold = json_size})[5], 1);
  EXPECT_EQ(encode_entry(e, {.compress_threshold = json_size + 1})[5], 0);
  EXPECT_EQ(entry_of(decode_entry(encode_entry(e, {.compress_threshold = 0}))), e);
  EXPECT_EQ(entry_of(decode_entry(encode_entry(e, {.compress_threshold = 0, .zstd_level = 19}))),
            e);
}

TEST(Entry, ExtremeIntegersAndArbitraryBytesRoundTrip) {
  CacheEntry e = small_entry();
  e.created_at_ms = std::numeric_limits<std::int64_t>::min();
  e.ttl_ms = std::numeric_limits<std::int64_t>::max();
  e.cost_nano_usd = -1;
  e.usage.requests = std::numeric_limits<std::int64_t>::max();
  e.response = std::string("nul\0byte \"quoted\" \\ \x01 ctrl", 26) + "\xFF\xFE invalid utf-8";
  e.stream = "data: \xC3\n\n";  // a stream cut inside a multi-byte character
  EXPECT_EQ(entry_of(decode_entry(encode_entry(e))), e);
  EXPECT_EQ(entry_of(decode_entry(encode_entry(e, {.compress_threshold = 0}))), e);
}

TEST(Entry, EmptyStringsRoundTrip) {
  const CacheEntry e;
  EXPECT_EQ(entry_of(decode_entry(encode_entry(e))), e);
}

TEST(Entry, ExpiryFollowsTtl) {
  CacheEntry e = small_entry();
  e.created_at_ms = 1000;
  e.ttl_ms = 500;
  EXPECT_FALSE(e.expired_at(1499));
  EXPECT_TRUE(e.expired_at(1500));
  e.ttl_ms = 0;
  EXPECT_FALSE(e.expired_at(std::numeric_limits<std::int64_t>::max()));
}

TEST(Entry, RefusesToEncodeAPayloadAbove64MiB) {
  CacheEntry e = small_entry();
  e.response.assign(kMaxEntryPayloadBytes, 'x');
  EXPECT_FALSE(entry_fits(e));
  EXPECT_THROW(encode_entry(e), std::length_error);
}

TEST(Entry, AnEntryThatFitsAlwaysEncodesEvenAtTheLimitWithTheLongestMetadata) {
  // entry_fits lets the write-behind encode off the request's thread without a length_error
  // to report: the largest entry it accepts, with every number at its longest and a provider
  // and model that escape to six bytes a byte, must encode.
  CacheEntry e;
  e.provider = std::string(20, '\x01');
  e.model = std::string(40, '\x02');
  e.created_at_ms = e.ttl_ms = e.cost_nano_usd = std::numeric_limits<std::int64_t>::min();
  e.usage.input_tokens = e.usage.output_tokens = e.usage.cache_write_tokens =
      e.usage.cache_read_tokens = e.usage.requests = std::numeric_limits<std::int64_t>::min();
  e.stream.assign(1000, 's');
  const std::size_t fits = kMaxEntryPayloadBytes - 4 - 512 - 6 * 60 - e.stream.size();
  e.response.assign(fits, 'r');
  ASSERT_TRUE(entry_fits(e));
  EXPECT_NO_THROW(encode_entry(e));
  e.response.push_back('r');
  EXPECT_FALSE(entry_fits(e));
}

TEST(Entry, MemoryBytesCountTheDecodedBodiesNotTheCompressedOnes) {
  CacheEntry e = small_entry();
  e.response.assign(1 << 20, 'a');  // compresses to almost nothing
  EXPECT_GE(entry_memory_bytes(e), e.response.size() + e.provider.size() + e.model.size());
  EXPECT_LT(encode_entry(e).size(), entry_memory_bytes(e) / 100);
}

TEST(Entry, DecodeErrorsHaveStableNames) {
  EXPECT_EQ(to_string(DecodeError::truncated), "truncated");
  EXPECT_EQ(to_string(DecodeError::bad_magic), "bad_magic");
  EXPECT_EQ(to_string(DecodeError::unknown_version), "unknown_version");
  EXPECT_EQ(to_string(DecodeError::bad_checksum), "bad_checksum");
  EXPECT_EQ(to_string(DecodeError::bad_compression), "bad_compression");
  EXPECT_EQ(to_string(DecodeError::bad_payload), "bad_payload");
}

// ---- envelope errors ----

TEST(EntryDecode, ShortInputIsTruncated) {
  const std::string good = encode_entry(small_entry());
  EXPECT_EQ(error_of(decode_entry("")), DecodeError::truncated);
  EXPECT_EQ(error_of(decode_entry("LLM")), DecodeError::truncated);
  EXPECT_EQ(error_of(decode_entry(std::string_view(good).substr(0, 15))), DecodeError::truncated);
  EXPECT_EQ(error_of(decode_entry(std::string_view(good).substr(0, good.size() - 1))),
            DecodeError::truncated);
}

TEST(EntryDecode, WrongMagicIsBadMagic) {
  std::string bytes = encode_entry(small_entry());
  bytes[3] = 'X';
  EXPECT_EQ(error_of(decode_entry(bytes)), DecodeError::bad_magic);
  EXPECT_EQ(error_of(decode_entry(R"({"v":1,"provider":"openai","model":"m"})")),
            DecodeError::bad_magic);
}

TEST(EntryDecode, OtherVersionsFlagsOrReservedBytesAreUnknownVersion) {
  const std::string good = encode_entry(small_entry());
  for (std::size_t offset : {4u, 5u, 6u, 7u}) {
    for (char value : {'\x00', '\x02', '\x80', '\xFF'}) {
      std::string bytes = good;
      bytes[offset] = value;
      if (bytes == good) continue;
      // Flags 0 is the original; flag bit0 alone is covered by BadCompression below, and bit1
      // (signed: a MAC follows) by SignedFlagWithoutItsMacIsTruncated and test_signed_entries.
      if (offset == 5 && (value == '\x00' || value == '\x02')) continue;
      EXPECT_EQ(error_of(decode_entry(bytes)), DecodeError::unknown_version)
          << "offset " << offset << " value " << int(value);
    }
  }
}

TEST(EntryDecode, SignedFlagWithoutItsMacIsTruncated) {
  std::string bytes = encode_entry(small_entry());
  bytes[5] = '\x02';  // says a 32-byte MAC follows the payload; none does
  EXPECT_EQ(error_of(decode_entry(bytes)), DecodeError::truncated);
}

TEST(EntryDecode, EveryFlippedPayloadBitIsBadChecksum) {
  for (const std::string& good :
       {encode_entry(small_entry()), encode_entry(large_unicode_entry())}) {
    for (std::size_t byte = kEntryHeaderSize; byte < good.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string bytes = good;
        bytes[byte] = static_cast<char>(bytes[byte] ^ (1 << bit));
        ASSERT_EQ(error_of(decode_entry(bytes)), DecodeError::bad_checksum) << byte << ":" << bit;
      }
    }
  }
}

TEST(EntryDecode, WrongStoredChecksumIsBadChecksum) {
  std::string bytes = encode_entry(small_entry());
  bytes[12] = static_cast<char>(bytes[12] + 1);
  EXPECT_EQ(error_of(decode_entry(bytes)), DecodeError::bad_checksum);
}

TEST(EntryDecode, LengthFieldThatDisagreesWithTheBytesIsTruncated) {
  const std::string good = encode_entry(small_entry());
  const auto stored = static_cast<std::uint32_t>(good.size() - kEntryHeaderSize);
  for (std::uint32_t lie : {0u, stored - 1, stored + 1, 0xFFFFFFFFu}) {
    std::string bytes = good;
    put_le32(bytes, 8, lie);
    EXPECT_EQ(error_of(decode_entry(bytes)), DecodeError::truncated) << lie;
  }
  EXPECT_EQ(error_of(decode_entry(good + "x")), DecodeError::truncated);  // trailing bytes
}

TEST(EntryDecode, ZstdGarbageWithValidChecksumIsBadCompression) {
  EXPECT_EQ(error_of(decode_entry(wrap("this is not a zstd frame", true))),
            DecodeError::bad_compression);
  EXPECT_EQ(error_of(decode_entry(wrap("", true))), DecodeError::bad_compression);
  // An uncompressed payload flagged as zstd.
  std::string bytes = encode_entry(small_entry());
  bytes[5] = 1;
  EXPECT_EQ(error_of(decode_entry(bytes)), DecodeError::bad_compression);
  // A valid frame with its last bytes cut off.
  const std::string frame = zstd_compress(json::serialize(payload_object(small_entry())));
  EXPECT_EQ(error_of(decode_entry(wrap(frame.substr(0, frame.size() - 3), true))),
            DecodeError::bad_compression);
}

TEST(EntryDecode, FramesClaimingMoreThan64MiBOrNoSizeAreRefusedBeforeAllocating) {
  // Frame header only: magic, descriptor 0xE0 (single segment, 8-byte content size), 1 GiB.
  std::string huge("\x28\xB5\x2F\xFD\xE0", 5);
  for (int i = 0; i < 8; ++i)
    huge += static_cast<char>(((std::uint64_t{1} << 30) >> (8 * i)) & 0xFF);
  huge += std::string("\x01\x00\x00", 3);  // an empty last raw block
  ASSERT_EQ(ZSTD_getFrameContentSize(huge.data(), huge.size()), std::uint64_t{1} << 30);
  EXPECT_EQ(error_of(decode_entry(wrap(huge, true))), DecodeError::bad_compression);

  // A frame written without its content size (as streaming writers do).
  const std::string json_text = json::serialize(payload_object(small_entry()));
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  std::string unknown(ZSTD_compressBound(json_text.size()), '\0');
  const std::size_t n =
      ZSTD_compress2(cctx, unknown.data(), unknown.size(), json_text.data(), json_text.size());
  ZSTD_freeCCtx(cctx);
  ASSERT_FALSE(ZSTD_isError(n));
  unknown.resize(n);
  ASSERT_EQ(ZSTD_getFrameContentSize(unknown.data(), unknown.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  EXPECT_EQ(error_of(decode_entry(wrap(unknown, true))), DecodeError::bad_compression);
}

TEST(EntryDecode, TrailingFramesAfterTheDeclaredContentAreBadCompression) {
  const std::string frame = zstd_compress(json::serialize(payload_object(small_entry())));
  EXPECT_EQ(entry_of(decode_entry(wrap(frame, true))), small_entry());
  EXPECT_EQ(error_of(decode_entry(wrap(frame + zstd_compress("more"), true))),
            DecodeError::bad_compression);
}

// ---- payload errors ----

TEST(EntryDecode, PayloadThatIsNotAJsonObjectIsBadPayload) {
  for (std::string_view payload : {"", "[1,2]", "\"text\"", "42", "null", "{", "{\"v\":1,}",
                                   "{\"v\":1} trailing", "\xFF\xFE"}) {
    EXPECT_EQ(error_of(decode_entry(wrap(payload))), DecodeError::bad_payload) << payload;
    EXPECT_EQ(error_of(decode_entry(wrap(zstd_compress(payload), true))), DecodeError::bad_payload)
        << payload;
  }
}

TEST(EntryDecode, EachMissingFieldIsBadPayload) {
  const json::object good = payload_object(large_unicode_entry());
  for (const auto& field : good) {
    json::object without = good;
    without.erase(field.key());
    if (field.key() == "stream") {  // optional: absent means a non-streamed original
      EXPECT_EQ(entry_of(decode_entry(wrap(json::serialize(without)))).stream, "");
      continue;
    }
    EXPECT_EQ(error_of(decode_entry(wrap(json::serialize(without)))), DecodeError::bad_payload)
        << field.key();
  }
  for (const auto& field : good.at("usage").as_object()) {
    json::object without = good;
    without["usage"].as_object().erase(field.key());
    EXPECT_EQ(error_of(decode_entry(wrap(json::serialize(without)))), DecodeError::bad_payload)
        << "usage." << field.key();
  }
}

TEST(EntryDecode, FieldsOfTheWrongTypeAreBadPayload) {
  const json::object good = payload_object(large_unicode_entry());
  const std::vector<std::pair<std::string, json::value>> bad = {
      {"provider", 7},
      {"model", nullptr},
      {"created_at_ms", "1760000000000"},
      {"created_at_ms", 1.5},
      {"created_at_ms", std::numeric_limits<std::uint64_t>::max()},  // beyond int64
      {"ttl_ms", true},
      {"usage", json::array{1, 2}},
      {"cost_nano_usd", 1e30},
      {"response", json::object{{"id", "x"}}},  // must be the body as text, not a tree
      {"stream", 3},
      {"v", "1"},
  };
  for (const auto& [key, value] : bad) {
    json::object payload = good;
    payload[key] = value;
    EXPECT_EQ(error_of(decode_entry(wrap(json::serialize(payload)))), DecodeError::bad_payload)
        << key << " = " << json::serialize(value);
  }
  json::object payload = good;
  payload["usage"].as_object()["requests"] = "1";
  EXPECT_EQ(error_of(decode_entry(wrap(json::serialize(payload)))), DecodeError::bad_payload);
}

TEST(EntryDecode, UnknownFieldsAreBadPayload) {
  json::object payload = payload_object(small_entry());
  payload["api_key"] = "sk-should-never-be-here";
  EXPECT_EQ(error_of(decode_entry(wrap(json::serialize(payload)))), DecodeError::bad_payload);
  payload = payload_object(small_entry());
  payload["usage"].as_object()["reasoning_tokens"] = 5;
  EXPECT_EQ(error_of(decode_entry(wrap(json::serialize(payload)))), DecodeError::bad_payload);
}

TEST(EntryDecode, PayloadVersionOtherThanOneIsUnknownVersion) {
  json::object payload = payload_object(small_entry());
  payload["v"] = 2;
  EXPECT_EQ(error_of(decode_entry(wrap(json::serialize(payload)))), DecodeError::unknown_version);
  payload["v"] = 0;
  EXPECT_EQ(error_of(decode_entry(wrap(json::serialize(payload)))), DecodeError::unknown_version);
}

// ---- the v2 payload (meta + raw bodies) ----

TEST(EntryDecodeV2, AnEntryStoredInVersionOneStillDecodes) {
  for (const CacheEntry& e : {small_entry(), large_unicode_entry()}) {
    const std::string v1 = json::serialize(payload_object(e));
    EXPECT_EQ(entry_of(decode_entry(wrap(v1))), e);
    EXPECT_EQ(entry_of(decode_entry(wrap(zstd_compress(v1), true))), e);
  }
}

TEST(EntryDecodeV2, HandBuiltPayloadDecodes) {
  const CacheEntry e = large_unicode_entry();
  EXPECT_EQ(
      entry_of(decode_entry(wrap(v2_payload(meta_object(e), e.response + e.stream), false, 2))), e);
}

TEST(EntryDecodeV2, BodyLengthsThatDoNotCoverTheBytesExactlyAreBadPayload) {
  const CacheEntry e = large_unicode_entry();
  const std::string bodies = e.response + e.stream;
  const auto decode = [&](json::object meta, std::string_view b) {
    return decode_entry(wrap(v2_payload(meta, b), false, 2));
  };
  json::object meta = meta_object(e);
  EXPECT_EQ(error_of(decode(meta, bodies + "x")), DecodeError::bad_payload);  // trailing byte
  EXPECT_EQ(error_of(decode(meta, bodies.substr(1))), DecodeError::bad_payload);
  for (std::int64_t bad :
       {std::int64_t{-1}, std::int64_t{1} << 40, std::numeric_limits<std::int64_t>::max()}) {
    meta = meta_object(e);
    meta["response_bytes"] = bad;
    EXPECT_EQ(error_of(decode(meta, bodies)), DecodeError::bad_payload) << bad;
    meta = meta_object(e);
    meta["stream_bytes"] = bad;
    EXPECT_EQ(error_of(decode(meta, bodies)), DecodeError::bad_payload) << bad;
  }
  // The lengths only have to add up: a boundary moved between the bodies decodes, to other bodies
  // (the checksum is what guards stored bytes against such a change).
  meta = meta_object(e);
  meta["response_bytes"] = static_cast<std::int64_t>(e.response.size() - 1);
  meta["stream_bytes"] = static_cast<std::int64_t>(e.stream.size() + 1);
  const CacheEntry shifted = entry_of(decode(meta, bodies));
  EXPECT_EQ(shifted.response + shifted.stream, bodies);
  EXPECT_NE(shifted, e);
}

TEST(EntryDecodeV2, MetaLengthBeyondThePayloadOrMetaNotAnObjectIsBadPayload) {
  const CacheEntry e = small_entry();
  std::string payload = v2_payload(meta_object(e), e.response);
  std::string too_long = payload;
  put_le32(too_long, 0, static_cast<std::uint32_t>(payload.size()));
  EXPECT_EQ(error_of(decode_entry(wrap(too_long, false, 2))), DecodeError::bad_payload);
  put_le32(too_long, 0, 0xFFFFFFFFu);
  EXPECT_EQ(error_of(decode_entry(wrap(too_long, false, 2))), DecodeError::bad_payload);
  EXPECT_EQ(error_of(decode_entry(wrap("abc", false, 2))), DecodeError::bad_payload);
  for (std::string_view meta : {"", "[1]", "{", "null"}) {
    std::string bad(4, '\0');
    put_le32(bad, 0, static_cast<std::uint32_t>(meta.size()));
    EXPECT_EQ(error_of(decode_entry(wrap(bad + std::string(meta), false, 2))),
              DecodeError::bad_payload)
        << meta;
  }
}

TEST(EntryDecodeV2, MissingExtraOrMistypedMetaFieldsAreBadPayload) {
  const CacheEntry e = small_entry();
  const json::object good = meta_object(e);
  for (const auto& field : good) {
    json::object without = good;
    without.erase(field.key());
    EXPECT_EQ(error_of(decode_entry(wrap(v2_payload(without, e.response), false, 2))),
              DecodeError::bad_payload)
        << field.key();
  }
  json::object extra = good;
  extra["api_key"] = "sk-should-never-be-here";
  EXPECT_EQ(error_of(decode_entry(wrap(v2_payload(extra, e.response), false, 2))),
            DecodeError::bad_payload);
  json::object mistyped = good;
  mistyped["response_bytes"] = "61";
  EXPECT_EQ(error_of(decode_entry(wrap(v2_payload(mistyped, e.response), false, 2))),
            DecodeError::bad_payload);
}

TEST(EntryDecodeV2, PayloadVersionMustMatchTheHeader) {
  const CacheEntry e = small_entry();
  json::object meta = meta_object(e);
  meta["v"] = 1;
  EXPECT_EQ(error_of(decode_entry(wrap(v2_payload(meta, e.response), false, 2))),
            DecodeError::unknown_version);
  // A v2 payload under a v1 header is not JSON: refused, never misread.
  EXPECT_EQ(error_of(decode_entry(wrap(v2_payload(meta_object(e), e.response), false, 1))),
            DecodeError::bad_payload);
}

// ---- sweeps: never crash, never accept damage ----

TEST(EntrySweep, EveryTruncationIsRejected) {
  for (const std::string& good :
       {encode_entry(small_entry()), encode_entry(large_unicode_entry())}) {
    for (std::size_t len = 0; len < good.size(); ++len) {
      ASSERT_EQ(error_of(decode_entry(std::string_view(good).substr(0, len))),
                DecodeError::truncated)
          << len;
    }
  }
}

TEST(EntrySweep, EverySingleBitFlipIsRejected) {
  // CRC-32C detects every single-bit error, and each header field is checked, so no flip can
  // yield an entry at all (let alone a different one).
  const std::string good = encode_entry(small_entry());
  for (std::size_t byte = 0; byte < good.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bytes = good;
      bytes[byte] = static_cast<char>(bytes[byte] ^ (1 << bit));
      const auto result = decode_entry(bytes);
      ASSERT_TRUE(std::holds_alternative<DecodeError>(result)) << byte << ":" << bit;
    }
  }
}

TEST(EntrySweep, RandomBytesAreRejected) {
  std::mt19937_64 rng(20260421);
  std::uniform_int_distribution<int> byte_dist(0, 255);
  std::uniform_int_distribution<std::size_t> len_dist(0, 300);
  for (int i = 0; i < 10'000; ++i) {
    std::string bytes(len_dist(rng), '\0');
    for (char& c : bytes) c = static_cast<char>(byte_dist(rng));
    // A third stay raw; a third get a plausible header; a third also get a valid length and CRC,
    // so that the decompressor and JSON reader see random input too.
    const int mode = i % 3;
    if (mode == 0 || bytes.size() < kEntryHeaderSize) {
      ASSERT_TRUE(std::holds_alternative<DecodeError>(decode_entry(bytes))) << i;
      continue;
    }
    if (mode == 1) {
      bytes.replace(0, 8, std::string("LLMC\x01\x00\x00\x00", 8));
      bytes[5] = static_cast<char>(i & 1);
      ASSERT_TRUE(std::holds_alternative<DecodeError>(decode_entry(bytes))) << i;
      continue;
    }
    const std::string stored = bytes.substr(kEntryHeaderSize);
    ASSERT_TRUE(std::holds_alternative<DecodeError>(decode_entry(wrap(stored, (i & 1) != 0)))) << i;
  }
}

TEST(EntrySweep, RandomlyMutatedPayloadsWithValidChecksumsNeverCrash) {
  // Mutations inside a real payload reach deep into the JSON reader; some (inside the response
  // text, say) still give a valid entry, which must then re-encode to the same entry.
  std::mt19937_64 rng(7);
  const std::string payload = json::serialize(payload_object(large_unicode_entry()));
  std::uniform_int_distribution<std::size_t> pos_dist(0, payload.size() - 1);
  std::uniform_int_distribution<int> byte_dist(0, 255);
  int accepted = 0;
  for (int i = 0; i < 2'000; ++i) {
    std::string mutated = payload;
    for (int k = 0; k < 1 + i % 4; ++k) mutated[pos_dist(rng)] = static_cast<char>(byte_dist(rng));
    const auto result = decode_entry(wrap(mutated, false));
    if (const auto* e = std::get_if<CacheEntry>(&result)) {
      ++accepted;
      EXPECT_EQ(entry_of(decode_entry(encode_entry(*e))), *e);
    }
  }
  EXPECT_GT(accepted, 0);  // the sweep did reach the field readers
}

}  // namespace
}  // namespace llm_caching::core

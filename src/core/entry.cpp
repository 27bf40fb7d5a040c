#include "core/entry.hpp"

#include "core/checksum.hpp"
#include "core/entry_signature.hpp"
#include "core/sha256.hpp"

#include <zstd.h>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>

namespace llm_caching::core {
namespace {

namespace json = boost::json;

constexpr std::array<char, 4> kMagic{'L', 'L', 'M', 'C'};
constexpr unsigned char kFlagZstd = 0x01;
constexpr std::size_t kVersionOffset = 4;
constexpr std::size_t kFlagsOffset = 5;
constexpr std::size_t kReservedOffset = 6;
constexpr std::size_t kLengthOffset = 8;
constexpr std::size_t kChecksumOffset = 12;

void store_le32(char* out, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}

std::uint32_t load_le32(const char* in) noexcept {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

// zstd contexts are reused per thread: creating one per call costs more than compressing a
// typical 2 KB response.
struct ZstdDeleter {
  void operator()(ZSTD_CCtx* c) const noexcept { ZSTD_freeCCtx(c); }
  void operator()(ZSTD_DCtx* d) const noexcept { ZSTD_freeDCtx(d); }
};

ZSTD_CCtx* thread_compressor() {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdDeleter> ctx{ZSTD_createCCtx()};
  if (!ctx) throw std::bad_alloc();
  return ctx.get();
}

ZSTD_DCtx* thread_decompressor() noexcept {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDeleter> ctx{ZSTD_createDCtx()};
  return ctx.get();
}

/// The version encode_entry writes for `e`: 4 when it names its task, else 3 when it carries
/// its request, else 2.
int version_of(const CacheEntry& e) noexcept {
  if (!e.task.empty()) return kEntryFormatVersion;
  return e.request.empty() ? kEntryFormatVersionWithoutRequest : kEntryFormatVersionWithoutTask;
}

/// The v2/v3 payload: meta length, meta JSON, then the bodies as they are.
std::string serialize_payload(const CacheEntry& e) {
  unsigned char first_block[2048];  // the tree is scratch: it never needs the heap
  json::monotonic_resource arena(first_block, sizeof first_block);
  json::object usage(&arena);
  usage.reserve(5);
  usage.emplace("input_tokens", e.usage.input_tokens);
  usage.emplace("output_tokens", e.usage.output_tokens);
  usage.emplace("cache_write_tokens", e.usage.cache_write_tokens);
  usage.emplace("cache_read_tokens", e.usage.cache_read_tokens);
  usage.emplace("requests", e.usage.requests);

  const int version = version_of(e);
  json::object meta(&arena);
  meta.reserve(13);
  meta.emplace("v", version);
  meta.emplace("provider", e.provider);
  meta.emplace("model", e.model);
  meta.emplace("created_at_ms", e.created_at_ms);
  meta.emplace("ttl_ms", e.ttl_ms);
  meta.emplace("usage", std::move(usage));
  meta.emplace("cost_nano_usd", e.cost_nano_usd);
  meta.emplace("response_bytes", static_cast<std::int64_t>(e.response.size()));
  meta.emplace("stream_bytes", static_cast<std::int64_t>(e.stream.size()));
  const bool with_request = version >= 3;
  if (with_request) {
    meta.emplace("api", e.api);
    meta.emplace("scope_digest", e.scope_digest);
    meta.emplace("request_bytes", static_cast<std::int64_t>(e.request.size()));
  }
  if (version == 4) meta.emplace("task", e.task);
  const std::string meta_text = json::serialize(meta);

  const std::size_t total = 4 + meta_text.size() + e.response.size() + e.stream.size() +
                            (with_request ? e.request.size() : 0);
  if (total > kMaxEntryPayloadBytes) {
    throw std::length_error("cache entry payload exceeds the 64 MiB limit");
  }
  std::string payload;
  payload.reserve(total);
  payload.resize(4);
  store_le32(payload.data(), static_cast<std::uint32_t>(meta_text.size()));
  payload += meta_text;
  payload += e.response;
  payload += e.stream;
  if (with_request) payload += e.request;
  return payload;
}

void write_header(char* out, int version, unsigned char flags, std::size_t stored_size,
                  std::string_view stored) noexcept {
  std::memcpy(out, kMagic.data(), kMagic.size());
  out[kVersionOffset] = static_cast<char>(version);
  out[kFlagsOffset] = static_cast<char>(flags);
  out[kReservedOffset] = 0;
  out[kReservedOffset + 1] = 0;
  store_le32(out + kLengthOffset, static_cast<std::uint32_t>(stored_size));
  store_le32(out + kChecksumOffset, crc32c(stored));
}

// ---- decoding: every reader returns nullopt instead of throwing ----

std::optional<std::string> decompress(std::string_view frame) noexcept {
  const unsigned long long claimed = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (claimed == ZSTD_CONTENTSIZE_UNKNOWN || claimed == ZSTD_CONTENTSIZE_ERROR ||
      claimed > kMaxEntryPayloadBytes) {
    return std::nullopt;
  }
  ZSTD_DCtx* dctx = thread_decompressor();
  if (dctx == nullptr) return std::nullopt;
  try {
    std::string out(static_cast<std::size_t>(claimed), '\0');
    // Capacity equals the claimed size, so a frame that lies about its size (or trailing frames)
    // fails with dstSize_tooSmall rather than writing past the buffer.
    const std::size_t got =
        ZSTD_decompressDCtx(dctx, out.data(), out.size(), frame.data(), frame.size());
    if (ZSTD_isError(got) || got != out.size()) return std::nullopt;
    return out;
  } catch (const std::bad_alloc&) {
    return std::nullopt;
  }
}

const json::value* find(const json::object& obj, std::string_view key) noexcept {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &it->value();
}

bool read_int(const json::object& obj, std::string_view key, std::int64_t& out) noexcept {
  const json::value* v = find(obj, key);
  // The parser stores every integer that fits in int64 as int64; uint64 and double mean
  // out of range or not an integer.
  if (v == nullptr || !v->is_int64()) return false;
  out = v->get_int64();
  return true;
}

bool read_string(const json::object& obj, std::string_view key, std::string& out) {
  const json::value* v = find(obj, key);
  if (v == nullptr || !v->is_string()) return false;
  const json::string& s = v->get_string();
  out.assign(s.data(), s.size());
  return true;
}

bool read_usage(const json::object& root, Usage& usage) noexcept {
  const json::value* v = find(root, "usage");
  if (v == nullptr || !v->is_object()) return false;
  const json::object& obj = v->get_object();
  return obj.size() == 5 && read_int(obj, "input_tokens", usage.input_tokens) &&
         read_int(obj, "output_tokens", usage.output_tokens) &&
         read_int(obj, "cache_write_tokens", usage.cache_write_tokens) &&
         read_int(obj, "cache_read_tokens", usage.cache_read_tokens) &&
         read_int(obj, "requests", usage.requests);
}

/// Parses JSON that holds one object, in an arena that starts on the stack (the tree is scratch:
/// what is kept is copied out). nullopt when it is not an object.
template <typename Read>
std::optional<DecodeError> with_object(std::string_view text, Read&& read) {
  unsigned char first_block[4096];
  json::monotonic_resource arena(first_block, sizeof first_block);
  boost::system::error_code ec;
  json::parse_options options;
  options.allow_invalid_utf8 = true;  // v1 bodies are stored byte for byte, whatever they hold
  json::value root = json::parse(text, ec, &arena, options);
  if (ec || !root.is_object()) return DecodeError::bad_payload;
  return read(root.get_object());
}

/// The fields every version has; "v" must equal `version`.
std::optional<DecodeError> read_common(const json::object& obj, std::int64_t version,
                                       CacheEntry& e) {
  std::int64_t v = 0;
  if (!read_int(obj, "v", v)) return DecodeError::bad_payload;
  if (v != version) return DecodeError::unknown_version;
  const bool ok = read_string(obj, "provider", e.provider) && read_string(obj, "model", e.model) &&
                  read_int(obj, "created_at_ms", e.created_at_ms) &&
                  read_int(obj, "ttl_ms", e.ttl_ms) && read_usage(obj, e.usage) &&
                  read_int(obj, "cost_nano_usd", e.cost_nano_usd);
  if (!ok) return DecodeError::bad_payload;
  return std::nullopt;
}

std::variant<CacheEntry, DecodeError> read_payload_v1(std::string_view text) {
  CacheEntry e;
  const auto error = with_object(text, [&](const json::object& obj) -> std::optional<DecodeError> {
    if (auto common = read_common(obj, 1, e)) return common;
    const bool has_stream = find(obj, "stream") != nullptr;
    const bool ok = obj.size() == (has_stream ? 9u : 8u) &&
                    read_string(obj, "response", e.response) &&
                    (!has_stream || read_string(obj, "stream", e.stream));
    if (!ok) return DecodeError::bad_payload;
    return std::nullopt;
  });
  if (error) return *error;
  return e;
}

/// The v3 meta fields beyond v2's.
bool read_request_meta(const json::object& obj, CacheEntry& e, std::int64_t& request_bytes) {
  return read_string(obj, "api", e.api) && read_string(obj, "scope_digest", e.scope_digest) &&
         read_int(obj, "request_bytes", request_bytes);
}

/// Cuts `bodies` into the declared lengths, which must cover it exactly (each is checked
/// against what is left before it is used, so no sum can overflow).
bool split_bodies(std::string_view bodies, const std::array<std::int64_t, 3>& lengths,
                  const std::array<std::string*, 3>& out) {
  for (int i = 0; i < 3; ++i) {
    if (lengths[i] < 0 || static_cast<std::uint64_t>(lengths[i]) > bodies.size()) return false;
    out[i]->assign(bodies.substr(0, static_cast<std::size_t>(lengths[i])));
    bodies.remove_prefix(static_cast<std::size_t>(lengths[i]));
  }
  return bodies.empty();
}

/// The meta fields a version has: v2's 9, v3's request fields, v4's task.
std::size_t meta_fields(int version) noexcept {
  return version == 2 ? 9u : version == 3 ? 12u : 13u;
}

/// Versions 2, 3 and 4 (3 adds the request, after the bodies; 4 the task).
std::variant<CacheEntry, DecodeError> read_payload_v2(std::string_view payload, int version) {
  if (payload.size() < 4) return DecodeError::bad_payload;
  const std::uint32_t meta_size = load_le32(payload.data());
  if (meta_size > payload.size() - 4) return DecodeError::bad_payload;
  const std::string_view meta = payload.substr(4, meta_size);
  const std::string_view bodies = payload.substr(4 + meta_size);
  CacheEntry e;
  std::array<std::int64_t, 3> lengths{-1, -1, 0};  // response, stream, request
  const auto error = with_object(meta, [&](const json::object& obj) -> std::optional<DecodeError> {
    if (auto common = read_common(obj, version, e)) return common;
    const bool ok = obj.size() == meta_fields(version) &&
                    read_int(obj, "response_bytes", lengths[0]) &&
                    read_int(obj, "stream_bytes", lengths[1]) &&
                    (version < 3 || read_request_meta(obj, e, lengths[2])) &&
                    (version < 4 || read_string(obj, "task", e.task));
    if (!ok) return DecodeError::bad_payload;
    return std::nullopt;
  });
  if (error) return *error;
  // A v3 entry always carries its request (an empty one would be written as v2), a v4 entry
  // its task (an empty one would be written as v3 or v2).
  if (version == 3 && lengths[2] <= 0) return DecodeError::bad_payload;
  if (version == 4 && e.task.empty()) return DecodeError::bad_payload;
  const std::array<std::string*, 3> parts{&e.response, &e.stream, &e.request};
  if (!split_bodies(bodies, lengths, parts)) {
    return DecodeError::bad_payload;
  }
  return e;
}

std::variant<CacheEntry, DecodeError> read_payload(int version, std::string_view text) noexcept {
  try {
    return version == 1 ? read_payload_v1(text) : read_payload_v2(text, version);
  } catch (const std::exception&) {  // allocation failure only: the parse reports via ec
    return DecodeError::bad_payload;
  }
}

}  // namespace

std::string_view to_string(DecodeError e) noexcept {
  switch (e) {
    case DecodeError::truncated:
      return "truncated";
    case DecodeError::bad_magic:
      return "bad_magic";
    case DecodeError::unknown_version:
      return "unknown_version";
    case DecodeError::bad_checksum:
      return "bad_checksum";
    case DecodeError::bad_compression:
      return "bad_compression";
    case DecodeError::bad_payload:
      return "bad_payload";
  }
  return "unknown";
}

std::uint64_t entry_memory_bytes(const CacheEntry& entry) noexcept {
  return sizeof(CacheEntry) + entry.provider.size() + entry.model.size() + entry.response.size() +
         entry.stream.size() + entry.request.size() + entry.api.size() + entry.scope_digest.size() +
         entry.task.size();
}

bool entry_fits(const CacheEntry& entry) noexcept {
  // The payload is 4 bytes, the metadata JSON, then both bodies. The metadata is its fixed field
  // names and at most 20 digits per number (under 512 bytes), plus provider and model, each at
  // most 6 bytes per byte once escaped.
  constexpr std::size_t kMetadataBound = 512;
  const std::size_t bound = 4 + kMetadataBound +
                            6 * (entry.provider.size() + entry.model.size() + entry.api.size() +
                                 entry.scope_digest.size() + entry.task.size()) +
                            entry.response.size() + entry.stream.size() + entry.request.size();
  return bound <= kMaxEntryPayloadBytes;
}

std::string encode_entry(const CacheEntry& entry, const EncodeOptions& opts) {
  const std::string payload = serialize_payload(entry);  // throws length_error past 64 MiB
  std::string out;
  if (payload.size() < opts.compress_threshold) {
    out.resize(kEntryHeaderSize);
    out += payload;
    write_header(out.data(), version_of(entry), 0, payload.size(), payload);
    return out;
  }
  out.resize(kEntryHeaderSize + ZSTD_compressBound(payload.size()));
  const std::size_t stored = ZSTD_compressCCtx(thread_compressor(), out.data() + kEntryHeaderSize,
                                               out.size() - kEntryHeaderSize, payload.data(),
                                               payload.size(), opts.zstd_level);
  if (ZSTD_isError(stored)) throw std::runtime_error("zstd compression of a cache entry failed");
  out.resize(kEntryHeaderSize + stored);
  write_header(out.data(), version_of(entry), kFlagZstd, stored,
               std::string_view(out).substr(kEntryHeaderSize, stored));
  return out;
}

std::variant<CacheEntry, DecodeError> decode_entry(std::string_view bytes) {
  if (bytes.size() < kEntryHeaderSize) return DecodeError::truncated;
  if (std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0) return DecodeError::bad_magic;
  const auto flags = static_cast<unsigned char>(bytes[kFlagsOffset]);
  const int version = static_cast<unsigned char>(bytes[kVersionOffset]);
  // Unknown flag bits or non-zero reserved bytes mean a writer newer than this reader.
  if (version < 1 || version > kEntryFormatVersion ||
      (flags & ~(kFlagZstd | kEntryFlagSigned)) != 0 || bytes[kReservedOffset] != 0 ||
      bytes[kReservedOffset + 1] != 0) {
    return DecodeError::unknown_version;
  }
  // A signed entry's MAC follows the payload; checking it is the tiers' business
  // (entry_signature.hpp), so a reader without the key still reads the entry.
  if ((flags & kEntryFlagSigned) != 0) {
    if (bytes.size() < kEntryHeaderSize + kEntryMacBytes) return DecodeError::truncated;
    bytes.remove_suffix(kEntryMacBytes);
  }
  const std::string_view stored = bytes.substr(kEntryHeaderSize);
  if (load_le32(bytes.data() + kLengthOffset) != stored.size()) return DecodeError::truncated;
  if (load_le32(bytes.data() + kChecksumOffset) != crc32c(stored)) {
    return DecodeError::bad_checksum;
  }
  if ((flags & kFlagZstd) == 0) return read_payload(version, stored);
  const std::optional<std::string> payload = decompress(stored);
  if (!payload) return DecodeError::bad_compression;
  return read_payload(version, *payload);
}

std::string request_scope_digest(std::string_view scope) {
  if (scope.empty()) return {};
  return sha256_hex(scope).substr(0, 16);
}

}  // namespace llm_caching::core

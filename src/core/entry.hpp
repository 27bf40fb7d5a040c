// The cache entry contract (DESIGN §4): a versioned, checksummed envelope; zstd above a small size.
// Decoding never runs code and never trusts lengths it has not checked.
#pragma once

#include "llm_caching/usage.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace llm_caching::core {

/// The format encode_entry writes for an entry that names the task that recorded it. One without
/// a task is written as format 3 (with a request) or 2 (without), byte for byte as before, so
/// entries signed or committed before format 4 keep their bytes. decode_entry reads versions 1-4.
///   v4 payload: as v3, plus "task" (never empty) in the meta JSON; the request may be empty.
///   v3 payload: as v2, plus "api", "scope_digest" and "request_bytes" in the meta JSON, and the
///               request bytes after the stream bytes.
///   v2 payload: meta length u32 LE, meta JSON (every field but the bodies, plus
///               "response_bytes" and "stream_bytes"), the response bytes, the stream bytes.
///   v1 payload: one JSON object holding the bodies as JSON strings.
/// v2 keeps the bodies raw: a v1 decode spent most of its time unescaping them.
inline constexpr int kEntryFormatVersion = 4;
inline constexpr int kEntryFormatVersionWithoutTask = 3;
inline constexpr int kEntryFormatVersionWithoutRequest = 2;
/// Envelope header: magic "LLMC", version u8, flags u8 (bit0 = zstd, bit1 = signed: a 32-byte
/// HMAC-SHA256 follows the payload, entry_signature.hpp), 2 reserved zero bytes, stored payload
/// length u32 LE, CRC-32C of the stored payload u32 LE.
inline constexpr std::size_t kEntryHeaderSize = 16;
/// Largest payload an entry may hold (before compression). decode_entry refuses zstd frames
/// that claim more, so a hostile frame cannot make it allocate without bound.
inline constexpr std::size_t kMaxEntryPayloadBytes = std::size_t{64} << 20;

struct CacheEntry {
  std::string provider;            ///< "openai" | "anthropic" | "gemini"
  std::string model;               ///< model id as sent
  std::int64_t created_at_ms = 0;  ///< unix epoch milliseconds
  std::int64_t ttl_ms = 0;         ///< 0 = no expiry
  /// The native response body exactly as received (JSON text), so a hit replays it byte for byte.
  std::string response;
  /// For streamed originals: the SSE body exactly as received; empty otherwise.
  std::string stream;
  Usage usage;
  std::int64_t cost_nano_usd = 0;  ///< cost of the original call
  // Format 3: the request the entry answers, as it was keyed (DESIGN §3), so that a replay miss
  // can name the nearest recorded request and what differs. All three are empty in entries
  // written before format 3; encode_entry keeps api and scope_digest only with a request.
  /// The keyed canonical request: RFC 8785, volatile fields removed. It holds no credential
  /// (those travel in headers and URLs, never in the keyed body).
  std::string request;
  std::string api;           ///< to_string(Api): "chat", "responses", ...
  std::string scope_digest;  ///< request_scope_digest(scope): "" for the shared scope
  /// Format 4: the task of the call that recorded the answer (the library's task_name, the
  /// gateway's x-llm-task), as entry_task_name keeps it; "" when none was given (and in entries
  /// written before format 4). Not part of the key: the same request from two tasks is one
  /// entry, and a hit never rewrites it, so it names the task that recorded it first.
  std::string task;

  bool expired_at(std::int64_t now_ms) const noexcept {
    return ttl_ms > 0 && now_ms >= created_at_ms + ttl_ms;
  }
  friend bool operator==(const CacheEntry&, const CacheEntry&) = default;
};

enum class DecodeError {
  truncated,        ///< shorter than its header or than the length it declares
  bad_magic,        ///< not an llm-caching entry
  unknown_version,  ///< written by a newer (or unknown) format
  bad_checksum,     ///< bytes changed after writing
  bad_compression,  ///< zstd frame invalid
  bad_payload,      ///< JSON missing fields or of the wrong types
};
std::string_view to_string(DecodeError e) noexcept;

struct EncodeOptions {
  /// Payloads at least this large are zstd-compressed.
  std::size_t compress_threshold = 8192;
  int zstd_level = 3;
};

/// The memory a decoded entry holds: its strings and the struct. What the L1 counts against its
/// bound, rather than the encoded size, which zstd can make several times smaller.
std::uint64_t entry_memory_bytes(const CacheEntry& entry) noexcept;
/// Whether encode_entry will take the entry: true guarantees no std::length_error. Errs on the
/// safe side by at most a few kilobytes below kMaxEntryPayloadBytes.
bool entry_fits(const CacheEntry& entry) noexcept;

/// Throws std::length_error if the JSON payload would exceed kMaxEntryPayloadBytes.
std::string encode_entry(const CacheEntry& entry, const EncodeOptions& opts = {});
/// Never throws for bad input, never reads out of bounds. The payload is read strictly: a missing,
/// extra or mistyped field, or body lengths that do not add up, is bad_payload; a payload "v"
/// other than the header's version is unknown_version.
std::variant<CacheEntry, DecodeError> decode_entry(std::string_view bytes);

/// What an entry keeps of its key's scope (a tenant's credential hash, an endpoint): 16 hex
/// digits of SHA-256 over it, "" for the empty (shared) scope. Enough to tell scopes apart,
/// and nothing of a tenant's credential hash is stored as it was keyed.
std::string request_scope_digest(std::string_view scope);

/// Longest task name an entry keeps, in bytes.
inline constexpr std::size_t kMaxEntryTaskBytes = 128;
/// A caller's task name as an entry keeps it: at most kMaxEntryTaskBytes, cut on a character
/// boundary, each byte of a control character or of invalid UTF-8 as '?'. The same name always
/// gives the same text, and the text is valid UTF-8 (a dir:// document can show it).
std::string entry_task_name(std::string_view task);

}  // namespace llm_caching::core

// The file a `dir://` cache keeps per entry (docs/TESTING.md): readable, reviewable JSON that a
// test suite commits. Pure functions, so the format is tested without a file system
// (tests/unit/test_dir_document.cpp).
//
// A document holds the key, provider, model, usage, cost and the answer: the native response as
// parsed JSON, and for a streamed original its SSE events as a list; the request it answers and
// the task that recorded it when the entry keeps them. Keys are sorted, two spaces
// indent, numbers and strings as RFC 8785 writes them, and nothing volatile (no creation time, no
// expiry, no access time): the same answer always gives the same bytes, so recording it again
// or replaying it leaves `git status` clean. A body that is not JSON (or an SSE stream this
// format cannot list faithfully) is kept as text, or as base64 when it is not UTF-8.
#pragma once

#include "cache/redactor.hpp"
#include "core/entry.hpp"

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace llm_caching::cache {

/// The `format` of a document whose entry carries no request (written before entry format 3).
inline constexpr std::string_view kDirDocumentFormat = "llm-caching-dir-entry/1";
/// The `format` of a document that shows its entry's request too (entry format 3): "request"
/// (the keyed canonical request, parsed), "api" and "scope_digest". Both formats are read.
inline constexpr std::string_view kDirDocumentFormatWithRequest = "llm-caching-dir-entry/2";
/// The `format` of a document whose entry names the task that recorded it (entry format 4):
/// "task", and the request's fields when it has one. All three formats are read.
inline constexpr std::string_view kDirDocumentFormatWithTask = "llm-caching-dir-entry/3";

/// The document for an entry stored under `key`. Strings of the answer and of the request pass
/// through `redact`.
/// `mac`: a signed entry's MAC (core::entry_mac), kept as "mac" in hex and put back on reads.
std::string entry_document(std::string_view key, const core::CacheEntry& entry,
                           const Redactor& redact, std::string_view mac = {});
/// The document for a value that is not an encoded entry (kept as base64; Backend takes any
/// bytes, and the generic backend tests store such values).
std::string raw_document(std::string_view key, std::string_view value);

/// The "task" of a document's text; "" when it has none (or is not a document).
std::string document_task(std::string_view text);

/// What a document holds: the encoded bytes a get returns (an entry is re-encoded with
/// encode_entry, created_at 0 and no expiry), and its key.
struct ParsedDocument {
  std::string key;
  std::string value;
};
/// The document read back; a string saying what is wrong with it otherwise.
std::variant<ParsedDocument, std::string> parse_document(std::string_view text);

}  // namespace llm_caching::cache

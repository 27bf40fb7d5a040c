// Internal RFC 8785 writer. The public entry point is llm_caching::canonical_json
// (include/llm_caching/cache_key.hpp); this header adds the pieces the key derivation and the
// tests need: appending to an existing buffer, and serialising with edits applied so that the
// key derivation never has to deep-copy a request to drop or renumber a few fields.
#pragma once

#include <boost/json/value.hpp>

#include <span>
#include <string>
#include <utility>

namespace llm_caching::detail {

/// Changes applied while serialising. Values are identified by address inside the value being
/// serialised; both spans must be sorted by address (std::less on the pointer).
struct CanonicalEdits {
  /// Object members whose value has one of these addresses are left out, at any depth.
  std::span<const boost::json::value* const> omitted_members;
  /// String values at these addresses are written as the paired string instead.
  std::span<const std::pair<const boost::json::value*, std::string>> replaced_strings;
};

/// Deeper values are rejected with ConfigurationError instead of overflowing the stack.
/// (Boost.JSON's parser stops at 32 by default; this guards values built in code.)
inline constexpr int max_canonical_depth = 512;

/// Appends the RFC 8785 form of `v` with `edits` applied.
/// Throws ConfigurationError for NaN/infinity, invalid UTF-8 or nesting beyond the limit.
void append_canonical_json(std::string& out, const boost::json::value& v,
                           const CanonicalEdits& edits = {});
void append_canonical_json(std::string& out, const boost::json::object& o,
                           const CanonicalEdits& edits = {});

/// Appends a double in ECMAScript Number::toString form (RFC 8785 §3.2.2.3); -0 becomes "0".
void append_canonical_number(std::string& out, double d);

/// Appends a JSON string literal with RFC 8785's minimal escaping; validates UTF-8.
void append_canonical_string(std::string& out, std::string_view s);

/// RFC 8785 member order: true when `a` sorts before `b` by UTF-16 code units.
bool utf16_less(std::string_view a, std::string_view b) noexcept;

}  // namespace llm_caching::detail

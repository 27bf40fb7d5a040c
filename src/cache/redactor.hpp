// LLM_CACHE_REDACT: regular expressions whose matches are scrubbed from what a cache stores
// (docs/TESTING.md): the request an entry keeps, on every backend (the tiers scrub it before the
// entry is stored), and a `dir://` file's answer too, so a secret never reaches a committed file.
#pragma once

#include <boost/json/fwd.hpp>

#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::cache {

/// Scrubs text matching any of its patterns from what a document stores (LLM_CACHE_REDACT).
class Redactor {
 public:
  Redactor() = default;
  /// ECMAScript regexes. Throws ConfigurationError naming `source` and the pattern's position
  /// (1-based) for one that does not compile; the pattern itself is not quoted (it may be part
  /// of a secret).
  Redactor(const std::vector<std::string>& patterns, std::string_view source);
  /// Patterns from one string: one a line, empty lines ignored (how LLM_CACHE_REDACT is read).
  static std::vector<std::string> split_lines(std::string_view text);

  bool empty() const noexcept { return patterns_.empty(); }
  /// `text` with every match replaced by kRedacted.
  std::string apply(std::string_view text) const;
  /// Every string in `v` (not the member names) passed through apply.
  void apply_to_strings(boost::json::value& v) const;
  /// A canonical request (RFC 8785 text) with its strings passed through apply, written again
  /// in canonical form; the same text when there are no patterns or it is not JSON, and "" when
  /// a match cut a character in two (the text is no longer UTF-8: nothing is kept then).
  std::string apply_to_request(std::string_view canonical) const;

  static constexpr std::string_view kRedacted = "[REDACTED]";

 private:
  std::vector<std::regex> patterns_;
};

}  // namespace llm_caching::cache

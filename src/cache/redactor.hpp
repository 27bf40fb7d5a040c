// LLM_CACHE_REDACT: regular expressions whose matches a `dir://` cache scrubs from what it writes
// to its files (docs/TESTING.md), so a secret echoed in an answer never reaches a committed file.
#pragma once

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

  static constexpr std::string_view kRedacted = "[REDACTED]";

 private:
  std::vector<std::regex> patterns_;
};

}  // namespace llm_caching::cache

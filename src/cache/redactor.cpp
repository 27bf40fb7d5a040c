#include "cache/redactor.hpp"

#include "llm_caching/errors.hpp"

#include <fmt/format.h>

namespace llm_caching::cache {

Redactor::Redactor(const std::vector<std::string>& patterns, std::string_view source) {
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    try {
      patterns_.emplace_back(patterns[i], std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      throw ConfigurationError(fmt::format(
          "{}: pattern {} of {} is not a valid ECMAScript regular expression ({}); write one "
          "pattern a line",
          source, i + 1, patterns.size(), e.what()));
    }
  }
}

std::vector<std::string> Redactor::split_lines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (!line.empty()) lines.emplace_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

std::string Redactor::apply(std::string_view text) const {
  std::string out(text);
  for (const std::regex& pattern : patterns_) {
    out = std::regex_replace(out, pattern, std::string(kRedacted));
  }
  return out;
}

}  // namespace llm_caching::cache

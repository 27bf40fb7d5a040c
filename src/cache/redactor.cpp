#include "cache/redactor.hpp"

#include "core/canonical_json.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <boost/json/value.hpp>

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

void Redactor::apply_to_strings(boost::json::value& v) const {
  if (v.is_string()) {
    v = boost::json::string(apply(v.get_string()));
  } else if (v.is_array()) {
    for (boost::json::value& item : v.get_array()) apply_to_strings(item);
  } else if (v.is_object()) {
    for (auto& member : v.get_object()) apply_to_strings(member.value());
  }
}

std::string Redactor::apply_to_request(std::string_view canonical) const {
  if (empty()) return std::string(canonical);
  boost::json::error_code ec;
  boost::json::value parsed = parse_json_exact(canonical, ec);
  if (ec) return std::string(canonical);
  apply_to_strings(parsed);
  std::string out;
  try {
    detail::append_canonical_json(out, parsed);
  } catch (const ConfigurationError&) {
    return {};  // a match cut a character in two: keep no request rather than an unscrubbed one
  }
  return out;
}

}  // namespace llm_caching::cache

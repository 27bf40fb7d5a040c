#include "cache/cache_url_params.hpp"

#include "cache/cache_url.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <vector>

namespace llm_caching::cache::url {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void fail(std::string_view problem, std::string_view url) {
  throw ConfigurationError(
      fmt::format("invalid cache URL '{}': {}", mask_url_password(url), problem));
}

std::string percent_decode(std::string_view text, std::string_view url) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const int hi = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_digit(text[i + 2]) : -1;
    if (lo < 0) fail("a '%' must be followed by two hex digits", url);
    const char decoded = static_cast<char>(hi * 16 + lo);
    if (decoded == '\0') fail("%00 is not allowed", url);
    out.push_back(decoded);
    i += 2;
  }
  return out;
}

Params parse_query(std::string_view query, std::string_view url) {
  Params params;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq + 1 == item.size()) {
      fail(fmt::format("query parameter '{}' needs a value (name=value)", item.substr(0, eq)), url);
    }
    std::string name(item.substr(0, eq));
    if (!params.emplace(name, percent_decode(item.substr(eq + 1), url)).second) {
      fail(fmt::format("query parameter '{}' is given twice", name), url);
    }
  }
  return params;
}

void reject_unknown_params(const Params& params, std::initializer_list<std::string_view> known,
                           std::string_view url) {
  std::vector<std::string> unknown;
  for (const auto& [name, value] : params) {
    if (std::find(known.begin(), known.end(), name) == known.end()) unknown.push_back(name);
  }
  if (unknown.empty()) return;
  fail(fmt::format("unknown query parameter{} {}; accepted here: {}", unknown.size() > 1 ? "s" : "",
                   fmt::join(unknown, ", "), fmt::join(known, ", ")),
       url);
}

std::uint64_t parse_unsigned(std::string_view digits, std::string_view what) {
  if (digits.empty() || digits.size() > 19 ||
      !std::all_of(digits.begin(), digits.end(),
                   [](unsigned char c) { return std::isdigit(c) != 0; })) {
    throw ConfigurationError(
        fmt::format("{}: '{}' is not a non-negative whole number", what, digits));
  }
  std::uint64_t value = 0;
  for (char c : digits) value = value * 10 + static_cast<std::uint64_t>(c - '0');
  return value;
}

}  // namespace llm_caching::cache::url

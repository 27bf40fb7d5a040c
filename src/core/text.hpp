// Small text helpers every part needs: ASCII lowercase, lowercase hex, percent-encoding. Pure
// functions; kept in one place so no part grows its own copy.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace llm_caching::core {

/// ASCII lowercase (header names, URL schemes); other bytes unchanged. Not std::tolower: that is
/// a library call per byte, and reads the locale (the gateway lowercases every request's header
/// names, a fair part of a hit's cost: docs/PERFORMANCE.md).
inline std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

/// Appends each byte of `bytes` as two lowercase hex digits.
/// `text` without the slashes at its end (base URLs and paths are compared and joined so).
inline std::string without_trailing_slashes(std::string text) {
  while (!text.empty() && text.back() == '/') text.pop_back();
  return text;
}

inline void append_hex(std::string& out, std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xf]);
  }
}

inline std::string hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  append_hex(out, bytes);
  return out;
}

/// The bytes that `hex` wrote: nullopt unless every pair is two lowercase hex digits.
inline std::optional<std::string> from_hex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  auto digit = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  std::string out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int high = digit(text[i]);
    const int low = digit(text[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
  }
  return out;
}

/// Appends `text` with every byte outside RFC 3986's unreserved set (A-Z a-z 0-9 - . _ ~)
/// written as %XX (uppercase hex). The result has no separator character of any kind, so
/// encoded values can be joined with ',', ';' or '=' without two inputs ever colliding.
inline void append_percent_encoded(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : text) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
}

/// Appends `text` with '%', every byte that is not printable ASCII and every byte in
/// `separators` written as %XX: readable where values are mostly plain, and still one-to-one, so
/// values joined by those separators never read as other values.
inline void append_escaped(std::string& out, std::string_view text, std::string_view separators) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f || c == '%' || separators.find(c) != std::string_view::npos) {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    } else {
      out.push_back(c);
    }
  }
}

}  // namespace llm_caching::core

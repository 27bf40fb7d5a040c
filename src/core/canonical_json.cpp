// RFC 8785 (JSON Canonicalization Scheme) serialisation, see canonical_json.hpp.
#include "core/canonical_json.hpp"

#include "core/printable.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <unordered_set>
#include <vector>

namespace llm_caching {
namespace detail {
namespace {

namespace json = boost::json;

// Length of the valid UTF-8 sequence starting at s[i] (whose first byte is >= 0x80), or 0 if the
// bytes there are not well-formed UTF-8 (RFC 3629 table: no overlongs, no surrogates, <= U+10FFFF).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
  const auto byte = [&](std::size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
  };
  const auto cont = [](unsigned b) { return b >= 0x80 && b <= 0xBF; };
  const unsigned b0 = byte(0);
  const unsigned b1 = byte(1);
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(b1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const unsigned hi = b0 == 0xED ? 0x9F : 0xBF;
    return (b1 >= lo && b1 <= hi && cont(byte(2))) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80;
    const unsigned hi = b0 == 0xF4 ? 0x8F : 0xBF;
    return (b1 >= lo && b1 <= hi && cont(byte(2)) && cont(byte(3))) ? 4 : 0;
  }
  return 0;
}

// UTF-8 byte order equals code point order; UTF-16 order differs only in that code points above
// U+FFFF (lead bytes F0..F4, high surrogates D800..DBFF in UTF-16) sort before U+E000..U+FFFF
// (lead bytes EE, EF). Continuation bytes never equal EE/EF, so weighting every byte is safe,
// and the weight is injective, so this is a strict total order even for invalid UTF-8.
unsigned utf16_order_weight(unsigned char b) noexcept {
  return (b == 0xEE || b == 0xEF) ? b + 0x100u : b;
}

// True when none of the 8 bytes in `word` needs attention (escape or UTF-8 validation): all are
// ASCII, none is a control character, '"' or a backslash. Bit tricks from "Bit Twiddling Hacks"
// (haszero/hasless); false positives only cost a slower byte-wise step, never a wrong result.
bool is_plain_ascii_word(std::uint64_t word) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101u;
  constexpr std::uint64_t highs = 0x8080808080808080u;
  const auto has_zero_byte = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
  const std::uint64_t control = (word - ones * 0x20) & ~word & highs;
  return ((word & highs) | control | has_zero_byte(word ^ (ones * '"')) |
          has_zero_byte(word ^ (ones * '\\'))) == 0;
}

void append_integer(std::string& out, auto n) {
  std::array<char, 24> buf;
  const auto result = std::to_chars(buf.data(), buf.data() + buf.size(), n);
  out.append(buf.data(), result.ptr);
}

class CanonicalWriter {
 public:
  CanonicalWriter(std::string& out, const CanonicalEdits& edits) : out_(out), edits_(edits) {}

  void write(const json::value& v, int depth) {
    switch (v.kind()) {
      case json::kind::null:
        out_.append("null");
        return;
      case json::kind::bool_:
        out_.append(v.get_bool() ? "true" : "false");
        return;
      // Integers are written exactly, also beyond 2^53 (documented deviation from RFC 8785,
      // which would round them through a double): distinct large seeds must not share a key.
      // Within 2^53 this is identical to the ECMAScript form of the same value as a double.
      case json::kind::int64:
        append_integer(out_, v.get_int64());
        return;
      case json::kind::uint64:
        append_integer(out_, v.get_uint64());
        return;
      case json::kind::double_:
        append_canonical_number(out_, v.get_double());
        return;
      case json::kind::string:
        write_string(v);
        return;
      case json::kind::array:
        write_array(v.get_array(), depth + 1);
        return;
      case json::kind::object:
        write(v.get_object(), depth);
        return;
    }
  }
  void write(const json::object& o, int depth) { write_object(o, depth + 1); }

 private:
  void check_depth(int depth) const {
    if (depth > max_canonical_depth) {
      throw ConfigurationError("JSON value is nested deeper than " +
                               std::to_string(max_canonical_depth) + " levels");
    }
  }

  void write_string(const json::value& v) {
    const auto& replaced = edits_.replaced_strings;
    if (!replaced.empty()) {
      const auto it = std::lower_bound(
          replaced.begin(), replaced.end(), &v,
          [](const auto& entry, const json::value* p) { return std::less<>{}(entry.first, p); });
      if (it != replaced.end() && it->first == &v) {
        append_canonical_string(out_, it->second);
        return;
      }
    }
    append_canonical_string(out_, v.get_string());
  }

  void write_array(const json::array& a, int depth) {
    check_depth(depth);
    out_.push_back('[');
    bool first = true;
    for (const auto& element : a) {
      if (!first) out_.push_back(',');
      first = false;
      write(element, depth);
    }
    out_.push_back(']');
  }

  bool omitted(const json::value& v) const {
    const auto& omit = edits_.omitted_members;
    return !omit.empty() && std::binary_search(omit.begin(), omit.end(), &v, std::less<>{});
  }

  void write_object(const json::object& o, int depth) {
    check_depth(depth);
    // Sort pointers to the members; small objects (the common case) avoid a heap allocation.
    constexpr std::size_t inline_capacity = 16;
    std::array<const json::key_value_pair*, inline_capacity> inline_members;
    std::vector<const json::key_value_pair*> heap_members;
    const json::key_value_pair** members = inline_members.data();
    if (o.size() > inline_capacity) {
      heap_members.resize(o.size());
      members = heap_members.data();
    }
    std::size_t count = 0;
    for (const auto& member : o) {
      if (!omitted(member.value())) members[count++] = &member;
    }
    std::sort(members, members + count,
              [](const auto* a, const auto* b) { return utf16_less(a->key(), b->key()); });
    out_.push_back('{');
    for (std::size_t i = 0; i < count; ++i) {
      if (i != 0) out_.push_back(',');
      append_canonical_string(out_, members[i]->key());
      out_.push_back(':');
      write(members[i]->value(), depth);
    }
    out_.push_back('}');
  }

  std::string& out_;
  const CanonicalEdits& edits_;
};

}  // namespace

bool utf16_less(std::string_view a, std::string_view b) noexcept {
  const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  if (ib == b.end()) return false;  // b is a prefix of a, or equal
  if (ia == a.end()) return true;   // a is a proper prefix of b
  return utf16_order_weight(static_cast<unsigned char>(*ia)) <
         utf16_order_weight(static_cast<unsigned char>(*ib));
}

void append_canonical_string(std::string& out, std::string_view s) {
  static constexpr char hex_digits[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run_start = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    std::uint64_t word;
    if (i + sizeof word <= s.size()) {
      std::memcpy(&word, s.data() + i, sizeof word);
      if (is_plain_ascii_word(word)) {
        i += sizeof word;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t length = utf8_sequence_length(s, i);
      if (length == 0) throw ConfigurationError("JSON string is not valid UTF-8");
      i += length;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out.append(s.data() + run_start, i - run_start);
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        out.append("\\u00");
        out.push_back(hex_digits[c >> 4]);
        out.push_back(hex_digits[c & 0xF]);
    }
    run_start = ++i;
  }
  out.append(s.data() + run_start, s.size() - run_start);
  out.push_back('"');
}

void append_canonical_number(std::string& out, double d) {
  if (!std::isfinite(d)) {
    throw ConfigurationError("JSON number is NaN or infinite and has no canonical form");
  }
  if (d == 0) {  // both +0 and -0
    out.push_back('0');
    return;
  }
  // Shortest round-trip digits, the same digits ECMAScript's Number::toString chooses.
  std::array<char, 32> buf;
  const auto result =
      std::to_chars(buf.data(), buf.data() + buf.size(), d, std::chars_format::scientific);
  std::string_view text(buf.data(), static_cast<std::size_t>(result.ptr - buf.data()));
  if (text.front() == '-') {
    out.push_back('-');
    text.remove_prefix(1);
  }
  const std::size_t e_pos = text.find('e');
  std::array<char, 20> digits;  // at most 17 significant digits
  int k = 0;
  for (char c : text.substr(0, e_pos)) {
    if (c != '.') digits[static_cast<std::size_t>(k++)] = c;
  }
  int exponent = 0;
  std::string_view exponent_text = text.substr(e_pos + 1);
  if (exponent_text.front() == '+') exponent_text.remove_prefix(1);
  std::from_chars(exponent_text.data(), exponent_text.data() + exponent_text.size(), exponent);
  const int n = exponent + 1;  // value = digits * 10^(n - k), ECMA-262 Number::toString notation
  const std::string_view ds(digits.data(), static_cast<std::size_t>(k));

  if (k <= n && n <= 21) {
    out.append(ds);
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(ds.substr(0, static_cast<std::size_t>(n)));
    out.push_back('.');
    out.append(ds.substr(static_cast<std::size_t>(n)));
  } else if (-6 < n && n <= 0) {
    out.append("0.");
    out.append(static_cast<std::size_t>(-n), '0');
    out.append(ds);
  } else {
    out.push_back(ds.front());
    if (k > 1) {
      out.push_back('.');
      out.append(ds.substr(1));
    }
    out.push_back('e');
    out.push_back(n - 1 >= 0 ? '+' : '-');
    append_integer(out, std::abs(n - 1));
  }
}

void append_canonical_json(std::string& out, const boost::json::value& v,
                           const CanonicalEdits& edits) {
  CanonicalWriter(out, edits).write(v, 0);
}

void append_canonical_json(std::string& out, const boost::json::object& o,
                           const CanonicalEdits& edits) {
  CanonicalWriter(out, edits).write(o, 0);
}

}  // namespace detail

std::string canonical_json(const boost::json::value& v) {
  std::string out;
  out.reserve(256);
  detail::append_canonical_json(out, v);
  return out;
}

}  // namespace llm_caching

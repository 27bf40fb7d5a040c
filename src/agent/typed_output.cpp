// Non-template parts of typed output: error messages, JSON paths, number checks, serialisation.
#include "llm_caching/typed_output.hpp"

#include <cfloat>
#include <charconv>
#include <cmath>

#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>

namespace llm_caching::detail {
namespace {

constexpr std::size_t kExcerptBytes = 200;  // ProviderError's body excerpt
constexpr std::size_t kEchoBytes = 64;      // model-chosen keys and strings quoted in messages

// Cuts text to at most max_bytes without splitting a UTF-8 sequence, marking the cut with "...".
std::string truncate_utf8(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t cut = max_bytes - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  std::string out(text.substr(0, cut));
  out += "...";
  return out;
}

std::string quoted(std::string_view text) {
  return boost::json::serialize(boost::json::string_view(text.data(), text.size()));
}

std::string_view kind_name(const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_:
      return "number";
    case boost::json::kind::string:
      return "string";
    case boost::json::kind::array:
      return "array";
    case boost::json::kind::object:
      return "object";
  }
  return "value";
}

bool is_identifier(std::string_view name) {
  if (name.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(name.front())) return false;
  for (char c : name) {
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

void append_double(std::string& out, double d) {
  if (!std::isfinite(d)) {  // never produced by to_json_value; keep the output valid JSON
    out += "null";
    return;
  }
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, d);
  const std::string_view text(buffer, static_cast<std::size_t>(result.ptr - buffer));
  out += text;
  // Mark a whole double as a number with a fraction, as Python's json does ("30.0").
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

template <class Integer>
void append_integer(std::string& out, Integer i) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, i);
  out.append(buffer, result.ptr);
}

void append_compact(std::string& out, const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null:
      out += "null";
      return;
    case boost::json::kind::bool_:
      out += value.get_bool() ? "true" : "false";
      return;
    case boost::json::kind::int64:
      append_integer(out, value.get_int64());
      return;
    case boost::json::kind::uint64:
      append_integer(out, value.get_uint64());
      return;
    case boost::json::kind::double_:
      append_double(out, value.get_double());
      return;
    case boost::json::kind::string:
      out += boost::json::serialize(value.get_string());
      return;
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const boost::json::value& element : value.get_array()) {
        if (!first) out += ',';
        first = false;
        append_compact(out, element);
      }
      out += ']';
      return;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& member : value.get_object()) {
        if (!first) out += ',';
        first = false;
        out += boost::json::serialize(member.key());
        out += ':';
        append_compact(out, member.value());
      }
      out += '}';
      return;
    }
  }
}

std::string excerpt_of(const boost::json::value& root) {
  return truncate_utf8(serialize_compact(root), kExcerptBytes);
}

}  // namespace

std::string sanitize_schema_name(std::string_view name) {
  constexpr std::size_t kMaxLength = 64;  // OpenAI: ^[a-zA-Z0-9_-]{1,64}$
  std::string out;
  for (char c : name.substr(0, kMaxLength)) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '-';
    out += allowed ? c : '_';
  }
  return out.empty() ? std::string("output") : out;
}

void json_path::push_member(std::string_view name) {
  if (is_identifier(name)) {
    text_ += '.';
    text_ += name;
    return;
  }
  text_ += '[';
  text_ += quoted(truncate_utf8(name, kEchoBytes));
  text_ += ']';
}

void json_path::push_index(std::size_t index) {
  text_ += '[';
  append_integer(text_, index);
  text_ += ']';
}

void fail_output(const read_context& context, std::string_view detail) {
  std::string message = "model output does not match ";
  message += context.type_name;
  message += ": ";
  message += context.path.text();
  message += ": ";
  message += detail;
  throw ProviderError(message, 200, "output_validation", excerpt_of(context.root));
}

void fail_kind(const read_context& context, std::string_view expected,
               const boost::json::value& got) {
  std::string detail = "expected ";
  detail += expected;
  detail += ", got ";
  detail += kind_name(got);
  if (expected == "integer" && got.is_double()) {
    detail += ' ';
    append_double(detail, got.get_double());
  }
  fail_output(context, detail);
}

void fail_integer_range(const read_context& context, const boost::json::value& got, bool is_signed,
                        std::size_t bits, std::string_view min, std::string_view max) {
  std::string detail = "integer ";
  append_compact(detail, got);
  detail += " is out of range for ";
  detail += is_signed ? "int" : "uint";
  append_integer(detail, bits);
  detail += " (";
  detail += min;
  detail += " to ";
  detail += max;
  detail += ')';
  fail_output(context, detail);
}

void fail_enum_name(const read_context& context, std::string_view allowed, std::string_view got) {
  fail_output(context, "expected one of " + std::string(allowed) + ", got " +
                           quoted(truncate_utf8(got, kEchoBytes)));
}

void fail_non_finite(const json_path& path) {
  throw Error("to_json_value: " + path.text() + ": NaN and infinity have no JSON representation");
}

void fail_unnamed_enum(const json_path& path, std::string_view enum_name, long long value) {
  throw Error("to_json_value: " + path.text() + ": value " + std::to_string(value) + " of enum " +
              std::string(enum_name) + " has no described name");
}

void fail_recursive_schema(std::string_view type_name) {
  throw ConfigurationError("json_schema_for: " + std::string(type_name) +
                           " contains itself; recursive types need $ref, which typed output "
                           "schemas do not use");
}

bool is_finite(double d) noexcept {
  return std::isfinite(d);
}

bool is_integral_double(double d) noexcept {
  return std::isfinite(d) && std::trunc(d) == d;
}

bool fits_float(double d) noexcept {
  return std::isfinite(d) && std::fabs(d) <= FLT_MAX;
}

// The bounds are powers of two, exact in a double, so the comparisons decide without rounding.
bool double_to_int64(double d, std::int64_t& out) noexcept {
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return false;
  out = static_cast<std::int64_t>(d);
  return true;
}

bool double_to_uint64(double d, std::uint64_t& out) noexcept {
  if (!(d >= 0.0 && d < 18446744073709551616.0)) return false;
  out = static_cast<std::uint64_t>(d);
  return true;
}

std::string serialize_compact(const boost::json::value& value) {
  std::string out;
  append_compact(out, value);
  return out;
}

boost::json::value parse_model_output(std::string_view text, std::string_view type_name) {
  boost::json::parser parser;
  boost::system::error_code ec;
  // write() wants the whole document: incomplete input and trailing characters are errors.
  const std::size_t consumed = parser.write(text.data(), text.size(), ec);
  if (ec) {
    std::string message = "model output is not valid JSON for ";
    message += type_name;
    message += ": ";
    message += ec.message();
    message += " at offset ";
    append_integer(message, consumed);
    throw ProviderError(message, 200, "output_validation", truncate_utf8(text, kExcerptBytes));
  }
  return parser.release();
}

}  // namespace llm_caching::detail

// Typed agent output: the C++ counterpart of a pydantic model used as an agent's output type.
//
// json_schema_for<T>() produces the JSON Schema sent as the structured-output request;
// from_json_checked<T>() validates the model's JSON answer and converts it into T, naming the
// exact field path of any mismatch; to_json_value / to_json_string turn a T back into JSON (for
// conversation history, like pydantic's model_dump_json()).
//
// Supported types (recursively):
//   structs described with BOOST_DESCRIBE_STRUCT (public members; described bases included),
//   enums described with BOOST_DESCRIBE_ENUM (as their enumerator names), std::string, bool,
//   integral types other than character types, float, double, std::optional<U>,
//   std::vector<U>, std::map<std::string, U>, std::unordered_map<std::string, U>.
//
// Schema dialect: the JSON Schema 2020-12 subset accepted by OpenAI strict structured outputs,
// with nested structs inlined (no $ref) so that Anthropic and Gemini accept it as well. Every
// struct member is "required" and optionals are nullable (strict mode's rule), and objects are
// closed ("additionalProperties": false). Two limits:
//   - string-keyed maps become {"type":"object","additionalProperties":<U>}, which OpenAI strict
//     mode rejects; strict_schema_compatible_v<T> is false for such T so that the caller can send
//     the schema without "strict": true.
//   - recursive types (a struct containing itself) need $ref; json_schema_for throws
//     ConfigurationError for them.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/describe/enum_to_string.hpp>
#include <boost/describe/enumerators.hpp>
#include <boost/describe/members.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <boost/mp11/algorithm.hpp>

#include "llm_caching/errors.hpp"

namespace llm_caching {

namespace detail {

// ---- type classification -------------------------------------------------------------------

template <class T, template <class...> class Template>
inline constexpr bool is_specialization_v = false;
template <template <class...> class Template, class... Args>
inline constexpr bool is_specialization_v<Template<Args...>, Template> = true;

template <class T>
concept character_type = std::same_as<T, char> || std::same_as<T, wchar_t> ||
    std::same_as<T, char8_t> || std::same_as<T, char16_t> || std::same_as<T, char32_t>;

template <class T>
concept output_string = std::same_as<T, std::string>;
template <class T>
concept output_bool = std::same_as<T, bool>;
// Plain char is text, not a number: rejected. signed/unsigned char (int8_t, uint8_t) are numbers.
template <class T>
concept output_integer = std::integral<T> && !output_bool<T> && !character_type<T>;
template <class T>
concept output_number = std::same_as<T, float> || std::same_as<T, double>;
template <class T>
concept output_enum = std::is_enum_v<T> && boost::describe::has_describe_enumerators<T>::value;
template <class T>
concept output_struct = std::is_class_v<T> && boost::describe::has_describe_members<T>::value;
template <class T>
concept output_optional = is_specialization_v<T, std::optional>;
template <class T>
concept output_vector = is_specialization_v<T, std::vector>;
template <class T>
concept output_string_map =
    (is_specialization_v<T, std::map> ||
     is_specialization_v<T, std::unordered_map>)&&std::same_as<typename T::key_type, std::string>;

template <class T>
concept output_type =
    output_string<T> || output_bool<T> || output_integer<T> || output_number<T> || output_enum<T> ||
    output_struct<T> || output_optional<T> || output_vector<T> || output_string_map<T>;

// One place for the compile error, so every entry point reports unsupported types the same way.
template <class T>
constexpr void check_output_type() {
  static_assert(output_type<T>,
                "llm_caching typed output: unsupported type. Supported: structs described with "
                "BOOST_DESCRIBE_STRUCT, enums described with BOOST_DESCRIBE_ENUM, std::string, "
                "bool, integral types (not char/wchar_t/charN_t), float, double, "
                "std::optional<U>, std::vector<U>, std::map<std::string, U>, "
                "std::unordered_map<std::string, U>.");
  if constexpr (output_optional<T>) {
    static_assert(!output_optional<typename T::value_type>,
                  "llm_caching typed output: std::optional<std::optional<U>> is ambiguous "
                  "(null cannot say which level is empty); use one optional.");
  }
  if constexpr (output_struct<T>) {
    namespace bd = boost::describe;
    using hidden = bd::describe_members<T, bd::mod_protected | bd::mod_private | bd::mod_inherited>;
    static_assert(boost::mp11::mp_empty<hidden>::value,
                  "llm_caching typed output: only public members are read and written; this "
                  "type describes protected or private members.");
  }
}

template <class T>
using public_members = boost::describe::describe_members<T, boost::describe::mod_public |
                                                                boost::describe::mod_inherited>;

template <class T, class Descriptor>
using member_type_t = std::remove_cvref_t<decltype(std::declval<T&>().*Descriptor::pointer)>;

// ---- schema name ----------------------------------------------------------------------------

// The compiler's spelling of T, from __PRETTY_FUNCTION__ (g++ and clang; both print
// "[... T = ns::Name ...]"). Empty elsewhere, which selects the "output" fallback.
template <class T>
constexpr std::string_view pretty_function_of() {
#if defined(__GNUC__) || defined(__clang__)
  return __PRETTY_FUNCTION__;
#else
  return {};
#endif
}

// "ns::Outer::Name<int>" -> "Name". Template arguments are dropped because compilers spell them
// differently, and the name must not depend on the compiler (it is part of the cache key).
template <class T>
constexpr std::string_view unqualified_name_of() {
  constexpr std::string_view text = pretty_function_of<T>();
  const std::size_t bracket = text.find('[');
  if (bracket == std::string_view::npos) return {};
  const std::size_t marker = text.find("T = ", bracket);
  if (marker == std::string_view::npos) return {};
  const std::size_t begin = marker + 4;
  const std::size_t end = text.find_first_of(";]<", begin);
  if (end == std::string_view::npos) return {};
  std::string_view name = text.substr(begin, end - begin);
  if (const std::size_t colons = name.rfind("::"); colons != std::string_view::npos) {
    name.remove_prefix(colons + 2);
  }
  return name;
}

// A copy of just the name, so the whole pretty-function string is not kept in the binary.
template <class T>
struct described_name_storage {
  static constexpr std::size_t size = unqualified_name_of<T>().size();
  static constexpr auto chars = [] {
    std::array<char, size + 1> out{};
    const std::string_view name = unqualified_name_of<T>();
    for (std::size_t i = 0; i < size; ++i) out[i] = name[i];
    return out;
  }();
};

template <class T>
constexpr std::string_view default_schema_name() {
  if constexpr (output_struct<T> || output_enum<T>) {
    constexpr std::string_view name{described_name_storage<T>::chars.data(),
                                    described_name_storage<T>::size};
    if constexpr (!name.empty()) return name;
  }
  return "output";
}

// ---- non-template helpers (src/agent/typed_output.cpp) ----------------------------------------

/// Maps any name onto OpenAI's schema-name alphabet [A-Za-z0-9_-]{1,64}.
std::string sanitize_schema_name(std::string_view name);

/// The JSON Path ("$", "$.a", "$.a[2]", "$.m[\"key with space\"]") of the value being read or
/// written; built incrementally so an error can name where it happened.
class json_path {
 public:
  std::size_t mark() const noexcept { return text_.size(); }
  void restore(std::size_t mark) { text_.resize(mark); }
  void push_member(std::string_view name);  // ".name", or ["name"] when not an identifier
  void push_index(std::size_t index);       // "[index]"
  const std::string& text() const noexcept { return text_; }

 private:
  std::string text_ = "$";
};

struct read_context {
  const boost::json::value& root;
  std::string_view type_name;  // of the top-level output type, for the message
  json_path path;
};

/// Throws ProviderError("model output does not match <type>: <path>: <detail>", 200,
/// "output_validation", excerpt of the root JSON).
[[noreturn]] void fail_output(const read_context& context, std::string_view detail);
/// "expected <expected>, got <kind of got>".
[[noreturn]] void fail_kind(const read_context& context, std::string_view expected,
                            const boost::json::value& got);
[[noreturn]] void fail_integer_range(const read_context& context, const boost::json::value& got,
                                     bool is_signed, std::size_t bits, std::string_view min,
                                     std::string_view max);
[[noreturn]] void fail_enum_name(const read_context& context, std::string_view allowed,
                                 std::string_view got);
/// Throws Error: JSON has no representation for NaN and infinities.
[[noreturn]] void fail_non_finite(const json_path& path);
/// Throws Error: an enum value that has no described name.
[[noreturn]] void fail_unnamed_enum(const json_path& path, std::string_view enum_name,
                                    long long value);
/// Throws ConfigurationError for a struct that contains itself.
[[noreturn]] void fail_recursive_schema(std::string_view type_name);

/// Whether a JSON double holds an integer representable in [-2^63, 2^64); writes it to the
/// matching out parameter.
bool double_to_int64(double d, std::int64_t& out) noexcept;
bool double_to_uint64(double d, std::uint64_t& out) noexcept;
bool is_integral_double(double d) noexcept;
bool fits_float(double d) noexcept;
bool is_finite(double d) noexcept;

/// Compact JSON with object members in stored order; doubles in shortest round-trip form
/// ("1.5", "30.0", "1e+20") rather than Boost.JSON's "1.5E0".
std::string serialize_compact(const boost::json::value& value);

/// Parses a model's answer; a syntax error is a ProviderError naming the type and offset.
boost::json::value parse_model_output(std::string_view text, std::string_view type_name);

// ---- schema ----------------------------------------------------------------------------------

// Structs being expanded, to turn infinite recursion into an error.
using schema_stack = std::vector<const void*>;
template <class T>
inline constexpr char type_tag = 0;

template <class T>
boost::json::object schema_of(schema_stack& stack);

template <class T>
boost::json::object struct_schema(schema_stack& stack);

template <class T>
boost::json::object schema_of(schema_stack& stack) {
  check_output_type<T>();
  if constexpr (output_optional<T>) {
    boost::json::array any_of;
    any_of.emplace_back(schema_of<typename T::value_type>(stack));
    any_of.emplace_back(boost::json::object{{"type", "null"}});
    return boost::json::object{{"anyOf", std::move(any_of)}};
  } else if constexpr (output_vector<T>) {
    return boost::json::object{{"type", "array"},
                               {"items", schema_of<typename T::value_type>(stack)}};
  } else if constexpr (output_string_map<T>) {
    return boost::json::object{{"type", "object"},
                               {"additionalProperties", schema_of<typename T::mapped_type>(stack)}};
  } else if constexpr (output_string<T>) {
    return boost::json::object{{"type", "string"}};
  } else if constexpr (output_bool<T>) {
    return boost::json::object{{"type", "boolean"}};
  } else if constexpr (output_integer<T>) {
    return boost::json::object{{"type", "integer"}};
  } else if constexpr (output_number<T>) {
    return boost::json::object{{"type", "number"}};
  } else if constexpr (output_enum<T>) {
    boost::json::array names;
    boost::mp11::mp_for_each<boost::describe::describe_enumerators<T>>(
        [&](auto enumerator) { names.emplace_back(enumerator.name); });
    return boost::json::object{{"type", "string"}, {"enum", std::move(names)}};
  } else if constexpr (output_struct<T>) {
    return struct_schema<T>(stack);
  } else {
    return {};  // unreachable: check_output_type rejected T
  }
}

template <class T>
boost::json::object struct_schema(schema_stack& stack) {
  for (const void* open : stack) {
    if (open == &type_tag<T>) fail_recursive_schema(sanitize_schema_name(default_schema_name<T>()));
  }
  stack.push_back(&type_tag<T>);
  boost::json::object properties;
  boost::json::array required;
  boost::mp11::mp_for_each<public_members<T>>([&](auto member) {
    properties.emplace(member.name, schema_of<member_type_t<T, decltype(member)>>(stack));
    required.emplace_back(member.name);
  });
  stack.pop_back();
  return boost::json::object{{"type", "object"},
                             {"properties", std::move(properties)},
                             {"required", std::move(required)},
                             {"additionalProperties", false}};
}

// Whether the schema of T avoids keywords OpenAI strict mode rejects (open maps). Seen lists the
// structs already being checked, so recursive types terminate.
template <class T, class Seen>
constexpr bool strict_compatible() {
  check_output_type<T>();
  if constexpr (output_optional<T> || output_vector<T>) {
    return strict_compatible<typename T::value_type, Seen>();
  } else if constexpr (output_string_map<T>) {
    return false;
  } else if constexpr (output_struct<T>) {
    if constexpr (boost::mp11::mp_contains<Seen, T>::value) {
      return true;
    } else {
      using seen_now = boost::mp11::mp_push_back<Seen, T>;
      bool all = true;
      boost::mp11::mp_for_each<public_members<T>>([&](auto member) {
        all = all && strict_compatible<member_type_t<T, decltype(member)>, seen_now>();
      });
      return all;
    }
  } else {
    return true;
  }
}

// ---- reading ---------------------------------------------------------------------------------

template <class T>
T read_value(const boost::json::value& json, read_context& context);

template <class I>
I read_integer(const boost::json::value& json, read_context& context) {
  auto checked = [&](auto wide) -> I {
    if (std::in_range<I>(wide)) return static_cast<I>(wide);
    fail_integer_range(context, json, std::is_signed_v<I>, sizeof(I) * 8,
                       std::to_string(+std::numeric_limits<I>::min()),
                       std::to_string(+std::numeric_limits<I>::max()));
  };
  if (json.is_int64()) return checked(json.get_int64());
  if (json.is_uint64()) return checked(json.get_uint64());
  if (json.is_double()) {
    // JSON Schema counts 30.0 as an integer; models sometimes write it so.
    const double d = json.get_double();
    if (!is_integral_double(d)) fail_kind(context, "integer", json);
    if (std::int64_t as_signed = 0; double_to_int64(d, as_signed)) return checked(as_signed);
    if (std::uint64_t as_unsigned = 0; double_to_uint64(d, as_unsigned)) {
      return checked(as_unsigned);
    }
    fail_integer_range(context, json, std::is_signed_v<I>, sizeof(I) * 8,
                       std::to_string(+std::numeric_limits<I>::min()),
                       std::to_string(+std::numeric_limits<I>::max()));
  }
  fail_kind(context, "integer", json);
}

template <class F>
F read_number(const boost::json::value& json, read_context& context) {
  double d = 0;
  if (json.is_double()) {
    d = json.get_double();
  } else if (json.is_int64()) {
    d = static_cast<double>(json.get_int64());
  } else if (json.is_uint64()) {
    d = static_cast<double>(json.get_uint64());
  } else {
    fail_kind(context, "number", json);
  }
  if constexpr (std::same_as<F, float>) {
    if (!fits_float(d)) fail_output(context, "number is out of range for float");
  }
  return static_cast<F>(d);
}

template <class E>
E read_enum(const boost::json::value& json, read_context& context) {
  if (!json.is_string()) fail_kind(context, "string", json);
  const std::string_view name(json.get_string().data(), json.get_string().size());
  // Compared as string_view, not C strings: "red\u0000x" must not match red.
  E out{};
  bool found = false;
  boost::mp11::mp_for_each<boost::describe::describe_enumerators<E>>([&](auto enumerator) {
    if (!found && name == enumerator.name) {
      out = enumerator.value;
      found = true;
    }
  });
  if (found) return out;
  std::string allowed;
  boost::mp11::mp_for_each<boost::describe::describe_enumerators<E>>([&](auto enumerator) {
    if (!allowed.empty()) allowed += ", ";
    allowed += '"';
    allowed += enumerator.name;
    allowed += '"';
  });
  fail_enum_name(context, allowed, name);
}

template <class T>
T read_struct(const boost::json::value& json, read_context& context) {
  static_assert(std::is_default_constructible_v<T>,
                "llm_caching typed output: described structs must be default-constructible.");
  if (!json.is_object()) fail_kind(context, "object", json);
  const boost::json::object& object = json.get_object();
  T out{};
  boost::mp11::mp_for_each<public_members<T>>([&](auto member) {
    using member_t = member_type_t<T, decltype(member)>;
    static_assert(
        !std::is_const_v<std::remove_reference_t<decltype(out.*decltype(member)::pointer)>>,
        "llm_caching typed output: const members cannot be filled from JSON.");
    const std::size_t mark = context.path.mark();
    context.path.push_member(member.name);
    if (const boost::json::value* field = object.if_contains(member.name)) {
      out.*member.pointer = read_value<member_t>(*field, context);
    } else if constexpr (!output_optional<member_t>) {
      // An absent optional reads as empty: strict schemas list it as required, but Anthropic
      // and Gemini models leave nullable fields out at times, and nothing is lost.
      fail_output(context, "missing required field");
    }
    context.path.restore(mark);
  });
  // The schema says "additionalProperties": false, so an unknown field is a mismatch.
  for (const auto& entry : object) {
    bool known = false;
    boost::mp11::mp_for_each<public_members<T>>(
        [&](auto member) { known = known || entry.key() == member.name; });
    if (known) continue;
    std::string allowed;
    boost::mp11::mp_for_each<public_members<T>>([&](auto member) {
      if (!allowed.empty()) allowed += ", ";
      allowed += member.name;
    });
    context.path.push_member(entry.key());
    fail_output(context, "unexpected field (allowed: " + allowed + ")");
  }
  return out;
}

template <class T>
T read_value(const boost::json::value& json, read_context& context) {
  check_output_type<T>();
  if constexpr (output_optional<T>) {
    if (json.is_null()) return T{};
    return T{read_value<typename T::value_type>(json, context)};
  } else if constexpr (output_vector<T>) {
    if (!json.is_array()) fail_kind(context, "array", json);
    const boost::json::array& array = json.get_array();
    T out;
    out.reserve(array.size());
    for (std::size_t i = 0; i < array.size(); ++i) {
      const std::size_t mark = context.path.mark();
      context.path.push_index(i);
      out.push_back(read_value<typename T::value_type>(array[i], context));
      context.path.restore(mark);
    }
    return out;
  } else if constexpr (output_string_map<T>) {
    if (!json.is_object()) fail_kind(context, "object", json);
    T out;
    for (const auto& entry : json.get_object()) {
      const std::size_t mark = context.path.mark();
      context.path.push_member(entry.key());
      out.emplace(std::string(entry.key()),
                  read_value<typename T::mapped_type>(entry.value(), context));
      context.path.restore(mark);
    }
    return out;
  } else if constexpr (output_string<T>) {
    if (!json.is_string()) fail_kind(context, "string", json);
    return std::string(json.get_string());
  } else if constexpr (output_bool<T>) {
    if (!json.is_bool()) fail_kind(context, "boolean", json);
    return json.get_bool();
  } else if constexpr (output_integer<T>) {
    return read_integer<T>(json, context);
  } else if constexpr (output_number<T>) {
    return read_number<T>(json, context);
  } else if constexpr (output_enum<T>) {
    return read_enum<T>(json, context);
  } else if constexpr (output_struct<T>) {
    return read_struct<T>(json, context);
  } else {
    return T{};  // unreachable: check_output_type rejected T
  }
}

// ---- writing ---------------------------------------------------------------------------------

template <class T>
boost::json::value write_value(const T& in, json_path& path) {
  check_output_type<T>();
  if constexpr (output_optional<T>) {
    if (!in.has_value()) return nullptr;
    return write_value<typename T::value_type>(*in, path);
  } else if constexpr (output_vector<T>) {
    boost::json::array out;
    out.reserve(in.size());
    std::size_t i = 0;
    for (const typename T::value_type& element : in) {  // by value for vector<bool>
      const std::size_t mark = path.mark();
      path.push_index(i++);
      out.push_back(write_value<typename T::value_type>(element, path));
      path.restore(mark);
    }
    return out;
  } else if constexpr (output_string_map<T>) {
    // Sorted keys, so that an unordered_map serialises the same way every time.
    std::vector<const typename T::value_type*> entries;
    entries.reserve(in.size());
    for (const auto& entry : in) entries.push_back(&entry);
    if constexpr (is_specialization_v<T, std::unordered_map>) {
      std::sort(entries.begin(), entries.end(),
                [](const auto* a, const auto* b) { return a->first < b->first; });
    }
    boost::json::object out;
    out.reserve(entries.size());
    for (const auto* entry : entries) {
      const std::size_t mark = path.mark();
      path.push_member(entry->first);
      out.emplace(entry->first, write_value<typename T::mapped_type>(entry->second, path));
      path.restore(mark);
    }
    return out;
  } else if constexpr (output_string<T>) {
    return boost::json::string(in);
  } else if constexpr (output_bool<T>) {
    return in;
  } else if constexpr (output_integer<T>) {
    if constexpr (std::is_signed_v<T>) {
      return static_cast<std::int64_t>(in);
    } else {
      return static_cast<std::uint64_t>(in);
    }
  } else if constexpr (output_number<T>) {
    if (!is_finite(static_cast<double>(in))) fail_non_finite(path);
    return static_cast<double>(in);
  } else if constexpr (output_enum<T>) {
    const char* name = boost::describe::enum_to_string(in, nullptr);
    if (name == nullptr) {
      fail_unnamed_enum(path, default_schema_name<T>(),
                        static_cast<long long>(static_cast<std::underlying_type_t<T>>(in)));
    }
    return boost::json::string(name);
  } else if constexpr (output_struct<T>) {
    boost::json::object out;
    out.reserve(boost::mp11::mp_size<public_members<T>>::value);
    boost::mp11::mp_for_each<public_members<T>>([&](auto member) {
      const std::size_t mark = path.mark();
      path.push_member(member.name);
      out.emplace(member.name,
                  write_value<member_type_t<T, decltype(member)>>(in.*member.pointer, path));
      path.restore(mark);
    });
    return out;
  } else {
    return nullptr;  // unreachable: check_output_type rejected T
  }
}

}  // namespace detail

// ---- public API ------------------------------------------------------------------------------

/// The name under which T's schema is sent (OpenAI's response_format.json_schema.name, Anthropic's
/// tool name, ...). It is part of the request and so of the cache key. Default: the unqualified
/// name of a described struct or enum as g++/clang spell it, without template arguments
/// ("UserProfile"); "output" for other types and other compilers. Specialise to choose:
///   template <> struct llm_caching::schema_name<my::Answer> {
///     static constexpr std::string_view name = "answer";
///   };
template <class T>
struct schema_name {
  static constexpr std::string_view name = detail::default_schema_name<T>();
};

/// schema_name<T>::name mapped onto [A-Za-z0-9_-]{1,64}, the alphabet providers accept.
template <class T>
std::string type_name_for() {
  return detail::sanitize_schema_name(schema_name<T>::name);
}

/// JSON Schema for T (see the top of this file for the mapping and its two limits).
template <class T>
boost::json::object json_schema_for() {
  detail::schema_stack stack;
  return detail::schema_of<T>(stack);
}

/// False when json_schema_for<T>() contains an open map, which OpenAI strict mode rejects:
/// send such a schema with "strict": false.
template <class T>
inline constexpr bool strict_schema_compatible_v =
    detail::strict_compatible<T, boost::mp11::mp_list<>>();

/// Converts a model's JSON answer into T, checking it against json_schema_for<T>(): every
/// required field present, no unknown fields, right JSON types, integers in range for their C++
/// type (30.0 counts as 30), enum values by name, null only for optionals (an absent optional
/// member reads as empty). Throws ProviderError(message, 200, "output_validation", first 200 bytes
/// of the JSON) whose message names the path, e.g.
///   "model output does not match UserProfile: $.interests[2]: expected string, got number".
template <class T>
T from_json_checked(const boost::json::value& json) {
  const std::string name = type_name_for<T>();
  detail::read_context context{json, name, {}};
  return detail::read_value<T>(json, context);
}

/// from_json_checked over the model's text; text that is not JSON is a ProviderError too.
template <class T>
T from_json_text_checked(std::string_view text) {
  return from_json_checked<T>(detail::parse_model_output(text, type_name_for<T>()));
}

/// T as JSON: struct members in declaration order, empty optionals as null, enums by name, map
/// keys sorted. Throws Error for NaN/infinite numbers and unnamed enum values (no JSON form).
template <class T>
boost::json::value to_json_value(const T& value) {
  detail::json_path path;
  return detail::write_value<T>(value, path);
}

/// Compact JSON text of to_json_value(value); the same value always gives the same bytes (what
/// the seed got from pydantic's model_dump_json(), for conversation history).
template <class T>
std::string to_json_string(const T& value) {
  return detail::serialize_compact(to_json_value(value));
}

}  // namespace llm_caching

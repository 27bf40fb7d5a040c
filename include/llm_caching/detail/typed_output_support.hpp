// Detail of llm_caching/typed_output.hpp: the non-template helpers (src/agent/typed_output.cpp)
// and the schema of a type. Not an API of its own: include <llm_caching/typed_output.hpp>.
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

#include "llm_caching/detail/typed_output_types.hpp"
#include "llm_caching/errors.hpp"

namespace llm_caching::detail {

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

}  // namespace llm_caching::detail

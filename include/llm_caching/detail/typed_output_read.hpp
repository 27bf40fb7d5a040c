// Detail of llm_caching/typed_output.hpp: reading a model's JSON answer into a C++ value, with the
// path of every mismatch. Not an API of its own: include <llm_caching/typed_output.hpp>.
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

#include "llm_caching/detail/typed_output_support.hpp"
#include "llm_caching/errors.hpp"

namespace llm_caching::detail {

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

}  // namespace llm_caching::detail

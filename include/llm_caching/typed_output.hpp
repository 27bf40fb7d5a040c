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

#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/mp11/list.hpp>

#include "llm_caching/detail/typed_output_read.hpp"
#include "llm_caching/detail/typed_output_write.hpp"

namespace llm_caching {

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

// Detail of llm_caching/typed_output.hpp: which C++ types an output may be, and the default
// schema name of a type. Not an API of its own: include <llm_caching/typed_output.hpp>.
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

namespace llm_caching::detail {

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

}  // namespace llm_caching::detail

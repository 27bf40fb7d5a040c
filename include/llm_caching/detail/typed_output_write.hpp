// Detail of llm_caching/typed_output.hpp: writing a C++ value as JSON. Not an API of its own:
// include <llm_caching/typed_output.hpp>.
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

}  // namespace llm_caching::detail

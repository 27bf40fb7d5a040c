// One item of `transcript_history`: a {"role","content"} JSON object, a plain string, a
// ModelMessage, or a struct described with Boost.Describe (sent as its JSON, like the seed's
// `profile.model_dump_json()`).
#pragma once

#include "llm_caching/messages.hpp"
#include "llm_caching/typed_output.hpp"

#include <boost/describe/members.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <utility>

namespace llm_caching {

class HistoryItem {
 public:
  HistoryItem(boost::json::value v) : value_(std::move(v)) {}   // NOLINT: implicit on purpose
  HistoryItem(boost::json::object o) : value_(std::move(o)) {}  // NOLINT
  HistoryItem(std::string text) : value_(boost::json::string(text)) {}  // NOLINT
  HistoryItem(const char* text) : value_(boost::json::string(text)) {}  // NOLINT
  HistoryItem(const ModelMessage& m)                                    // NOLINT
      : value_(boost::json::object{{"role", m.role}, {"content", m.content}}) {}

  template <class T>
  requires boost::describe::has_describe_members<T>::value HistoryItem(
      const T& described)  // NOLINT
      : value_(boost::json::string(to_json_string(described))) {}

  const boost::json::value& value() const noexcept { return value_; }

 private:
  boost::json::value value_;
};

}  // namespace llm_caching

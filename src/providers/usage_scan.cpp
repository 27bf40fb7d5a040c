// parse_usage: the usage of a provider's answer in one pass over its JSON, without the answer's
// tree. A miss in the gateway needs only the counts (the cost); parse_response builds the whole
// answer (text, tool calls, a json::object of every member), which was the largest single step of
// a miss on the request's thread (docs/perf-log/2026-11-journal.md).
//
// The scan notes the few facts parse_response(provider, body, false) checks and builds only the
// usage object. When those facts show a sound answer, its usage is extract_usage of that object,
// the same function parse_response uses. Anything else (not JSON, an error object, a missing
// list, a key that appears twice) goes to parse_response, which throws its own error: the two
// accept and reject the same bodies, with the same messages.
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"
#include "providers/codec_detail.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>

#include <optional>
#include <string>

namespace llm_caching::providers {

namespace json = boost::json;

namespace {

/// What parse_response looks at, by provider: the usage member and the list that must be there
/// (choices, content, candidates). What else it asks of the list is in looks_sound.
struct Shape {
  std::string_view usage;
  std::string_view list;
};

Shape shape_of(Provider provider) {
  switch (provider) {
    case Provider::openai:
      return {"usage", "choices"};
    case Provider::anthropic:
      return {"usage", "content"};
    case Provider::gemini:
      return {"usageMetadata", "candidates"};
  }
  return {"usage", "choices"};
}

/// A basic_parser handler that validates the whole document and keeps only what parse_usage
/// needs. Depth counts the containers open: the root object is depth 1, its members' containers
/// depth 2, and so on.
class UsageScan {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();
  using string_view = json::string_view;
  using error_code = json::error_code;

  explicit UsageScan(Shape shape) : shape_(shape) {}

  // What the scan found. Any `*_members` above 1 sends the body to parse_response.
  bool root_is_object = false;
  int error_members = 0;
  bool error_is_null = false;
  int type_members = 0;
  bool type_is_error = false;  ///< the top-level "type" is the string "error" (Anthropic)
  int list_members = 0;
  bool list_is_array = false;
  std::size_t list_size = 0;
  bool first_is_object = false;
  int first_message_members = 0;  ///< "message" members of the list's first element (OpenAI)
  bool first_message_is_object = false;
  int usage_members = 0;
  /// {"usage": the usage member}, when that member is an object (Gemini: "usageMetadata").
  json::value usage_root;

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }

  bool on_object_begin(error_code&) {
    if (depth_ == 0) root_is_object = true;
    on_value_start(true);
    if (in_usage_) ++usage_depth_;
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t n, error_code&) {
    --depth_;
    if (depth_ == 2) in_first_element_ = false;  // a list element closed
    if (in_usage_) {
      usage_stack_.push_object(n);
      if (--usage_depth_ == 0) end_usage();
    }
    return true;
  }
  bool on_array_begin(error_code&) {
    on_value_start(false);
    if (depth_ == 1 && member_ == Member::list) list_is_array = true;
    if (in_usage_) ++usage_depth_;
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t n, error_code&) {
    --depth_;
    if (in_usage_) {
      usage_stack_.push_array(n);
      if (--usage_depth_ == 0) end_usage();
    }
    return true;
  }

  bool on_key_part(string_view s, std::size_t, error_code&) {
    if (in_usage_) usage_stack_.push_chars(s);
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(string_view s, std::size_t, error_code&) {
    if (in_usage_) usage_stack_.push_key(s);
    if (key_.empty()) {
      on_member_key(std::string_view(s.data(), s.size()));
    } else {  // the key came in parts
      key_.append(s.data(), s.size());
      on_member_key(key_);
      key_.clear();
    }
    return true;
  }

  bool on_string_part(string_view s, std::size_t, error_code&) {
    if (in_usage_) usage_stack_.push_chars(s);
    if (depth_ == 1 && member_ == Member::type) type_text_.append(s.data(), s.size());
    return true;
  }
  bool on_string(string_view s, std::size_t, error_code&) {
    on_value_start(false);
    if (in_usage_) usage_stack_.push_string(s);
    if (depth_ == 1 && member_ == Member::type) {
      type_text_.append(s.data(), s.size());
      type_is_error = type_text_ == "error";
    }
    return true;
  }

  bool on_number_part(string_view, error_code&) { return true; }
  bool on_int64(std::int64_t i, string_view, error_code&) {
    on_value_start(false);
    if (in_usage_) usage_stack_.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, string_view, error_code&) {
    on_value_start(false);
    if (in_usage_) usage_stack_.push_uint64(u);
    return true;
  }
  bool on_double(double d, string_view, error_code&) {
    on_value_start(false);
    if (in_usage_) usage_stack_.push_double(d);
    return true;
  }
  bool on_bool(bool b, error_code&) {
    on_value_start(false);
    if (in_usage_) usage_stack_.push_bool(b);
    return true;
  }
  bool on_null(error_code&) {
    on_value_start(false);
    if (depth_ == 1 && member_ == Member::error) error_is_null = true;
    if (in_usage_) usage_stack_.push_null();
    return true;
  }

  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

 private:
  enum class Member { other, error, type, list, usage };

  /// A key at depth 1 names a top-level member; at depth 3 (inside the list's first element),
  /// a member of that element.
  void on_member_key(std::string_view key) {
    if (depth_ == 1) {
      member_ = Member::other;
      if (key == "error") {
        member_ = Member::error;
        ++error_members;
      } else if (key == "type") {
        member_ = Member::type;
        ++type_members;
      } else if (key == shape_.list) {
        member_ = Member::list;
        ++list_members;
      } else if (key == shape_.usage) {
        member_ = Member::usage;
        ++usage_members;
      }
    } else if (depth_ == 3 && in_first_element_) {
      in_first_message_ = key == "message";
      if (in_first_message_) ++first_message_members;
    }
  }

  /// Called as each value starts (scalar or container), before depth_ counts it.
  void on_value_start(bool is_object) {
    if (depth_ == 1 && member_ == Member::usage && is_object) {
      in_usage_ = true;  // the object's own begin is counted by the caller
      usage_stack_.reset();
      usage_stack_.push_key(shape_.usage);  // builds {"usage": {...}}, what extract_usage reads
    }
    if (depth_ == 2 && member_ == Member::list && list_is_array) {
      in_first_element_ = list_size == 0 && is_object;
      if (list_size == 0) first_is_object = is_object;
      ++list_size;
    }
    if (depth_ == 3 && in_first_element_ && in_first_message_) {
      first_message_is_object = is_object;
      in_first_message_ = false;
    }
  }

  void end_usage() {
    in_usage_ = false;
    usage_stack_.push_object(1);
    usage_root = usage_stack_.release();
  }

  Shape shape_;
  int depth_ = 0;
  Member member_ = Member::other;  ///< the top-level member whose value is being read
  bool in_first_element_ = false;  ///< inside the list's first element, an object
  bool in_first_message_ = false;  ///< the next value is its "message"
  bool in_usage_ = false;
  int usage_depth_ = 0;  ///< containers open inside the usage member
  json::value_stack usage_stack_;
  std::string key_;
  std::string type_text_;
};

/// Whether parse_response(provider, body, false) would accept the body the scan saw.
bool looks_sound(Provider provider, const UsageScan& scan) {
  if (!scan.root_is_object || scan.list_members != 1 || scan.usage_members > 1) return false;
  if (!scan.list_is_array) return false;
  switch (provider) {
    case Provider::openai:
      return (scan.error_members == 0 || (scan.error_members == 1 && scan.error_is_null)) &&
             scan.list_size > 0 && scan.first_is_object && scan.first_message_members == 1 &&
             scan.first_message_is_object;
    case Provider::anthropic:
      return scan.error_members == 0 && scan.type_members <= 1 && !scan.type_is_error;
    case Provider::gemini:
      return scan.error_members == 0 && scan.list_size > 0 && scan.first_is_object;
  }
  return false;
}

}  // namespace

namespace detail {

std::optional<Usage> scan_usage(Provider provider, std::string_view body) {
  json::parse_options options;
  options.max_depth = 256;  // as parse_response's parser
  json::basic_parser<UsageScan> parser(options, shape_of(provider));
  json::error_code ec;
  const std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
  const UsageScan& scan = parser.handler();
  if (ec || used != body.size() || !looks_sound(provider, scan)) return std::nullopt;
  if (!scan.usage_root.is_object()) return providers::extract_usage(provider, json::object());
  return providers::extract_usage(provider, scan.usage_root.get_object());
}

}  // namespace detail

Usage parse_usage(Provider provider, std::string_view body) {
  if (auto usage = detail::scan_usage(provider, body)) return *usage;
  return parse_response(provider, body, false).usage;  // throws its own error, or agrees
}

}  // namespace llm_caching::providers

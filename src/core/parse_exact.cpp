// parse_json_exact: JSON text parsed with correctly rounded doubles and no repeated keys
// (include/llm_caching/cache_key.hpp says why keyed bodies need both).
#include "core/printable.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>

#include <algorithm>
#include <charconv>
#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

namespace llm_caching {

namespace {

// boost::json::parser's own handler, except that doubles are re-read from their text with
// std::from_chars, which rounds correctly (Boost.JSON 1.81's own conversion does not always).
class ExactNumberHandler {
 public:
  static constexpr std::size_t max_object_size = boost::json::object::max_size();
  static constexpr std::size_t max_array_size = boost::json::array::max_size();
  static constexpr std::size_t max_key_size = boost::json::string::max_size();
  static constexpr std::size_t max_string_size = boost::json::string::max_size();
  using string_view = boost::json::string_view;
  using error_code = boost::json::error_code;

  boost::json::value_stack stack;

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) {
    if (depth_ == frames_.size()) frames_.emplace_back();
    frames_[depth_++].clear();
    return true;
  }
  bool on_object_end(std::size_t n, error_code&) {
    --depth_;
    return stack.push_object(n), true;
  }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t n, error_code&) { return stack.push_array(n), true; }
  bool on_key_part(string_view s, std::size_t, error_code&) {
    key_text_.append(s.data(), s.size());
    return stack.push_chars(s), true;
  }
  bool on_key(string_view s, std::size_t, error_code& ec) {
    std::string_view key(s.data(), s.size());
    if (!key_text_.empty()) key = key_text_.append(key);  // a key split over buffers
    const bool fresh = frames_[depth_ - 1].insert(std::hash<std::string_view>{}(key));
    if (!fresh) {
      duplicate_key = std::string(key);
      ec = make_error_code(JsonError::duplicate_key);
      return false;
    }
    key_text_.clear();
    return stack.push_key(s), true;
  }
  bool on_string_part(string_view s, std::size_t, error_code&) { return stack.push_chars(s), true; }
  bool on_string(string_view s, std::size_t, error_code&) { return stack.push_string(s), true; }
  bool on_number_part(string_view s, error_code&) { return number_text_.append(s), true; }
  bool on_int64(std::int64_t i, string_view, error_code&) {
    number_text_.clear();
    return stack.push_int64(i), true;
  }
  bool on_uint64(std::uint64_t u, string_view, error_code&) {
    number_text_.clear();
    return stack.push_uint64(u), true;
  }
  bool on_double(double d, string_view s, error_code&) {
    std::string_view text(s.data(), s.size());
    if (!number_text_.empty()) text = number_text_.append(text);  // number split over buffers
    double exact = 0;
    const auto result = std::from_chars(text.data(), text.data() + text.size(), exact);
    if (result.ec == std::errc{} && result.ptr == text.data() + text.size()) d = exact;
    number_text_.clear();
    return stack.push_double(d), true;
  }
  bool on_bool(bool b, error_code&) { return stack.push_bool(b), true; }
  bool on_null(error_code&) { return stack.push_null(), true; }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

  std::string duplicate_key;  ///< set when the parse stopped at a repeated key

 private:
  /// The key hashes of one open object. Two keys with one hash count as a repeat: a 64-bit
  /// collision inside one object, which refuses that body, is the price of not storing keys.
  class KeySet {
   public:
    void clear() {
      few_.clear();
      many_.clear();
    }
    /// false when `hash` was there already.
    bool insert(std::size_t hash) {
      if (many_.empty()) {
        if (std::find(few_.begin(), few_.end(), hash) != few_.end()) return false;
        few_.push_back(hash);
        // Past a few dozen keys a linear scan per key would make a large object quadratic.
        if (few_.size() == kLinearLimit) many_.insert(few_.begin(), few_.end());
        return true;
      }
      return many_.insert(hash).second;
    }

   private:
    static constexpr std::size_t kLinearLimit = 32;
    std::vector<std::size_t> few_;
    std::unordered_set<std::size_t> many_;
  };

  std::string number_text_;
  std::string key_text_;
  std::vector<KeySet> frames_;  ///< one per open object, innermost last (reused)
  std::size_t depth_ = 0;
};

}  // namespace

boost::json::value parse_json_exact(std::string_view text, boost::json::error_code& ec,
                                    std::string* duplicate_key) {
  ec = {};
  boost::json::basic_parser<ExactNumberHandler> parser{boost::json::parse_options{}};
  parser.handler().stack.reset();
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = boost::json::error::extra_data;
  if (ec) {
    if (duplicate_key) *duplicate_key = std::move(parser.handler().duplicate_key);
    return nullptr;
  }
  return parser.handler().stack.release();
}

boost::json::value parse_json_exact(std::string_view text) {
  boost::json::error_code ec;
  std::string duplicate;
  boost::json::value v = parse_json_exact(text, ec, &duplicate);
  if (ec == JsonError::duplicate_key) {
    throw ConfigurationError("invalid JSON: the key \"" + core::printable(duplicate, 64) +
                             "\" appears twice in one object");
  }
  if (ec) throw ConfigurationError("invalid JSON: " + ec.message());
  return v;
}

namespace {

class JsonErrorCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "llm_caching.json"; }
  std::string message(int value) const override {
    return value == static_cast<int>(JsonError::duplicate_key)
               ? "a key appears twice in one JSON object"
               : "unknown JSON error";
  }
};

}  // namespace

boost::system::error_code make_error_code(JsonError e) noexcept {
  static const JsonErrorCategory category;
  return {static_cast<int>(e), category};
}

}  // namespace llm_caching

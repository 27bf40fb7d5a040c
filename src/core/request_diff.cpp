// The field-by-field diff of two canonical requests (request_diff.hpp).
#include "core/request_diff.hpp"

#include "llm_caching/cache_key.hpp"

#include <fmt/format.h>
#include <boost/json/value.hpp>

#include <algorithm>
#include <utility>

namespace llm_caching::core {
namespace {

namespace json = boost::json;

/// `text` parsed, or the text itself as a JSON string when it is not JSON.
json::value parse_or_string(std::string_view text) {
  json::error_code ec;
  json::value v = parse_json_exact(text, ec);
  if (ec) return json::string(text);
  return v;
}

/// Gives a body without a "model" member the model it was sent to (from the URL).
void inject_model(json::value& body, std::string_view model) {
  json::object* object = body.if_object();
  if (object != nullptr && !model.empty() && !object->contains("model")) {
    object->emplace("model", model);
  }
}

bool is_identifier(std::string_view key) {
  if (key.empty() || (key[0] >= '0' && key[0] <= '9')) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string member_path(const std::string& path, std::string_view key) {
  if (is_identifier(key)) return path.empty() ? std::string(key) : path + "." + std::string(key);
  return path + "[" + canonical_json(json::string(key)) + "]";
}

/// At most `limit` bytes of `text` from `start`, both moved back onto UTF-8 boundaries.
std::string_view utf8_cut(std::string_view text, std::size_t start, std::size_t limit) {
  const auto continuation = [&](std::size_t i) {
    return i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80;
  };
  while (start > 0 && continuation(start)) --start;
  std::size_t end = std::min(text.size(), start + limit);
  while (end > start && continuation(end)) --end;
  return text.substr(start, end - start);
}

/// A string shown from `from` (the first byte that differs, less some context), "…" marking
/// what is left out.
std::string string_excerpt(std::string_view s, std::size_t from, std::size_t limit) {
  const std::size_t context = limit / 3;
  // Some context before the difference, but no shorter a view than the string allows.
  const std::size_t start =
      s.size() <= limit ? 0 : std::min(from > context ? from - context : 0, s.size() - limit);
  const std::string_view cut = utf8_cut(s, start, limit);
  const bool head = cut.data() != s.data();
  const bool tail = cut.data() + cut.size() != s.data() + s.size();
  std::string out = canonical_json(json::string(cut));
  if (head) out.insert(1, "…");
  if (tail) out.insert(out.size() - 1, "…");
  return out;
}

std::string value_excerpt(const json::value& v, std::size_t limit) {
  if (v.is_string()) return string_excerpt(v.get_string(), 0, limit);
  const std::string text = canonical_json(v);
  if (text.size() <= limit) return text;
  return std::string(utf8_cut(text, 0, limit)) + "…";
}

struct Walk {
  const DiffOptions& options;
  RequestDiff diff;

  void note(const std::string& path, std::string text) {
    ++diff.changes;
    if (diff.lines.size() < options.max_lines) {
      diff.lines.push_back((path.empty() ? std::string("request") : path) + ": " + text);
    }
  }
  void changed(const std::string& path, const json::value& a, const json::value& b) {
    if (a.is_string() && b.is_string()) {
      const std::string_view x = a.get_string(), y = b.get_string();
      const std::size_t from = static_cast<std::size_t>(
          std::mismatch(x.begin(), x.end(), y.begin(), y.end()).first - x.begin());
      const std::size_t tail = static_cast<std::size_t>(
          std::mismatch(x.rbegin(), x.rend() - from, y.rbegin(), y.rend() - from).first -
          x.rbegin());
      diff.weight += std::max(x.size(), y.size()) - from - tail;
      return note(path, string_excerpt(x, from, options.excerpt_bytes) + " → " +
                            string_excerpt(y, from, options.excerpt_bytes));
    }
    diff.weight += canonical_json(a).size() + canonical_json(b).size();
    note(path,
         value_excerpt(a, options.excerpt_bytes) + " → " + value_excerpt(b, options.excerpt_bytes));
  }
  /// A member or element present on one side only.
  void one_sided(const std::string& path, std::string_view how, const json::value& v) {
    diff.weight += canonical_json(v).size();
    note(path, std::string(how) + value_excerpt(v, options.excerpt_bytes));
  }
  void objects(const std::string& path, const json::object& a, const json::object& b) {
    std::vector<std::string_view> keys;
    for (const auto& m : a) keys.push_back(m.key());
    for (const auto& m : b) {
      if (!a.contains(m.key())) keys.push_back(m.key());
    }
    std::sort(keys.begin(), keys.end());
    for (const std::string_view key : keys) {
      const json::value* x = a.if_contains(key);
      const json::value* y = b.if_contains(key);
      const std::string at = member_path(path, key);
      if (x == nullptr) {
        one_sided(at, "added ", *y);
      } else if (y == nullptr) {
        one_sided(at, "removed ", *x);
      } else {
        values(at, *x, *y);
      }
    }
  }
  void arrays(const std::string& path, const json::array& a, const json::array& b) {
    for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
      const std::string at = fmt::format("{}[{}]", path, i);
      if (i >= a.size()) {
        one_sided(at, "added ", b[i]);
      } else if (i >= b.size()) {
        one_sided(at, "removed ", a[i]);
      } else {
        values(at, a[i], b[i]);
      }
    }
  }
  void values(const std::string& path, const json::value& a, const json::value& b) {
    if (a.is_object() && b.is_object()) return objects(path, a.get_object(), b.get_object());
    if (a.is_array() && b.is_array()) return arrays(path, a.get_array(), b.get_array());
    if (canonical_json(a) != canonical_json(b)) changed(path, a, b);
  }
};

RequestDiff diff_values(const json::value& recorded, const json::value& live,
                        const DiffOptions& options) {
  Walk walk{options, {}};
  walk.values("", recorded, live);
  if (walk.diff.changes > walk.diff.lines.size()) {
    const std::size_t more = walk.diff.changes - walk.diff.lines.size();
    walk.diff.lines.push_back(fmt::format("… {} more field{} differ{}", more, more == 1 ? "" : "s",
                                          more == 1 ? "s" : ""));
  }
  return std::move(walk.diff);
}

}  // namespace

RequestDiff diff_requests(std::string_view recorded, std::string_view live,
                          std::string_view recorded_model, std::string_view live_model,
                          const DiffOptions& options) {
  json::value a = parse_or_string(recorded);
  json::value b = parse_or_string(live);
  inject_model(a, recorded_model);
  inject_model(b, live_model);
  return diff_values(a, b, options);
}

std::optional<NearestRequest> nearest_request(std::string_view live_model,
                                              std::string_view live_request,
                                              const std::vector<RecordedRequest>& candidates,
                                              const DiffOptions& options) {
  json::value live = parse_or_string(live_request);
  inject_model(live, live_model);
  std::optional<NearestRequest> best;
  bool best_same_model = false;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const bool same_model = candidates[i].model == live_model;
    if (best && best_same_model && !same_model) continue;  // another model never wins over one
    json::value recorded = parse_or_string(candidates[i].request);
    inject_model(recorded, candidates[i].model);
    RequestDiff diff = diff_values(recorded, live, options);
    const bool nearer =
        !best || (same_model && !best_same_model) ||
        std::pair(diff.changes, diff.weight) < std::pair(best->diff.changes, best->diff.weight);
    if (nearer) {
      best = NearestRequest{i, std::move(diff)};
      best_same_model = same_model;
    }
  }
  return best;
}

}  // namespace llm_caching::core

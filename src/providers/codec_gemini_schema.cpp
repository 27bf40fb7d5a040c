// Gemini's responseSchema: a JSON Schema rewritten into the OpenAPI 3.0 subset Gemini accepts
// ($ref and allOf expanded, type lists and Optional[X] turned into nullable, key order kept).
#include "llm_caching/errors.hpp"
#include "providers/codec_detail.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <string>
#include <vector>

namespace llm_caching::providers::detail::gemini {

namespace json = boost::json;

namespace {

// Schema keywords Gemini's OpenAPI 3.0 subset accepts as they are.
constexpr std::array<std::string_view, 17> kPassThroughKeywords = {
    "format",   "title",    "description", "nullable",      "required",     "propertyOrdering",
    "minItems", "maxItems", "minimum",     "maximum",       "minLength",    "maxLength",
    "pattern",  "default",  "example",     "minProperties", "maxProperties"};

constexpr int kMaxSchemaDepth = 48;

bool contains(auto const& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

class SchemaConverter {
 public:
  explicit SchemaConverter(const json::object& root) {
    for (std::string_view key : {"$defs", "definitions"}) {
      if (const json::object* defs = find_object(root, key)) defs_.emplace(key, defs);
    }
  }

  json::object convert(const json::object& node, int depth) {
    if (depth > kMaxSchemaDepth) {
      throw ConfigurationError("output schema nests deeper than " +
                               std::to_string(kMaxSchemaDepth) +
                               " levels, more than Gemini's responseSchema accepts");
    }
    json::object out;
    if (auto ref = find_string(node, "$ref"); !ref.empty()) {
      // A $ref already being expanded would expand forever: Gemini's subset has no $ref.
      if (contains(active_refs_, ref)) {
        throw ConfigurationError("output schema $ref '" + excerpt(ref, 80) +
                                 "' is recursive; Gemini's responseSchema cannot express that");
      }
      active_refs_.emplace_back(ref);
      out = convert(resolve(ref), depth + 1);
      active_refs_.pop_back();
    }
    if (const json::array* all_of = find_array(node, "allOf");
        all_of && all_of->size() == 1 && all_of->front().is_object()) {
      out = convert(all_of->front().get_object(), depth + 1);  // pydantic's {"allOf":[{$ref}]}
    }
    for (const auto& field : node) {
      const std::string_view key = field.key();
      const json::value& value = field.value();
      if (key == "type") {
        convert_type(value, out);
      } else if (key == "properties" && value.is_object()) {
        json::object properties;
        for (const auto& p : value.get_object()) {
          if (p.value().is_object())
            properties[p.key()] = convert(p.value().get_object(), depth + 1);
        }
        out["properties"] = std::move(properties);
      } else if (key == "items" && value.is_object()) {
        out["items"] = convert(value.get_object(), depth + 1);
      } else if ((key == "anyOf" || key == "oneOf") && value.is_array()) {
        convert_any_of(value.get_array(), out, depth);
      } else if (key == "enum" && value.is_array()) {
        out["enum"] = value;
      } else if (key == "const" && value.is_string()) {
        out["enum"] = json::array{value};
      } else if (contains(kPassThroughKeywords, key)) {
        out[key] = value;
      }  // everything else ($schema, additionalProperties, $defs, ...) is not in the subset
    }
    if (const json::object* properties = find_object(out, "properties");
        properties && !out.contains("propertyOrdering")) {
      // Gemini orders output keys alphabetically unless told; keep the schema's order.
      json::array order;
      for (const auto& p : *properties) order.push_back(json::string(p.key()));
      out["propertyOrdering"] = std::move(order);
    }
    return out;
  }

 private:
  const json::object& resolve(std::string_view ref) const {
    for (const auto& [prefix, defs] : defs_) {
      const std::string full = "#/" + prefix + "/";
      if (ref.substr(0, full.size()) != full) continue;
      if (const json::object* target = find_object(*defs, ref.substr(full.size()))) return *target;
    }
    throw ConfigurationError("output schema $ref '" + excerpt(ref, 80) +
                             "' does not point into $defs or definitions");
  }

  static void convert_type(const json::value& type, json::object& out) {
    if (type.is_string()) {
      out["type"] = upper(type.get_string());
      return;
    }
    if (!type.is_array()) return;
    std::vector<std::string> types;
    for (const json::value& t : type.get_array()) {
      if (!t.is_string()) continue;
      if (t.get_string() == "null") {
        out["nullable"] = true;
      } else {
        types.push_back(upper(t.get_string()));
      }
    }
    if (types.size() == 1) {
      out["type"] = types.front();
    } else if (types.size() > 1) {
      json::array any_of;
      for (const std::string& t : types) any_of.push_back(json::object{{"type", t}});
      out["anyOf"] = std::move(any_of);
    }
  }

  void convert_any_of(const json::array& options, json::object& out, int depth) {
    json::array converted;
    bool nullable = false;
    for (const json::value& option : options) {
      if (!option.is_object()) continue;
      if (find_string(option.get_object(), "type") == "null") {
        nullable = true;
        continue;
      }
      converted.push_back(convert(option.get_object(), depth + 1));
    }
    if (converted.size() == 1) {  // Optional[X]: X, nullable
      for (const auto& field : converted.front().get_object()) out[field.key()] = field.value();
    } else if (!converted.empty()) {
      out["anyOf"] = std::move(converted);
    }
    if (nullable) out["nullable"] = true;
  }

  std::map<std::string, const json::object*> defs_;
  std::vector<std::string> active_refs_;
};

}  // namespace

json::object to_gemini_schema(const json::object& json_schema) {
  return SchemaConverter(json_schema).convert(json_schema, 0);
}

}  // namespace llm_caching::providers::detail::gemini

// Sample values for JSON schemas, so typed-output requests get an answer that parses.
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>

#include "core/text.hpp"
#include "fake_logic.hpp"

namespace llm_caching::fake {
namespace json = boost::json;

namespace {

using core::lowercase;

/// The schema's type in lower case ("string", "object", ...); the first non-null one of a list.
std::string type_of(const json::object& schema) {
  const json::value* type = schema.if_contains("type");
  if (type && type->is_string()) return lowercase(type->as_string());
  if (type && type->is_array()) {
    for (const auto& t : type->as_array()) {
      if (t.is_string() && lowercase(t.as_string()) != "null") return lowercase(t.as_string());
    }
  }
  if (schema.contains("properties")) return "object";
  if (schema.contains("items")) return "array";
  return "";
}

const json::object* resolve_ref(const json::object& schema, const json::object& root) {
  const json::value* ref = schema.if_contains("$ref");
  if (!ref || !ref->is_string()) return &schema;
  std::string_view path = ref->as_string();
  for (std::string_view prefix : {"#/$defs/", "#/definitions/"}) {
    if (path.starts_with(prefix)) {
      const json::value* defs = root.if_contains(prefix.substr(2, prefix.size() - 3));
      if (defs && defs->is_object()) {
        const json::value* target = defs->as_object().if_contains(path.substr(prefix.size()));
        if (target && target->is_object()) return &target->as_object();
      }
    }
  }
  return &schema;
}

json::value fitting(const json::value& node, const json::object& root, int depth) {
  if (depth > 32 || !node.is_object()) return "x";
  const json::object& schema = *resolve_ref(node.as_object(), root);
  if (const auto* values = schema.if_contains("enum");
      values && values->is_array() && !values->as_array().empty()) {
    return values->as_array().front();
  }
  if (const auto* constant = schema.if_contains("const")) return *constant;
  for (const char* key : {"anyOf", "oneOf", "allOf"}) {
    const auto* options = schema.if_contains(key);
    if (!options || !options->is_array()) continue;
    for (const auto& option : options->as_array()) {
      if (option.is_object() && type_of(option.as_object()) == "null" &&
          options->as_array().size() > 1) {
        continue;
      }
      return fitting(option, root, depth + 1);
    }
  }
  const std::string type = type_of(schema);
  if (type == "string") {
    const auto* format = schema.if_contains("format");
    if (format && format->is_string() && format->as_string() == "date-time") {
      return "2024-01-01T00:00:00Z";
    }
    if (format && format->is_string() && format->as_string() == "date") return "2024-01-01";
    return "x";
  }
  if (type == "integer") return 1;
  if (type == "number") return 1.5;
  if (type == "boolean") return true;
  if (type == "null") return nullptr;
  if (type == "array") {
    json::array items;
    std::int64_t count = 1;
    if (const auto* min = schema.if_contains("minItems"); min && min->is_int64()) {
      count = std::clamp<std::int64_t>(min->as_int64(), 1, 16);
    }
    const json::value item_schema = schema.contains("items") ? schema.at("items") : json::value();
    for (std::int64_t i = 0; i < count; ++i) items.push_back(fitting(item_schema, root, depth + 1));
    return items;
  }
  json::object object;
  if (const auto* properties = schema.if_contains("properties");
      properties && properties->is_object()) {
    for (const auto& [name, property] : properties->as_object()) {
      object[name] = fitting(property, root, depth + 1);
    }
  }
  return object;
}

json::value wrong_for(const json::value& node, const json::object& root) {
  const json::object empty;
  const json::object& schema = node.is_object() ? *resolve_ref(node.as_object(), root) : empty;
  const std::string type = type_of(schema);
  if (type == "string") return 42;
  if (type == "integer" || type == "number") return "not a number";
  if (type == "boolean") return "maybe";
  if (type == "array") return "not an array";
  return "not an object";
}

}  // namespace

json::value sample_for_schema(const json::value& schema, bool wrong) {
  const json::object empty;
  const json::object& root = schema.is_object() ? schema.as_object() : empty;
  if (!wrong) return fitting(schema, root, 0);
  // Every property gets a value of the wrong type, and one unexpected property is added.
  const json::value* properties = root.if_contains("properties");
  if (type_of(root) != "object" || !properties || !properties->is_object()) {
    return wrong_for(schema, root);
  }
  json::object object;
  for (const auto& [name, property] : properties->as_object()) {
    object[name] = wrong_for(property, root);
  }
  object["unexpected_field_from_fake_provider"] = true;
  return object;
}

}  // namespace llm_caching::fake

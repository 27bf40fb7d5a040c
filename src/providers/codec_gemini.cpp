// Gemini generateContent / streamGenerateContent (Generative Language API, v1beta).
#include "llm_caching/errors.hpp"
#include "providers/codec_detail.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

namespace llm_caching::providers::detail::gemini {

namespace json = boost::json;

namespace {

constexpr Provider kProvider = Provider::gemini;

// GenerateContentRequest's own fields: settings.extra entries with these names stay top level.
constexpr std::array<std::string_view, 12> kTopLevelFields = {"contents",
                                                              "systemInstruction",
                                                              "system_instruction",
                                                              "tools",
                                                              "toolConfig",
                                                              "tool_config",
                                                              "safetySettings",
                                                              "safety_settings",
                                                              "cachedContent",
                                                              "cached_content",
                                                              "labels",
                                                              "model"};

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

bool is_plain_text_part(const json::object& part) {
  for (const auto& field : part) {
    if (field.key() != "text" && field.key() != "thought") return false;
  }
  return part.contains("text") && part.at("text").is_string();
}

bool is_thought(const json::object& part) {
  const json::value* thought = part.if_contains("thought");
  return thought && thought->is_bool() && thought->get_bool();
}

// Streams split one text part over many events; consecutive plain text parts are joined again.
void append_part(json::array& parts, const json::object& part) {
  if (!parts.empty() && parts.back().is_object() && is_plain_text_part(parts.back().get_object()) &&
      is_plain_text_part(part) && is_thought(parts.back().get_object()) == is_thought(part)) {
    json::object& last = parts.back().get_object();
    std::string text(last.at("text").get_string());
    text.append(part.at("text").get_string());
    last["text"] = text;
    return;
  }
  parts.push_back(part);
}

void merge_candidate(json::object& target, const json::object& chunk) {
  for (const auto& field : chunk) {
    if (field.key() != "content") target[field.key()] = field.value();
  }
  const json::object* content = find_object(chunk, "content");
  if (!content) return;
  json::value& merged = target["content"];
  if (!merged.is_object()) merged = json::object{{"parts", json::array{}}};
  json::object& merged_content = merged.get_object();
  if (auto role = find_string(*content, "role"); !role.empty()) merged_content["role"] = role;
  if (!merged_content["parts"].is_array()) merged_content["parts"] = json::array{};
  if (const json::array* parts = find_array(*content, "parts")) {
    for (const json::value& part : *parts) {
      if (part.is_object()) append_part(merged_content["parts"].get_array(), part.get_object());
    }
  }
}

}  // namespace

json::object to_gemini_schema(const json::object& json_schema) {
  return SchemaConverter(json_schema).convert(json_schema, 0);
}

json::object build_request(const ChatRequest& request) {
  json::object body;
  std::string system = request.system_prompt;
  json::array contents;
  for (const ModelMessage& m : request.messages) {
    if (m.role == "system") {
      if (!system.empty()) system.append("\n\n");
      system.append(m.content);
      continue;
    }
    if (m.role != "user" && m.role != "assistant" && m.role != "model") {
      throw_bad_role(kProvider, m.role);
    }
    contents.push_back(json::object{{"role", m.role == "user" ? "user" : "model"},
                                    {"parts", json::array{json::object{{"text", m.content}}}}});
  }
  body["contents"] = std::move(contents);
  if (!system.empty()) {
    body["systemInstruction"] =
        json::object{{"parts", json::array{json::object{{"text", system}}}}};
  }
  const ModelSettings& s = request.settings;
  json::object config;
  if (s.temperature) config["temperature"] = *s.temperature;
  if (s.top_p) config["topP"] = *s.top_p;
  if (s.max_tokens) config["maxOutputTokens"] = *s.max_tokens;
  if (s.seed) config["seed"] = *s.seed;
  if (!s.stop.empty()) config["stopSequences"] = json::array(s.stop.begin(), s.stop.end());
  if (request.output_schema) {
    config["responseMimeType"] = "application/json";
    config["responseSchema"] = to_gemini_schema(*request.output_schema);
  }
  for (const auto& field : s.extra) {
    if (field.key() == "generationConfig" && field.value().is_object()) {
      for (const auto& c : field.value().get_object()) config[c.key()] = c.value();
    } else if (contains(kTopLevelFields, field.key())) {
      body[field.key()] = field.value();
    } else {
      config[field.key()] = field.value();
    }
  }
  if (!config.empty()) body["generationConfig"] = std::move(config);
  return body;
}

Usage extract_usage(const json::object& response) {
  Usage usage;
  usage.requests = 1;
  const json::object* counts = find_object(response, "usageMetadata");
  if (!counts) return usage;
  const std::int64_t prompt = find_count(*counts, "promptTokenCount");
  const std::int64_t cached = std::min(find_count(*counts, "cachedContentTokenCount"), prompt);
  // promptTokenCount includes the cached tokens; tool-use prompt tokens are counted apart.
  usage.input_tokens = prompt - cached + find_count(*counts, "toolUsePromptTokenCount");
  usage.cache_read_tokens = cached;
  usage.output_tokens =
      find_count(*counts, "candidatesTokenCount") + find_count(*counts, "thoughtsTokenCount");
  return usage;
}

ChatResponse parse_response(std::string_view body, bool structured) {
  const json::object root = parse_object(kProvider, body);
  if (root.contains("error")) throw_error_object(kProvider, body);
  const json::array* candidates = find_array(root, "candidates");
  if (!candidates || candidates->empty() || !candidates->front().is_object()) {
    const json::object* feedback = find_object(root, "promptFeedback");
    if (auto reason = feedback ? find_string(*feedback, "blockReason") : ""; !reason.empty()) {
      throw_invalid(kProvider, "prompt blocked: " + std::string(reason), body, "blocked");
    }
    throw_invalid(kProvider, "no candidates", body);
  }
  const json::object& candidate = candidates->front().get_object();
  ChatResponse out;
  out.finish_reason = find_string(candidate, "finishReason");
  out.model = find_string(root, "modelVersion");
  out.id = find_string(root, "responseId");
  out.usage = extract_usage(root);
  const json::object* content = find_object(candidate, "content");
  const json::array* parts = content ? find_array(*content, "parts") : nullptr;
  if (parts) {
    for (const json::value& part_value : *parts) {
      const json::object* part = part_value.if_object();
      if (!part) continue;
      if (part->contains("functionCall")) out.tool_calls.push_back(*part);
      if (!is_thought(*part))
        out.text.append(find_string(*part, "text"));  // thoughts are not the answer
    }
  }
  if (structured) {
    out.output_json = try_parse(out.text);
    if (!out.output_json) {
      throw_invalid(kProvider,
                    "structured output is not valid JSON (finishReason " +
                        std::string(out.finish_reason) + ")",
                    body);
    }
  }
  return out;
}

ProviderErrorInfo parse_error_body(std::string_view body) {
  ProviderErrorInfo info;
  auto parsed = try_parse(body);
  if (!parsed) return info;
  // The non-SSE stream endpoint wraps its error in an array.
  if (parsed->is_array() && !parsed->get_array().empty()) parsed = parsed->get_array().front();
  if (!parsed->is_object()) return info;
  const json::object* error = find_object(parsed->get_object(), "error");
  if (!error) return info;
  info.type = find_string(*error, "status");
  info.message = find_string(*error, "message");
  if (const json::value* code = error->if_contains("code"); code && !code->is_null()) {
    info.code = code->is_string() ? std::string(code->get_string()) : json::serialize(*code);
  }
  if (const json::array* details = find_array(*error, "details")) {
    for (const json::value& detail : *details) {
      if (!detail.is_object()) continue;
      const std::string_view type = find_string(detail.get_object(), "@type");
      if (type.ends_with("google.rpc.RetryInfo")) {
        info.retry_delay = parse_seconds_duration(find_string(detail.get_object(), "retryDelay"));
      }
    }
  }
  return info;
}

std::string response_to_sse(const json::object& response) {
  std::string out;
  const json::array* candidates = find_array(response, "candidates");
  const json::object* candidate =
      candidates && candidates->size() == 1 ? candidates->front().if_object() : nullptr;
  const json::object* content = candidate ? find_object(*candidate, "content") : nullptr;
  const json::array* parts = content ? find_array(*content, "parts") : nullptr;
  if (!parts || parts->size() < 2) {  // nothing to split: the response is its own single event
    append_sse_event(out, json::serialize(response));
    return out;
  }
  // One event per part, as the service streams them; the last carries the candidate's remaining
  // fields (finishReason, safetyRatings, ...) and the final usageMetadata.
  json::object base = response;
  base.erase("candidates");
  base.erase("usageMetadata");
  base.erase("promptFeedback");
  json::object last_candidate = *candidate;
  last_candidate.erase("content");
  for (std::size_t i = 0; i < parts->size(); ++i) {
    const bool first = i == 0;
    const bool last = i + 1 == parts->size();
    json::object chunk_content{{"parts", json::array{(*parts)[i]}}};
    if (const json::value* role = content->if_contains("role")) chunk_content["role"] = *role;
    json::object chunk_candidate = last ? last_candidate : json::object{};
    chunk_candidate["content"] = std::move(chunk_content);
    if (!last && candidate->contains("index")) chunk_candidate["index"] = candidate->at("index");
    json::object chunk{{"candidates", json::array{std::move(chunk_candidate)}}};
    if (first && response.contains("promptFeedback")) {
      chunk["promptFeedback"] = response.at("promptFeedback");
    }
    if (last && response.contains("usageMetadata")) {
      chunk["usageMetadata"] = response.at("usageMetadata");
    }
    for (const auto& field : base) chunk[field.key()] = field.value();
    append_sse_event(out, json::serialize(chunk));
  }
  return out;
}

std::string sse_to_response(std::string_view sse_body) {
  std::map<std::int64_t, json::object> candidates;
  json::object rest;
  bool any_event = false;
  for (const SseEvent& event : read_sse(kProvider, sse_body)) {
    auto parsed = try_parse(event.data);
    if (!parsed || !parsed->is_object()) {
      throw_invalid(kProvider, "stream event is not JSON", event.data);
    }
    const json::object& chunk = parsed->get_object();
    if (chunk.contains("error")) throw_error_object(kProvider, event.data);
    any_event = true;
    for (const auto& field : chunk) {
      if (field.key() != "candidates") rest[field.key()] = field.value();  // latest wins
    }
    if (const json::array* chunk_candidates = find_array(chunk, "candidates")) {
      for (const json::value& c : *chunk_candidates) {
        if (c.is_object())
          merge_candidate(candidates[find_count(c.get_object(), "index")], c.get_object());
      }
    }
  }
  if (!any_event) throw_invalid(kProvider, "empty stream", sse_body);
  const bool finished = std::any_of(candidates.begin(), candidates.end(), [](const auto& c) {
    return !find_string(c.second, "finishReason").empty();
  });
  const json::object* feedback = find_object(rest, "promptFeedback");
  const bool blocked = feedback && !find_string(*feedback, "blockReason").empty();
  if (!finished && !blocked) {
    throw_invalid(kProvider, "stream ended before a finishReason",
                  sse_body.substr(sse_body.size() > 200 ? sse_body.size() - 200 : 0));
  }
  json::object response;
  if (!candidates.empty()) {
    json::array merged;
    for (auto& [_, c] : candidates) merged.push_back(std::move(c));
    response["candidates"] = std::move(merged);
  }
  for (const auto& field : rest) response[field.key()] = field.value();
  return json::serialize(response);
}

}  // namespace llm_caching::providers::detail::gemini

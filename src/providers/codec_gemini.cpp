// Gemini generateContent / streamGenerateContent (Generative Language API, v1beta): the request,
// the usage and the error body. The answer and its stream are read in codec_gemini_response.cpp,
// output schemas converted in codec_gemini_schema.cpp.
#include "llm_caching/errors.hpp"
#include "providers/codec_detail.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>

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

bool is_top_level_field(std::string_view name) {
  return std::find(kTopLevelFields.begin(), kTopLevelFields.end(), name) != kTopLevelFields.end();
}

}  // namespace

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
    } else if (is_top_level_field(field.key())) {
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

}  // namespace llm_caching::providers::detail::gemini

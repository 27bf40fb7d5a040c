// The fake provider's Gemini generateContent wire format (see README.md).
#include "fake_call.hpp"

#include <boost/json.hpp>

namespace llm_caching::fake::gemini {
namespace {

json::object gemini_usage(const Tokens& t) {
  json::object usage{{"promptTokenCount", t.prompt},
                     {"candidatesTokenCount", t.completion},
                     {"totalTokenCount", t.prompt + t.completion}};
  if (t.cache_read > 0) usage["cachedContentTokenCount"] = t.cache_read;
  return usage;
}

json::object gemini_chunk(const Call& call, json::object part, bool last, const Tokens& tokens) {
  json::object candidate{{"content", {{"parts", json::array{std::move(part)}}, {"role", "model"}}},
                         {"index", 0}};
  if (last) candidate["finishReason"] = "STOP";
  json::object chunk{{"candidates", json::array{candidate}}};
  if (last) chunk["usageMetadata"] = gemini_usage(tokens);
  chunk["modelVersion"] = call.model;
  chunk["responseId"] = "fake" + call.short_hash;
  return chunk;
}

json::object gemini_part(const Answer& answer, std::string_view text) {
  if (answer.tool)
    return {{"functionCall", {{"name", answer.tool_name}, {"args", answer.tool_input}}}};
  return {{"text", text}};
}

std::vector<json::object> gemini_chunks(const Call& call, const Answer& answer,
                                        const Tokens& tokens) {
  std::vector<json::object> chunks;
  if (answer.tool) {
    chunks.push_back(gemini_chunk(call, gemini_part(answer, ""), true, tokens));
    return chunks;
  }
  const auto parts = pieces(answer.text);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    chunks.push_back(
        gemini_chunk(call, gemini_part(answer, parts[i]), i + 1 == parts.size(), tokens));
  }
  return chunks;
}

}  // namespace

Reply error_reply(int status, const std::string& message) {
  const char* state = status == 400   ? "INVALID_ARGUMENT"
                      : status == 401 ? "UNAUTHENTICATED"
                      : status == 404 ? "NOT_FOUND"
                      : status == 429 ? "RESOURCE_EXHAUSTED"
                      : status == 503 ? "UNAVAILABLE"
                                      : "INTERNAL";
  return json_reply(status,
                    {{"error", {{"code", status}, {"message", message}, {"status", state}}}});
}

std::optional<Reply> check_auth(const Request& request) {
  if (!request.header("x-goog-api-key").empty() || !request.query_param("key").empty()) {
    return std::nullopt;
  }
  return error_reply(401,
                     "Method doesn't allow unregistered callers. Please use API Key or other "
                     "form of API consumer identity to call this API.");
}

std::optional<ForcedTool> forced_tool(const json::object& body) {
  const auto* mode = find_path(body, {"toolConfig", "functionCallingConfig", "mode"});
  if (!mode || !mode->is_string() || mode->as_string() != "ANY") return std::nullopt;
  std::string wanted;
  if (const auto* allowed =
          find_path(body, {"toolConfig", "functionCallingConfig", "allowedFunctionNames"});
      allowed && allowed->is_array() && !allowed->as_array().empty() &&
      allowed->as_array()[0].is_string()) {
    wanted = allowed->as_array()[0].as_string();
  }
  const auto* tools = body.if_contains("tools");
  if (!tools || !tools->is_array()) return std::nullopt;
  for (const auto& tool : tools->as_array()) {
    if (!tool.is_object()) continue;
    if (auto found = pick_tool(tool.as_object().if_contains("functionDeclarations"), wanted,
                               "parameters", false)) {
      return found;
    }
  }
  return std::nullopt;
}

const json::value* output_schema(const json::object& body) {
  for (const char* key :
       {"responseSchema", "responseJsonSchema", "response_schema", "response_json_schema"}) {
    if (const auto* schema = find_path(body, {"generationConfig", key})) return schema;
  }
  return nullptr;
}

Reply exhausted_reply() {
  json::object error{{"code", 429},
                     {"message", "Resource has been exhausted (e.g. check quota)."},
                     {"status", "RESOURCE_EXHAUSTED"},
                     {"details", json::array{{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                                              {"retryDelay", "1s"}}}}};
  return json_reply(429, {{"error", error}});
}

std::string body(const Call& call, const Answer& answer, const Tokens& tokens) {
  if (call.request->path.ends_with(":streamGenerateContent")) {
    // Without alt=sse, Gemini streams one JSON array of chunks.
    json::array array;
    for (const auto& chunk : gemini_chunks(call, answer, tokens)) array.push_back(chunk);
    return json::serialize(array);
  }
  return json::serialize(gemini_chunk(call, gemini_part(answer, answer.text), true, tokens));
}

std::vector<std::string> events(const Call& call, const Answer& answer, const Tokens& tokens) {
  std::vector<std::string> events;
  for (const auto& chunk : gemini_chunks(call, answer, tokens)) {
    events.push_back("data: " + json::serialize(chunk) + "\r\n\r\n");
  }
  return events;
}

}  // namespace llm_caching::fake::gemini

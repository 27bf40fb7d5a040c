// The fake provider's Anthropic messages wire format (see README.md).
#include "fake_call.hpp"

#include <boost/json.hpp>

namespace llm_caching::fake::anthropic {
namespace {

json::object anthropic_usage(const Tokens& t, bool streaming_start) {
  return {{"input_tokens", t.prompt - t.cache_read - t.cache_write},
          {"cache_creation_input_tokens", t.cache_write},
          {"cache_read_input_tokens", t.cache_read},
          {"output_tokens", streaming_start ? 1 : t.completion}};
}

json::object anthropic_message(const Call& call, json::array content, json::value stop,
                               json::object usage) {
  return {{"id", "msg_fake" + hex(call.hash)},
          {"type", "message"},
          {"role", "assistant"},
          {"model", call.model},
          {"content", content},
          {"stop_reason", stop},
          {"stop_sequence", nullptr},
          {"usage", usage}};
}

json::object anthropic_block(const Call& call, const Answer& answer, bool complete) {
  if (!answer.tool) return {{"type", "text"}, {"text", complete ? answer.text : ""}};
  return {{"type", "tool_use"},
          {"id", "toolu_fake" + call.short_hash},
          {"name", answer.tool_name},
          {"input", complete ? answer.tool_input : json::object()}};
}

}  // namespace

Reply error_reply(int status, const std::string& message) {
  const char* type = status == 400   ? "invalid_request_error"
                     : status == 401 ? "authentication_error"
                     : status == 404 ? "not_found_error"
                     : status == 429 ? "rate_limit_error"
                     : status == 529 ? "overloaded_error"
                                     : "api_error";
  return json_reply(status, {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}});
}

std::optional<Reply> check_auth(const Request& request) {
  if (request.header("x-api-key").empty()) {
    return error_reply(401, "x-api-key header is required");
  }
  if (request.header("anthropic-version").empty()) {
    return error_reply(400, "anthropic-version: header is required");
  }
  return std::nullopt;
}

std::optional<ForcedTool> forced_tool(const json::object& body) {
  const auto* choice = body.if_contains("tool_choice");
  if (!choice || !choice->is_object()) return std::nullopt;
  const auto* type = choice->as_object().if_contains("type");
  if (!type || !type->is_string()) return std::nullopt;
  if (type->as_string() == "any")
    return pick_tool(body.if_contains("tools"), "", "input_schema", false);
  const auto* name = choice->as_object().if_contains("name");
  if (type->as_string() == "tool" && name && name->is_string()) {
    return pick_tool(body.if_contains("tools"), std::string(name->as_string()), "input_schema",
                     false);
  }
  return std::nullopt;
}

std::string body(const Call& call, const Answer& answer, const Tokens& tokens) {
  return json::serialize(anthropic_message(call, json::array{anthropic_block(call, answer, true)},
                                           answer.tool ? "tool_use" : "end_turn",
                                           anthropic_usage(tokens, false)));
}

std::vector<std::string> events(const Call& call, const Answer& answer, const Tokens& tokens) {
  std::vector<std::string> events;
  auto emit = [&](const char* type, json::object data) {
    data.emplace("type", type);
    events.push_back(std::string("event: ") + type + "\ndata: " + json::serialize(data) + "\n\n");
  };
  emit("message_start",
       {{"message", anthropic_message(call, {}, nullptr, anthropic_usage(tokens, true))}});
  emit("content_block_start",
       {{"index", 0}, {"content_block", anthropic_block(call, answer, false)}});
  emit("ping", {});
  for (const auto& piece : pieces(answer.tool ? answer.tool_arguments : answer.text)) {
    json::object delta = answer.tool
                             ? json::object{{"type", "input_json_delta"}, {"partial_json", piece}}
                             : json::object{{"type", "text_delta"}, {"text", piece}};
    emit("content_block_delta", {{"index", 0}, {"delta", delta}});
  }
  emit("content_block_stop", {{"index", 0}});
  emit("message_delta",
       {{"delta",
         {{"stop_reason", answer.tool ? "tool_use" : "end_turn"}, {"stop_sequence", nullptr}}},
        {"usage", {{"output_tokens", tokens.completion}}}});
  emit("message_stop", {});
  return events;
}

}  // namespace llm_caching::fake::anthropic

// The fake provider's OpenAI Responses API wire format (POST /v1/responses, see README.md): the
// response object, and its typed stream (event: + data: with "type" and "sequence_number", no
// [DONE]). Written independently of the gateway's codec, which these answers test.
#include "fake_call.hpp"

#include <boost/json.hpp>

namespace llm_caching::fake::responses {
namespace {

json::object usage_of(const Tokens& t) {
  return {{"input_tokens", t.prompt},
          {"input_tokens_details", {{"cached_tokens", t.cache_read}}},
          {"output_tokens", t.completion},
          {"output_tokens_details", {{"reasoning_tokens", t.reasoning}}},
          {"total_tokens", t.prompt + t.completion}};
}

json::value body_field(const Call& call, const char* name, json::value fallback) {
  const json::value* v = call.body.if_contains(name);
  return v ? *v : fallback;
}

/// The response object; `done` false gives the in-progress one that response.created carries.
json::object response_of(const Call& call, json::array output, const Tokens& tokens, bool done) {
  json::object r{{"id", "resp_fake" + hex(call.hash)},
                 {"object", "response"},
                 {"created_at", kCreated},
                 {"status", done ? "completed" : "in_progress"},
                 {"error", nullptr},
                 {"incomplete_details", nullptr},
                 {"instructions", body_field(call, "instructions", nullptr)},
                 {"max_output_tokens", body_field(call, "max_output_tokens", nullptr)},
                 {"model", call.model},
                 {"output", std::move(output)},
                 {"parallel_tool_calls", true},
                 {"previous_response_id", body_field(call, "previous_response_id", nullptr)},
                 {"reasoning", {{"effort", nullptr}, {"summary", nullptr}}},
                 {"store", body_field(call, "store", true)},
                 {"temperature", body_field(call, "temperature", 1)},
                 {"text", {{"format", {{"type", "text"}}}}},
                 {"tool_choice", body_field(call, "tool_choice", "auto")},
                 {"tools", body_field(call, "tools", json::array{})},
                 {"top_p", body_field(call, "top_p", 1)},
                 {"truncation", "disabled"},
                 {"usage", done ? json::value(usage_of(tokens)) : json::value(nullptr)},
                 {"user", nullptr},
                 {"metadata", body_field(call, "metadata", json::object{})}};
  return r;
}

json::object text_part(std::string_view text) {
  return {{"type", "output_text"},
          {"annotations", json::array{}},
          {"logprobs", json::array{}},
          {"text", text}};
}

json::object output_item(const Call& call, const Answer& answer, bool done) {
  if (answer.tool) {
    return {{"id", "fc_fake" + call.short_hash},
            {"type", "function_call"},
            {"status", done ? "completed" : "in_progress"},
            {"arguments", done ? answer.tool_arguments : ""},
            {"call_id", "call_fake" + call.short_hash},
            {"name", answer.tool_name}};
  }
  json::array content;
  if (done) content.push_back(text_part(answer.text));
  return {{"id", "msg_fake" + call.short_hash},
          {"type", "message"},
          {"status", done ? "completed" : "in_progress"},
          {"content", std::move(content)},
          {"role", "assistant"}};
}

}  // namespace

std::optional<ForcedTool> forced_tool(const json::object& body) {
  const auto* choice = body.if_contains("tool_choice");
  if (!choice) return std::nullopt;
  if (choice->is_string() && choice->as_string() == "required") {
    return pick_tool(body.if_contains("tools"), "", "parameters", false);
  }
  if (const auto* name = choice->is_object() ? choice->as_object().if_contains("name") : nullptr;
      name && name->is_string()) {
    return pick_tool(body.if_contains("tools"), std::string(name->as_string()), "parameters",
                     false);
  }
  return std::nullopt;
}

bool has_tool_result(const json::object& body) {
  const auto* input = body.if_contains("input");
  if (!input || !input->is_array()) return false;
  for (const auto& item : input->as_array()) {
    const auto* type = item.is_object() ? item.as_object().if_contains("type") : nullptr;
    if (type && type->is_string() && type->as_string() == "function_call_output") return true;
  }
  return false;
}

const json::value* output_schema(const json::object& body) {
  const auto* type = find_path(body, {"text", "format", "type"});
  if (!type || !type->is_string() || type->as_string() != "json_schema") return nullptr;
  return find_path(body, {"text", "format", "schema"});
}

std::string body(const Call& call, const Answer& answer, const Tokens& tokens) {
  return json::serialize(response_of(call, {output_item(call, answer, true)}, tokens, true));
}

std::vector<std::string> events(const Call& call, const Answer& answer, const Tokens& tokens) {
  std::vector<std::string> events;
  std::int64_t sequence = 0;
  auto emit = [&](const char* type, json::object fields) {
    json::object event{{"type", type}, {"sequence_number", sequence++}};
    for (auto& field : fields) event[field.key()] = std::move(field.value());
    events.push_back(std::string("event: ") + type + "\ndata: " + json::serialize(event) + "\n\n");
  };
  const json::object started = response_of(call, {}, tokens, false);
  emit("response.created", {{"response", started}});
  emit("response.in_progress", {{"response", started}});
  const json::object item = output_item(call, answer, true);
  const json::value item_id = item.at("id");
  emit("response.output_item.added",
       {{"output_index", 0}, {"item", output_item(call, answer, false)}});
  if (answer.tool) {
    for (const auto& piece : pieces(answer.tool_arguments)) {
      emit("response.function_call_arguments.delta",
           {{"item_id", item_id}, {"output_index", 0}, {"delta", piece}});
    }
    emit("response.function_call_arguments.done",
         {{"item_id", item_id}, {"output_index", 0}, {"arguments", answer.tool_arguments}});
  } else {
    const json::object where{{"item_id", item_id}, {"output_index", 0}, {"content_index", 0}};
    auto at = [&where](json::object more) {
      json::object fields = where;
      for (auto& field : more) fields[field.key()] = std::move(field.value());
      return fields;
    };
    emit("response.content_part.added", at({{"part", text_part("")}}));
    for (const auto& piece : pieces(answer.text)) {
      emit("response.output_text.delta", at({{"delta", piece}, {"logprobs", json::array{}}}));
    }
    emit("response.output_text.done", at({{"text", answer.text}, {"logprobs", json::array{}}}));
    emit("response.content_part.done", at({{"part", text_part(answer.text)}}));
  }
  emit("response.output_item.done", {{"output_index", 0}, {"item", item}});
  emit("response.completed", {{"response", response_of(call, {item}, tokens, true)}});
  return events;
}

}  // namespace llm_caching::fake::responses

// The call's answer, shared by the three wire formats: what the fake says (an echo, a sample of
// the output schema, or a forced tool's call) and the tokens it bills (see README.md).
#include "fake_call.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>

namespace llm_caching::fake {
namespace {

/// Cuts at most `limit` bytes without splitting a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

std::string text_of(const json::value& content, const char* text_key = "text") {
  if (content.is_string()) return std::string(content.as_string());
  std::string out;
  if (!content.is_array()) return out;
  for (const auto& part : content.as_array()) {
    if (!part.is_object()) continue;
    const auto* text = part.as_object().if_contains(text_key);
    if (text && text->is_string()) {
      if (!out.empty()) out += "\n";
      out += text->as_string();
    }
  }
  return out;
}

/// The Responses API's input: a string, or items with a role and a content (string or parts).
std::string last_input_text(const json::value* input) {
  if (!input) return {};
  if (input->is_string()) return std::string(input->as_string());
  if (!input->is_array()) return {};
  const auto& items = input->as_array();
  for (auto it = items.rbegin(); it != items.rend(); ++it) {
    const auto* role = it->is_object() ? it->as_object().if_contains("role") : nullptr;
    if (!role || !role->is_string() || role->as_string() != "user") continue;
    const auto* content = it->as_object().if_contains("content");
    return content ? text_of(*content) : std::string();
  }
  return {};
}

std::string last_user_text(const Call& call) {
  if (call.endpoint == Endpoint::responses) return last_input_text(call.body.if_contains("input"));
  if (call.endpoint == Endpoint::completions)
    return last_input_text(call.body.if_contains("prompt"));
  const char* list = call.api == Api::gemini ? "contents" : "messages";
  const auto* messages = call.body.if_contains(list);
  if (!messages || !messages->is_array()) return {};
  const auto& array = messages->as_array();
  for (auto it = array.rbegin(); it != array.rend(); ++it) {
    if (!it->is_object()) continue;
    const auto& message = it->as_object();
    const auto* role = message.if_contains("role");
    const bool user = (role && role->is_string() && role->as_string() == "user") ||
                      (!role && call.api == Api::gemini);
    if (!user) continue;
    const auto* content = message.if_contains(call.api == Api::gemini ? "parts" : "content");
    return content ? text_of(*content) : std::string();
  }
  return {};
}

std::optional<ForcedTool> forced_tool(const Call& call) {
  if (call.endpoint == Endpoint::responses) {
    // "tool-first": an agent's tool loop, one step: call the first tool, then answer in text
    // once the request carries a tool's result.
    if (call.behaviors.tool_first && !responses::has_tool_result(call.body)) {
      return pick_tool(call.body.if_contains("tools"), "", "parameters", false);
    }
    return responses::forced_tool(call.body);
  }
  switch (call.api) {
    case Api::openai:
      return openai::forced_tool(call.body);
    case Api::anthropic:
      return anthropic::forced_tool(call.body);
    case Api::gemini:
      return gemini::forced_tool(call.body);
  }
  return std::nullopt;
}

const json::value* output_schema(const Call& call) {
  if (call.endpoint == Endpoint::responses) return responses::output_schema(call.body);
  if (call.api == Api::openai) return openai::output_schema(call.body);
  if (call.api == Api::gemini) return gemini::output_schema(call.body);
  return nullptr;
}

}  // namespace

std::string hex(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    std::string_view piece = utf8_prefix(text, 16);
    if (piece.empty()) piece = text.substr(0, 1);
    out.emplace_back(piece);
    text.remove_prefix(piece.size());
  }
  if (out.empty()) out.emplace_back();
  return out;
}

Reply json_reply(int status, const json::value& body) {
  Reply reply;
  reply.status = status;
  reply.headers.emplace_back("Content-Type", "application/json");
  reply.body = json::serialize(body);
  return reply;
}

const json::value* find_path(const json::object& object, std::initializer_list<const char*> path) {
  const json::value* at = nullptr;
  const json::object* current = &object;
  for (const char* key : path) {
    if (!current) return nullptr;
    at = current->if_contains(key);
    if (!at) return nullptr;
    current = at->is_object() ? &at->as_object() : nullptr;
  }
  return at;
}

std::optional<ForcedTool> pick_tool(const json::value* tools, const std::string& wanted,
                                    const char* schema_key, bool openai) {
  if (!tools || !tools->is_array()) return std::nullopt;
  for (const auto& tool : tools->as_array()) {
    if (!tool.is_object()) continue;
    const json::object* spec = &tool.as_object();
    if (openai) {
      const auto* function = spec->if_contains("function");
      if (!function || !function->is_object()) continue;
      spec = &function->as_object();
    }
    const auto* name = spec->if_contains("name");
    if (!name || !name->is_string()) continue;
    if (!wanted.empty() && name->as_string() != wanted) continue;
    const auto* schema = spec->if_contains(schema_key);
    return std::make_pair(std::string(name->as_string()), schema ? *schema : json::object());
  }
  return std::nullopt;
}

Answer make_answer(const Call& call) {
  Answer answer;
  const bool wrong = call.behaviors.failure == "wrong-schema";
  if (auto tool = forced_tool(call)) {
    answer.tool = true;
    answer.tool_name = tool->first;
    answer.tool_input = sample_for_schema(tool->second, wrong);
    answer.tool_arguments = json::serialize(answer.tool_input);
    return answer;
  }
  if (const auto* schema = output_schema(call)) {
    answer.text = json::serialize(sample_for_schema(*schema, wrong));
    return answer;
  }
  answer.text =
      "echo: " + std::string(utf8_prefix(last_user_text(call), 200)) + " [" + call.short_hash + "]";
  return answer;
}

Tokens count_tokens(const Call& call, const Answer& answer) {
  Tokens tokens;
  tokens.prompt = std::max<std::int64_t>(1, call.request->body.size() / 4);
  const std::size_t out = answer.tool ? answer.tool_arguments.size() : answer.text.size();
  tokens.completion = std::max<std::int64_t>(1, out / 4);
  if (call.request->body.find("cache-me") != std::string::npos) {
    tokens.cache_read = tokens.prompt / 2;
    tokens.cache_write = tokens.prompt / 4;
  }
  if (call.request->body.find("reason-me") != std::string::npos) {
    tokens.reasoning = 8;  // thought before answering: billed as output
    tokens.completion += tokens.reasoning;
  }
  return tokens;
}

}  // namespace llm_caching::fake

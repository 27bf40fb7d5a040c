// The fake provider's OpenAI chat completions wire format (see README.md).
#include "fake_call.hpp"

#include "core/canonical_json.hpp"

#include <boost/json.hpp>

namespace llm_caching::fake::openai {
namespace {

json::object openai_usage(const Tokens& t) {
  return {{"prompt_tokens", t.prompt},
          {"completion_tokens", t.completion},
          {"total_tokens", t.prompt + t.completion},
          {"prompt_tokens_details", {{"cached_tokens", t.cache_read}, {"audio_tokens", 0}}},
          {"completion_tokens_details",
           {{"reasoning_tokens", 0},
            {"audio_tokens", 0},
            {"accepted_prediction_tokens", 0},
            {"rejected_prediction_tokens", 0}}}};
}

json::object openai_envelope(const Call& call, const char* object) {
  return {{"id", "chatcmpl-fake" + hex(call.hash)},
          {"object", object},
          {"created", kCreated},
          {"model", call.model},
          {"system_fingerprint", "fp_fake"}};
}

json::value openai_tool_call(const Call& call, const Answer& answer, bool with_arguments) {
  return {
      {"index", 0},
      {"id", "call_fake" + call.short_hash},
      {"type", "function"},
      {"function",
       {{"name", answer.tool_name}, {"arguments", with_arguments ? answer.tool_arguments : ""}}}};
}

/// The plain-text chat completion, written out directly: the benchmarks' every miss asks for
/// one, and building it as a JSON tree was a third of the fake provider's work per request,
/// taken from the CPU the gateway under test shares with it. Same fields, same order.
std::string openai_text_body(const Call& call, const Answer& answer, const Tokens& t) {
  std::string out;
  out.reserve(640 + answer.text.size() + call.model.size());
  out += R"({"id":"chatcmpl-fake)";
  out += hex(call.hash);
  out += R"(","object":"chat.completion","created":)";
  out += std::to_string(kCreated);
  out += R"(,"model":)";
  llm_caching::detail::append_canonical_string(out, call.model);
  out += R"(,"system_fingerprint":"fp_fake","choices":[{"index":0,)"
         R"("message":{"role":"assistant","refusal":null,"content":)";
  llm_caching::detail::append_canonical_string(out, answer.text);
  out += R"(},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":)";
  out += std::to_string(t.prompt);
  out += R"(,"completion_tokens":)";
  out += std::to_string(t.completion);
  out += R"(,"total_tokens":)";
  out += std::to_string(t.prompt + t.completion);
  out += R"(,"prompt_tokens_details":{"cached_tokens":)";
  out += std::to_string(t.cache_read);
  out += R"(,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,)"
         R"("audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}})";
  return out;
}

}  // namespace

Reply error_reply(int status, const std::string& message) {
  const char* type = status == 429   ? "requests"
                     : status >= 500 ? "server_error"
                                     : "invalid_request_error";
  json::value code = nullptr;
  if (status == 401) code = "invalid_api_key";
  if (status == 404) code = "unknown_url";
  if (status == 429) code = "rate_limit_exceeded";
  return json_reply(
      status,
      {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}});
}

std::optional<Reply> check_auth(const Request& request) {
  const std::string auth = request.header("authorization");
  if (auth.size() > 7 && auth.starts_with("Bearer ")) return std::nullopt;
  return error_reply(401,
                     "You didn't provide an API key. You need to provide your API key in an "
                     "Authorization header using Bearer auth.");
}

std::optional<ForcedTool> forced_tool(const json::object& body) {
  const auto* choice = body.if_contains("tool_choice");
  if (!choice) return std::nullopt;
  if (choice->is_string() && choice->as_string() == "required") {
    return pick_tool(body.if_contains("tools"), "", "parameters", true);
  }
  if (const auto* name =
          choice->is_object() ? find_path(choice->as_object(), {"function", "name"}) : nullptr;
      name && name->is_string()) {
    return pick_tool(body.if_contains("tools"), std::string(name->as_string()), "parameters", true);
  }
  return std::nullopt;
}

const json::value* output_schema(const json::object& body) {
  const auto* type = find_path(body, {"response_format", "type"});
  if (!type || !type->is_string() || type->as_string() != "json_schema") return nullptr;
  return find_path(body, {"response_format", "json_schema", "schema"});
}

std::string body(const Call& call, const Answer& answer, const Tokens& tokens) {
  if (!answer.tool) return openai_text_body(call, answer, tokens);
  const json::object message{{"role", "assistant"},
                             {"refusal", nullptr},
                             {"content", nullptr},
                             {"tool_calls", json::array{openai_tool_call(call, answer, true)}}};
  json::object body = openai_envelope(call, "chat.completion");
  body["choices"] = json::array{
      {{"index", 0}, {"message", message}, {"logprobs", nullptr}, {"finish_reason", "tool_calls"}}};
  body["usage"] = openai_usage(tokens);
  return json::serialize(body);
}

std::vector<std::string> events(const Call& call, const Answer& answer, const Tokens& tokens) {
  std::vector<std::string> events;
  auto emit = [&](json::object delta, json::value finish) {
    json::object chunk = openai_envelope(call, "chat.completion.chunk");
    chunk["choices"] = json::array{{{"index", 0},
                                    {"delta", std::move(delta)},
                                    {"logprobs", nullptr},
                                    {"finish_reason", finish}}};
    if (call.wants_usage_chunk) chunk["usage"] = nullptr;
    events.push_back("data: " + json::serialize(chunk) + "\n\n");
  };
  if (answer.tool) {
    emit({{"role", "assistant"},
          {"content", nullptr},
          {"tool_calls", json::array{openai_tool_call(call, answer, false)}}},
         nullptr);
    for (const auto& piece : pieces(answer.tool_arguments)) {
      emit({{"tool_calls", json::array{{{"index", 0}, {"function", {{"arguments", piece}}}}}}},
           nullptr);
    }
  } else {
    emit({{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}}, nullptr);
    for (const auto& piece : pieces(answer.text)) emit({{"content", piece}}, nullptr);
  }
  emit({}, answer.tool ? "tool_calls" : "stop");
  if (call.wants_usage_chunk) {
    json::object chunk = openai_envelope(call, "chat.completion.chunk");
    chunk["choices"] = json::array();
    chunk["usage"] = openai_usage(tokens);
    events.push_back("data: " + json::serialize(chunk) + "\n\n");
  }
  events.emplace_back("data: [DONE]\n\n");
  return events;
}

}  // namespace llm_caching::fake::openai

// OpenAI Chat Completions (and the many servers that speak it).
#include "llm_caching/errors.hpp"
#include "providers/codec_detail.hpp"

#include <boost/json/serialize.hpp>

#include <map>

namespace llm_caching::providers::detail::openai {

namespace json = boost::json;

namespace {

constexpr Provider kProvider = Provider::openai;

json::value string_or_null(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

json::object choice_chunk(std::int64_t index, json::object delta, json::value finish_reason) {
  return json::object{{"index", index},
                      {"delta", std::move(delta)},
                      {"logprobs", nullptr},
                      {"finish_reason", std::move(finish_reason)}};
}

struct ToolCallParts {
  std::string id;
  std::string type = "function";
  std::string name;
  std::string arguments;
};

struct ChoiceParts {
  std::optional<std::string> content;
  std::optional<std::string> refusal;
  std::map<std::int64_t, ToolCallParts> tool_calls;
  json::value finish_reason = nullptr;
};

void merge_delta(ChoiceParts& choice, const json::object& delta) {
  if (const json::value* c = delta.if_contains("content"); c && c->is_string()) {
    choice.content = choice.content.value_or("") + std::string(c->get_string());
  }
  if (const json::value* r = delta.if_contains("refusal"); r && r->is_string()) {
    choice.refusal = choice.refusal.value_or("") + std::string(r->get_string());
  }
  const json::array* calls = find_array(delta, "tool_calls");
  if (!calls) return;
  for (const json::value& call_value : *calls) {
    const json::object* call = call_value.if_object();
    if (!call) continue;
    ToolCallParts& parts = choice.tool_calls[find_count(*call, "index")];
    if (auto id = find_string(*call, "id"); !id.empty()) parts.id = id;
    if (auto type = find_string(*call, "type"); !type.empty()) parts.type = type;
    if (const json::object* fn = find_object(*call, "function")) {
      if (auto name = find_string(*fn, "name"); !name.empty()) parts.name = name;
      parts.arguments += find_string(*fn, "arguments");
    }
  }
}

json::object assemble_choice(std::int64_t index, const ChoiceParts& parts) {
  json::object message{{"role", "assistant"},
                       {"content", string_or_null(parts.content)},
                       {"refusal", string_or_null(parts.refusal)}};
  if (!parts.tool_calls.empty()) {
    json::array calls;
    for (const auto& [_, call] : parts.tool_calls) {
      calls.push_back(json::object{
          {"id", call.id},
          {"type", call.type},
          {"function", json::object{{"name", call.name}, {"arguments", call.arguments}}}});
    }
    message["tool_calls"] = std::move(calls);
  }
  return json::object{{"index", index},
                      {"message", std::move(message)},
                      {"logprobs", nullptr},
                      {"finish_reason", parts.finish_reason}};
}

}  // namespace

json::object build_request(const ChatRequest& request) {
  json::object body;
  body["model"] = request.model;
  json::array messages;
  if (!request.system_prompt.empty()) {
    messages.push_back(json::object{{"role", "system"}, {"content", request.system_prompt}});
  }
  for (const ModelMessage& m : request.messages) {
    if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "developer") {
      throw_bad_role(kProvider, m.role);
    }
    messages.push_back(json::object{{"role", m.role}, {"content", m.content}});
  }
  body["messages"] = std::move(messages);
  const ModelSettings& s = request.settings;
  if (s.temperature) body["temperature"] = *s.temperature;
  if (s.top_p) body["top_p"] = *s.top_p;
  if (s.max_tokens) body["max_tokens"] = *s.max_tokens;
  if (s.seed) body["seed"] = *s.seed;
  if (!s.stop.empty()) body["stop"] = json::array(s.stop.begin(), s.stop.end());
  if (request.output_schema) {
    body["response_format"] =
        json::object{{"type", "json_schema"},
                     {"json_schema", json::object{{"name", request.output_schema_name},
                                                  {"schema", *request.output_schema},
                                                  {"strict", true}}}};
  }
  for (const auto& field : s.extra) body[field.key()] = field.value();
  return body;
}

Usage extract_usage(const json::object& response) {
  Usage usage;
  usage.requests = 1;
  const json::object* counts = find_object(response, "usage");
  if (!counts) return usage;
  const std::int64_t prompt = find_count(*counts, "prompt_tokens");
  std::int64_t cached = 0;
  if (const json::object* details = find_object(*counts, "prompt_tokens_details")) {
    cached = std::min(find_count(*details, "cached_tokens"), prompt);
  }
  if (cached == 0) {
    // DeepSeek reports its prompt cache as prompt_cache_hit_tokens (+ _miss_tokens), both
    // included in prompt_tokens, like OpenAI's cached_tokens.
    cached = std::min(find_count(*counts, "prompt_cache_hit_tokens"), prompt);
  }
  usage.input_tokens = prompt - cached;  // prompt_tokens includes the cached ones
  usage.cache_read_tokens = cached;
  usage.output_tokens = find_count(*counts, "completion_tokens");  // reasoning included
  return usage;
}

ChatResponse parse_response(std::string_view body, bool structured) {
  const json::object root = parse_object(kProvider, body);
  if (const json::value* error = root.if_contains("error"); error && !error->is_null()) {
    throw_error_object(kProvider, body);
  }
  const json::array* choices = find_array(root, "choices");
  if (!choices || choices->empty() || !choices->front().is_object()) {
    throw_invalid(kProvider, "no choices", body);
  }
  const json::object& choice = choices->front().get_object();
  const json::object* message = find_object(choice, "message");
  if (!message) throw_invalid(kProvider, "choice has no message", body);

  ChatResponse out;
  out.text = find_string(*message, "content");
  out.finish_reason = find_string(choice, "finish_reason");
  out.model = find_string(root, "model");
  out.id = find_string(root, "id");
  out.usage = extract_usage(root);
  if (const json::array* calls = find_array(*message, "tool_calls")) {
    for (const json::value& call : *calls) {
      if (call.is_object()) out.tool_calls.push_back(call.get_object());
    }
  }
  const std::string_view refusal = find_string(*message, "refusal");
  if (structured) {
    if (out.text.empty() && !refusal.empty()) {
      throw_invalid(kProvider, "the model refused: " + excerpt(refusal, 120), body, "refusal");
    }
    out.output_json = try_parse(out.text);
    if (!out.output_json) throw_invalid(kProvider, "structured output is not valid JSON", body);
  } else if (out.text.empty() && !refusal.empty()) {
    out.text = refusal;  // what the model said, rather than nothing
  }
  return out;
}

ProviderErrorInfo parse_error_body(std::string_view body) {
  ProviderErrorInfo info;
  const auto parsed = try_parse(body);
  if (!parsed || !parsed->is_object()) return info;
  const json::value* error = parsed->get_object().if_contains("error");
  if (!error) return info;
  if (error->is_string()) {  // some compatible servers: {"error": "model not found"}
    info.message = error->get_string();
    return info;
  }
  if (!error->is_object()) return info;
  const json::object& e = error->get_object();
  info.message = find_string(e, "message");
  info.type = find_string(e, "type");
  if (const json::value* code = e.if_contains("code"); code && !code->is_null()) {
    info.code = code->is_string() ? std::string(code->get_string()) : json::serialize(*code);
  }
  if (info.type.empty()) info.type = info.code;
  return info;
}

std::string response_to_sse(const json::object& response) {
  const json::array* choices = find_array(response, "choices");
  if (!choices) throw_invalid(kProvider, "no choices", json::serialize(response));
  json::object base{{"id", find_string(response, "id")},
                    {"object", "chat.completion.chunk"},
                    {"created", find_count(response, "created")},
                    {"model", find_string(response, "model")}};
  for (std::string_view key : {"system_fingerprint", "service_tier"}) {
    if (const json::value* v = response.if_contains(key)) base[key] = *v;
  }
  std::string out;
  auto emit = [&](json::array chunk_choices, const json::value* usage = nullptr) {
    json::object chunk = base;
    chunk["choices"] = std::move(chunk_choices);
    if (usage) chunk["usage"] = *usage;
    append_sse_event(out, json::serialize(chunk));
  };
  for (const json::value& choice_value : *choices) {
    const json::object* choice = choice_value.if_object();
    const json::object* message = choice ? find_object(*choice, "message") : nullptr;
    if (!message) throw_invalid(kProvider, "choice has no message", json::serialize(response));
    const std::int64_t index = find_count(*choice, "index");
    const json::value* content = message->if_contains("content");
    const bool has_text = content && content->is_string();
    emit({choice_chunk(index,
                       {{"role", "assistant"}, {"content", has_text ? json::value("") : nullptr}},
                       nullptr)});
    if (has_text && !content->get_string().empty()) {
      emit({choice_chunk(index, {{"content", *content}}, nullptr)});
    }
    if (const json::value* r = message->if_contains("refusal"); r && r->is_string()) {
      emit({choice_chunk(index, {{"refusal", *r}}, nullptr)});
    }
    if (const json::array* calls = find_array(*message, "tool_calls")) {
      for (std::size_t i = 0; i < calls->size(); ++i) {
        if (!(*calls)[i].is_object()) continue;
        json::object call = (*calls)[i].get_object();
        call["index"] = static_cast<std::int64_t>(i);
        emit({choice_chunk(index, {{"tool_calls", json::array{call}}}, nullptr)});
      }
    }
    const json::value* finish = choice->if_contains("finish_reason");
    emit({choice_chunk(index, {}, finish ? *finish : json::value(nullptr))});
  }
  if (const json::value* usage = response.if_contains("usage"); usage && usage->is_object()) {
    emit(json::array{}, usage);  // what stream_options.include_usage sends last
  }
  append_sse_event(out, "[DONE]");
  return out;
}

std::string sse_to_response(std::string_view sse_body) {
  std::map<std::int64_t, ChoiceParts> choices;
  json::object head;
  json::value usage = nullptr;
  bool done = false;
  for (const SseEvent& event : read_sse(kProvider, sse_body)) {
    if (done) break;
    if (event.data == "[DONE]") {
      done = true;
      continue;
    }
    auto parsed = try_parse(event.data);
    if (!parsed || !parsed->is_object())
      throw_invalid(kProvider, "stream event is not JSON", event.data);
    const json::object& chunk = parsed->get_object();
    if (const json::value* error = chunk.if_contains("error"); error && !error->is_null()) {
      throw_error_object(kProvider, event.data);
    }
    if (head.empty()) {
      for (std::string_view key :
           {"id", "created", "model", "system_fingerprint", "service_tier"}) {
        if (const json::value* v = chunk.if_contains(key)) head[key] = *v;
      }
    }
    if (const json::array* deltas = find_array(chunk, "choices")) {
      for (const json::value& c : *deltas) {
        if (!c.is_object()) continue;
        ChoiceParts& parts = choices[find_count(c.get_object(), "index")];
        if (const json::object* delta = find_object(c.get_object(), "delta"))
          merge_delta(parts, *delta);
        if (const json::value* f = c.get_object().if_contains("finish_reason");
            f && f->is_string()) {
          parts.finish_reason = *f;
        }
      }
    }
    if (const json::value* u = chunk.if_contains("usage"); u && u->is_object()) usage = *u;
  }
  if (!done)
    throw_invalid(kProvider, "stream ended before data: [DONE]",
                  sse_body.substr(sse_body.size() > 200 ? sse_body.size() - 200 : 0));
  if (choices.empty()) throw_invalid(kProvider, "stream had no choices", sse_body);
  json::object response{{"id", head.contains("id") ? head["id"] : json::value("")},
                        {"object", "chat.completion"},
                        {"created", head.contains("created") ? head["created"] : json::value(0)},
                        {"model", head.contains("model") ? head["model"] : json::value("")}};
  json::array assembled;
  for (const auto& [index, parts] : choices) assembled.push_back(assemble_choice(index, parts));
  response["choices"] = std::move(assembled);
  if (!usage.is_null()) response["usage"] = usage;
  for (std::string_view key : {"system_fingerprint", "service_tier"}) {
    if (const json::value* v = head.if_contains(key)) response[key] = *v;
  }
  return json::serialize(response);
}

}  // namespace llm_caching::providers::detail::openai

// Anthropic Messages API.
#include "llm_caching/errors.hpp"
#include "providers/codec_detail.hpp"

#include <boost/json/serialize.hpp>

#include <map>

namespace llm_caching::providers::detail::anthropic {

namespace json = boost::json;

namespace {

constexpr Provider kProvider = Provider::anthropic;

std::string tail_excerpt(std::string_view body) {
  return std::string(body.substr(body.size() > 200 ? body.size() - 200 : 0));
}

// The block as content_block_start announces it: the streamed fields start empty.
json::object block_start(const json::object& block) {
  json::object start = block;
  const std::string_view type = find_string(block, "type");
  if (type == "text") {
    start["text"] = "";
    start.erase("citations");
  } else if (type == "tool_use") {
    start["input"] = json::object{};
  } else if (type == "thinking") {
    start["thinking"] = "";
    start["signature"] = "";
  }
  return start;
}

// The deltas that rebuild `block` from block_start(block).
json::array block_deltas(const json::object& block) {
  const std::string_view type = find_string(block, "type");
  json::array deltas;
  if (type == "text") {
    if (const json::array* citations = find_array(block, "citations")) {
      for (const json::value& c : *citations) {
        deltas.push_back(json::object{{"type", "citations_delta"}, {"citation", c}});
      }
    }
    deltas.push_back(json::object{{"type", "text_delta"}, {"text", find_string(block, "text")}});
  } else if (type == "tool_use") {
    const json::value* input = block.if_contains("input");
    deltas.push_back(
        json::object{{"type", "input_json_delta"},
                     {"partial_json", input ? json::serialize(*input) : std::string("{}")}});
  } else if (type == "thinking") {
    deltas.push_back(
        json::object{{"type", "thinking_delta"}, {"thinking", find_string(block, "thinking")}});
    deltas.push_back(
        json::object{{"type", "signature_delta"}, {"signature", find_string(block, "signature")}});
  }
  return deltas;
}

struct BlockParts {
  json::object block;
  std::string partial_json;
  bool is_tool_use = false;
};

void apply_block_delta(BlockParts& parts, const json::object& delta, std::string_view event_data) {
  const std::string_view type = find_string(delta, "type");
  json::object& block = parts.block;
  auto append = [&](std::string_view field, std::string_view piece) {
    std::string text(find_string(block, field));
    text.append(piece);
    block[field] = text;
  };
  if (type == "text_delta") {
    append("text", find_string(delta, "text"));
  } else if (type == "input_json_delta") {
    parts.partial_json.append(find_string(delta, "partial_json"));
  } else if (type == "thinking_delta") {
    append("thinking", find_string(delta, "thinking"));
  } else if (type == "signature_delta") {
    append("signature", find_string(delta, "signature"));
  } else if (type == "citations_delta") {
    json::value& citations = block["citations"];
    if (!citations.is_array()) citations = json::array{};
    if (const json::value* c = delta.if_contains("citation")) citations.get_array().push_back(*c);
  } else if (type.empty()) {
    throw_invalid(kProvider, "content_block_delta without a delta type", event_data);
  }
}

void finish_block(BlockParts& parts, std::string_view event_data) {
  if (!parts.is_tool_use) return;
  if (parts.partial_json.empty()) return;  // no input deltas: input stays as announced
  auto input = try_parse(parts.partial_json);
  if (!input)
    throw_invalid(kProvider, "tool_use input in the stream is not valid JSON", event_data);
  parts.block["input"] = std::move(*input);
  parts.partial_json.clear();
}

}  // namespace

json::object build_request(const ChatRequest& request) {
  json::object body;
  body["model"] = request.model;
  std::string system = request.system_prompt;
  json::array messages;
  for (const ModelMessage& m : request.messages) {
    if (m.role == "system") {  // Anthropic has no system role inside messages
      if (!system.empty()) system.append("\n\n");
      system.append(m.content);
    } else if (m.role == "user" || m.role == "assistant") {
      messages.push_back(json::object{{"role", m.role}, {"content", m.content}});
    } else {
      throw_bad_role(kProvider, m.role);
    }
  }
  if (!system.empty()) body["system"] = system;
  body["messages"] = std::move(messages);
  const ModelSettings& s = request.settings;
  body["max_tokens"] = s.max_tokens.value_or(kAnthropicDefaultMaxTokens);
  if (s.temperature) body["temperature"] = *s.temperature;
  if (s.top_p) body["top_p"] = *s.top_p;
  if (!s.stop.empty()) body["stop_sequences"] = json::array(s.stop.begin(), s.stop.end());
  if (request.output_schema) {
    body["tools"] = json::array{json::object{{"name", request.output_schema_name},
                                             {"input_schema", *request.output_schema}}};
    body["tool_choice"] = json::object{{"type", "tool"}, {"name", request.output_schema_name}};
  }
  for (const auto& field : s.extra) body[field.key()] = field.value();
  return body;
}

Usage extract_usage(const json::object& response) {
  Usage usage;
  usage.requests = 1;
  const json::object* counts = find_object(response, "usage");
  if (!counts) return usage;
  usage.input_tokens = find_count(*counts, "input_tokens");  // excludes cache writes and reads
  usage.cache_write_tokens = find_count(*counts, "cache_creation_input_tokens");
  usage.cache_read_tokens = find_count(*counts, "cache_read_input_tokens");
  usage.output_tokens = find_count(*counts, "output_tokens");
  // The writes' split by lifetime: {"ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"}.
  if (const json::object* writes = find_object(*counts, "cache_creation")) {
    usage.cache_write_1h_tokens =
        std::min(find_count(*writes, "ephemeral_1h_input_tokens"), usage.cache_write_tokens);
  }
  return usage;
}

ChatResponse parse_response(std::string_view body, bool structured) {
  const json::object root = parse_object(kProvider, body);
  if (find_string(root, "type") == "error" || root.contains("error")) {
    throw_error_object(kProvider, body);
  }
  const json::array* content = find_array(root, "content");
  if (!content) throw_invalid(kProvider, "no content", body);

  ChatResponse out;
  out.finish_reason = find_string(root, "stop_reason");
  out.model = find_string(root, "model");
  out.id = find_string(root, "id");
  out.usage = extract_usage(root);
  const json::object* forced_tool = nullptr;
  for (const json::value& block_value : *content) {
    const json::object* block = block_value.if_object();
    if (!block) continue;
    const std::string_view type = find_string(*block, "type");
    if (type == "text") {
      out.text.append(find_string(*block, "text"));
    } else if (type == "tool_use") {
      out.tool_calls.push_back(*block);
      if (!forced_tool) forced_tool = block;
    }
  }
  if (structured) {
    const json::value* input = forced_tool ? forced_tool->if_contains("input") : nullptr;
    if (!input) throw_invalid(kProvider, "structured output: no tool_use block with input", body);
    out.output_json = *input;
    out.text = json::serialize(*input);
  }
  return out;
}

ProviderErrorInfo parse_error_body(std::string_view body) {
  ProviderErrorInfo info;
  const auto parsed = try_parse(body);
  if (!parsed || !parsed->is_object()) return info;
  const json::object* error = find_object(parsed->get_object(), "error");
  if (!error) return info;
  info.type = find_string(*error, "type");
  info.message = find_string(*error, "message");
  return info;
}

std::string response_to_sse(const json::object& response) {
  const json::array* content = find_array(response, "content");
  if (!content) throw_invalid(kProvider, "no content", json::serialize(response));
  std::string out;
  auto emit = [&out](std::string_view type, const json::object& fields) {
    json::object event{{"type", type}};  // first, as the API sends it
    for (const auto& field : fields) event[field.key()] = field.value();
    append_sse_event(out, json::serialize(event), type);
  };
  json::object start = response;
  start["content"] = json::array{};
  start["stop_reason"] = nullptr;
  start["stop_sequence"] = nullptr;
  if (json::value* usage = start.if_contains("usage"); usage && usage->is_object()) {
    // Output is counted as it is generated; message_delta carries the final count.
    usage->get_object()["output_tokens"] =
        std::min<std::int64_t>(1, find_count(usage->get_object(), "output_tokens"));
  }
  emit("message_start", {{"message", std::move(start)}});
  emit("ping", {});
  for (std::size_t i = 0; i < content->size(); ++i) {
    const json::object* block = (*content)[i].if_object();
    if (!block) continue;
    const auto index = static_cast<std::int64_t>(i);
    emit("content_block_start", {{"index", index}, {"content_block", block_start(*block)}});
    for (json::value& delta : block_deltas(*block)) {
      emit("content_block_delta", {{"index", index}, {"delta", std::move(delta)}});
    }
    emit("content_block_stop", {{"index", index}});
  }
  json::object delta{
      {"stop_reason",
       response.contains("stop_reason") ? response.at("stop_reason") : json::value(nullptr)},
      {"stop_sequence",
       response.contains("stop_sequence") ? response.at("stop_sequence") : json::value(nullptr)}};
  json::object usage;
  if (const json::object* counts = find_object(response, "usage")) usage = *counts;
  emit("message_delta", {{"delta", std::move(delta)}, {"usage", std::move(usage)}});
  emit("message_stop", {});
  return out;
}

std::string sse_to_response(std::string_view sse_body) {
  std::optional<json::object> message;
  std::map<std::int64_t, BlockParts> blocks;
  bool stopped = false;
  for (const SseEvent& event : read_sse(kProvider, sse_body)) {
    auto parsed = try_parse(event.data);
    if (!parsed || !parsed->is_object()) {
      throw_invalid(kProvider, "stream event is not JSON", event.data);
    }
    const json::object& e = parsed->get_object();
    const std::string_view type = find_string(e, "type");
    if (type == "error" || event.event == "error") throw_error_object(kProvider, event.data);
    if (type == "message_start") {
      const json::object* m = find_object(e, "message");
      if (!m) throw_invalid(kProvider, "message_start without a message", event.data);
      message = *m;
      continue;
    }
    if (type == "ping" || type.empty()) continue;
    if (!message) throw_invalid(kProvider, std::string(type) + " before message_start", event.data);
    const std::int64_t index = find_count(e, "index");
    if (type == "content_block_start") {
      const json::object* block = find_object(e, "content_block");
      if (!block) throw_invalid(kProvider, "content_block_start without a block", event.data);
      blocks[index] = BlockParts{*block, {}, find_string(*block, "type") == "tool_use"};
    } else if (type == "content_block_delta" || type == "content_block_stop") {
      auto it = blocks.find(index);
      if (it == blocks.end())
        throw_invalid(kProvider, "delta for a block never started", event.data);
      if (type == "content_block_stop") {
        finish_block(it->second, event.data);
      } else if (const json::object* delta = find_object(e, "delta")) {
        apply_block_delta(it->second, *delta, event.data);
      }
    } else if (type == "message_delta") {
      if (const json::object* delta = find_object(e, "delta")) {
        for (const auto& field : *delta) (*message)[field.key()] = field.value();
      }
      if (const json::object* usage = find_object(e, "usage")) {
        json::value& target = (*message)["usage"];
        if (!target.is_object()) target = json::object{};
        for (const auto& field : *usage) target.get_object()[field.key()] = field.value();
      }
    } else if (type == "message_stop") {
      stopped = true;
      break;
    }
  }
  if (!message || !stopped) {
    throw_invalid(kProvider, "stream ended before message_stop", tail_excerpt(sse_body));
  }
  json::array content;
  for (auto& [_, parts] : blocks) {
    finish_block(parts, tail_excerpt(sse_body));  // a block whose content_block_stop was lost
    content.push_back(std::move(parts.block));
  }
  (*message)["content"] = std::move(content);
  return json::serialize(*message);
}

}  // namespace llm_caching::providers::detail::anthropic

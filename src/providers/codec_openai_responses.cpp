// OpenAI's Responses API (POST /v1/responses): its usage, and its typed SSE stream both ways.
//
// A stream is a sequence of `event: <type>` / `data: {"type": <type>, "sequence_number": n, ...}`
// events without a `[DONE]` line; it ends with response.completed or response.incomplete, whose
// `response` is the complete answer (what a plain call returns), or response.failed / error.
// So a stream assembles into the terminal event's response, unchanged, and a complete answer
// becomes the events a real stream of it would carry: created, in_progress, each output item
// added / its parts and deltas / done, then completed.
#include "llm_caching/errors.hpp"
#include "providers/codec_detail.hpp"

#include <boost/json/serialize.hpp>

namespace llm_caching::providers::detail::openai_responses {

namespace json = boost::json;

namespace {

constexpr Provider kProvider = Provider::openai;

/// Throws for a body that is not an answer: an error object, a failed response, no output list.
void check_answer(const json::object& root, std::string_view body) {
  const std::string_view status = find_string(root, "status");
  const json::value* error = root.if_contains("error");
  if ((error && !error->is_null() && status != "completed" && status != "incomplete") ||
      status == "failed") {
    if (const json::object* e = error ? error->if_object() : nullptr) {
      const std::string_view code = find_string(*e, "code");
      throw ProviderError("openai returned an error: " + excerpt(find_string(*e, "message")), 200,
                          code.empty() ? std::string("response_failed") : std::string(code),
                          excerpt(body));
    }
    throw_invalid(kProvider, "the response failed", body, "response_failed");
  }
  if (!find_array(root, "output")) throw_invalid(kProvider, "no output list", body);
}

/// The streaming answer's events are numbered in order, from 0.
class EventWriter {
 public:
  void emit(std::string_view type, json::object fields) {
    json::object event{{"type", type}, {"sequence_number", next_++}};
    for (auto& field : fields) event[field.key()] = std::move(field.value());
    append_sse_event(out_, json::serialize(event), type);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  std::int64_t next_ = 0;
};

/// The item as it starts: in progress, with no content (a message) or no arguments yet.
json::object item_started(const json::object& item) {
  json::object started = item;
  if (started.contains("status")) started["status"] = "in_progress";
  if (const json::value* content = started.if_contains("content"); content && content->is_array()) {
    started["content"] = json::array{};
  }
  if (started.contains("arguments")) started["arguments"] = "";
  return started;
}

/// A part of a message as it starts: its text (or refusal) empty.
json::object part_started(const json::object& part) {
  json::object started = part;
  if (started.contains("text")) started["text"] = "";
  if (started.contains("refusal")) started["refusal"] = "";
  return started;
}

void emit_message_parts(EventWriter& events, const json::object& item, std::int64_t output_index) {
  const json::array* content = find_array(item, "content");
  if (!content) return;
  const json::value item_id = item.contains("id") ? item.at("id") : json::value("");
  for (std::size_t i = 0; i < content->size(); ++i) {
    const json::object* part = (*content)[i].if_object();
    if (!part) continue;
    const auto index = static_cast<std::int64_t>(i);
    json::object where{
        {"item_id", item_id}, {"output_index", output_index}, {"content_index", index}};
    auto with = [&where](json::object more) {
      json::object fields = where;
      for (auto& field : more) fields[field.key()] = std::move(field.value());
      return fields;
    };
    events.emit("response.content_part.added", with({{"part", part_started(*part)}}));
    const std::string_view type = find_string(*part, "type");
    if (type == "output_text") {
      const json::value text = part->contains("text") ? part->at("text") : json::value("");
      events.emit("response.output_text.delta",
                  with({{"delta", text}, {"logprobs", json::array{}}}));
      events.emit("response.output_text.done", with({{"text", text}, {"logprobs", json::array{}}}));
    } else if (type == "refusal") {
      const json::value refusal = part->contains("refusal") ? part->at("refusal") : json::value("");
      events.emit("response.refusal.delta", with({{"delta", refusal}}));
      events.emit("response.refusal.done", with({{"refusal", refusal}}));
    }
    events.emit("response.content_part.done", with({{"part", *part}}));
  }
}

void emit_item(EventWriter& events, const json::object& item, std::int64_t output_index) {
  events.emit("response.output_item.added",
              {{"output_index", output_index}, {"item", item_started(item)}});
  const std::string_view type = find_string(item, "type");
  if (type == "message") {
    emit_message_parts(events, item, output_index);
  } else if (type == "function_call") {
    const json::value item_id = item.contains("id") ? item.at("id") : json::value("");
    const json::value arguments =
        item.contains("arguments") ? item.at("arguments") : json::value("");
    events.emit("response.function_call_arguments.delta",
                {{"item_id", item_id}, {"output_index", output_index}, {"delta", arguments}});
    events.emit("response.function_call_arguments.done",
                {{"item_id", item_id}, {"output_index", output_index}, {"arguments", arguments}});
  }
  events.emit("response.output_item.done", {{"output_index", output_index}, {"item", item}});
}

}  // namespace

Usage parse_usage(std::string_view body) {
  const json::object root = parse_object(kProvider, body);
  check_answer(root, body);
  Usage usage;
  usage.requests = 1;
  const json::object* counts = find_object(root, "usage");
  if (!counts) return usage;
  const std::int64_t input = find_count(*counts, "input_tokens");
  std::int64_t cached = 0;
  if (const json::object* details = find_object(*counts, "input_tokens_details")) {
    cached = std::min(find_count(*details, "cached_tokens"), input);
  }
  usage.input_tokens = input - cached;  // input_tokens includes the cached ones
  usage.cache_read_tokens = cached;
  // output_tokens includes output_tokens_details.reasoning_tokens, billed at the output rate.
  usage.output_tokens = find_count(*counts, "output_tokens");
  return usage;
}

std::string response_to_sse(const json::object& response) {
  const json::array* output = find_array(response, "output");
  if (!output) throw_invalid(kProvider, "no output list", json::serialize(response));
  EventWriter events;
  json::object started = response;
  started["status"] = "in_progress";
  started["output"] = json::array{};
  if (started.contains("usage")) started["usage"] = nullptr;
  events.emit("response.created", {{"response", started}});
  events.emit("response.in_progress", {{"response", started}});
  for (std::size_t i = 0; i < output->size(); ++i) {
    if (const json::object* item = (*output)[i].if_object()) {
      emit_item(events, *item, static_cast<std::int64_t>(i));
    }
  }
  const bool incomplete = find_string(response, "status") == "incomplete";
  events.emit(incomplete ? "response.incomplete" : "response.completed", {{"response", response}});
  return events.take();
}

std::string sse_to_response(std::string_view sse_body) {
  for (const SseEvent& event : read_sse(kProvider, sse_body)) {
    auto parsed = try_parse(event.data);
    if (!parsed || !parsed->is_object()) {
      throw_invalid(kProvider, "stream event is not JSON", event.data);
    }
    const json::object& data = parsed->get_object();
    const std::string_view type = find_string(data, "type");
    if (type == "error") {
      const std::string_view code = find_string(data, "code");
      throw ProviderError("openai stream error: " + excerpt(find_string(data, "message")), 200,
                          code.empty() ? std::string("stream_error") : std::string(code),
                          excerpt(event.data));
    }
    if (type != "response.completed" && type != "response.incomplete" &&
        type != "response.failed") {
      continue;
    }
    const json::object* response = find_object(data, "response");
    if (!response) throw_invalid(kProvider, "terminal event without a response", event.data);
    const std::string text = json::serialize(*response);
    check_answer(*response, text);  // response.failed throws here
    return text;
  }
  throw_invalid(kProvider, "stream ended before response.completed",
                sse_body.substr(sse_body.size() > 200 ? sse_body.size() - 200 : 0));
}

}  // namespace llm_caching::providers::detail::openai_responses

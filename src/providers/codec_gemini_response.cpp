// Gemini's answer: the response parsed, and turned into a stream of SSE events and back.
#include "providers/codec_detail.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <map>

namespace llm_caching::providers::detail::gemini {

namespace json = boost::json;

namespace {

constexpr Provider kProvider = Provider::gemini;

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

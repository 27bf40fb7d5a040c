// The further APIs the gateway caches (Api in cache_key.hpp): their paths, their usage and their
// streams, dispatched by API; Api::chat goes to the chat codecs (codec.cpp). OpenAI's legacy
// completions are here too: chat completions' usage, with the answer's text in choices[].text.
#include "core/text.hpp"
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"
#include "providers/codec_detail.hpp"

#include <boost/json/serialize.hpp>

#include <map>

namespace llm_caching::providers {

namespace json = boost::json;

namespace {

using detail::find_array;
using detail::find_count;
using detail::find_string;

[[noreturn]] void throw_no_such_api(Provider provider, Api api) {
  throw ConfigurationError(std::string(to_string(provider)) + " has no " +
                           std::string(to_string(api)) + " API");
}

/// Throws the provider's error for a 200 body that is an error object.
void check_not_error(Provider provider, const json::object& root, std::string_view body) {
  const json::value* error = root.if_contains("error");
  const bool anthropic_error =
      provider == Provider::anthropic && find_string(root, "type") == "error";
  if ((error && !error->is_null()) || anthropic_error) detail::throw_error_object(provider, body);
}

/// The usage of an answer that costs nothing (a token count, a moderation), after checking that
/// the body is one: `member` must be there.
Usage free_usage(Provider provider, std::string_view body, std::string_view member) {
  const json::object root = detail::parse_object(provider, body);
  check_not_error(provider, root, body);
  if (!root.contains(member)) {
    detail::throw_invalid(provider, "no \"" + std::string(member) + "\" in the answer", body);
  }
  Usage usage;
  usage.requests = 1;
  return usage;
}

/// An embeddings answer ({"data": [...], "usage": {"prompt_tokens"}}): input tokens only.
Usage embeddings_usage(Provider provider, std::string_view body) {
  const json::object root = detail::parse_object(provider, body);
  check_not_error(provider, root, body);
  // Gemini's batchEmbedContents answers {"embeddings": [...]} and reports no tokens.
  const std::string_view list = provider == Provider::gemini ? "embeddings" : "data";
  if (!find_array(root, list)) {
    detail::throw_invalid(provider, "no \"" + std::string(list) + "\" list", body);
  }
  Usage usage;
  usage.requests = 1;
  if (const json::object* counts = detail::find_object(root, "usage")) {
    usage.input_tokens = find_count(*counts, "prompt_tokens");
  }
  return usage;
}

namespace completions {

constexpr Provider kProvider = Provider::openai;

Usage parse_usage(std::string_view body) {
  const json::object root = detail::parse_object(kProvider, body);
  check_not_error(kProvider, root, body);
  const json::array* choices = find_array(root, "choices");
  if (!choices || choices->empty() || !choices->front().is_object()) {
    detail::throw_invalid(kProvider, "no choices", body);
  }
  return detail::openai::extract_usage(root);  // the same usage block as chat completions
}

json::object chunk_of(const json::object& head, json::array choices) {
  json::object chunk = head;
  chunk["choices"] = std::move(choices);
  return chunk;
}

json::object choice_of(const json::value& index, const json::value& text,
                       const json::value& finish) {
  return json::object{
      {"text", text}, {"index", index}, {"logprobs", nullptr}, {"finish_reason", finish}};
}

std::string response_to_sse(const json::object& response) {
  const json::array* choices = find_array(response, "choices");
  if (!choices) detail::throw_invalid(kProvider, "no choices", json::serialize(response));
  json::object head = response;
  head.erase("choices");
  head.erase("usage");
  std::string out;
  for (const json::value& value : *choices) {
    const json::object* choice = value.if_object();
    if (!choice) continue;
    const json::value index = choice->contains("index") ? choice->at("index") : json::value(0);
    const json::value text = choice->contains("text") ? choice->at("text") : json::value("");
    const json::value finish =
        choice->contains("finish_reason") ? choice->at("finish_reason") : json::value(nullptr);
    append_sse_event(out, json::serialize(chunk_of(head, {choice_of(index, text, nullptr)})));
    append_sse_event(out, json::serialize(chunk_of(head, {choice_of(index, "", finish)})));
  }
  if (const json::value* usage = response.if_contains("usage"); usage && usage->is_object()) {
    json::object last = chunk_of(head, json::array{});
    last["usage"] = *usage;  // what stream_options.include_usage sends last
    append_sse_event(out, json::serialize(last));
  }
  append_sse_event(out, "[DONE]");
  return out;
}

std::string sse_to_response(std::string_view sse_body) {
  struct Parts {
    std::string text;
    json::value finish = nullptr;
  };
  std::map<std::int64_t, Parts> choices;
  json::object head;
  json::value usage = nullptr;
  bool done = false;
  for (const SseEvent& event : detail::read_sse(kProvider, sse_body)) {
    if (event.data == "[DONE]") {
      done = true;
      break;
    }
    auto parsed = detail::try_parse(event.data);
    if (!parsed || !parsed->is_object()) {
      detail::throw_invalid(kProvider, "stream event is not JSON", event.data);
    }
    const json::object& chunk = parsed->get_object();
    check_not_error(kProvider, chunk, event.data);
    if (head.empty()) {
      for (std::string_view key : {"id", "object", "created", "model", "system_fingerprint"}) {
        if (const json::value* v = chunk.if_contains(key)) head[key] = *v;
      }
    }
    if (const json::array* deltas = find_array(chunk, "choices")) {
      for (const json::value& c : *deltas) {
        if (!c.is_object()) continue;
        Parts& parts = choices[find_count(c.get_object(), "index")];
        parts.text += find_string(c.get_object(), "text");
        const json::value* f = c.get_object().if_contains("finish_reason");
        if (f && f->is_string()) parts.finish = *f;
      }
    }
    if (const json::value* u = chunk.if_contains("usage"); u && u->is_object()) usage = *u;
  }
  if (!done) detail::throw_invalid(kProvider, "stream ended before data: [DONE]", sse_body);
  if (choices.empty()) detail::throw_invalid(kProvider, "stream had no choices", sse_body);
  json::object response = head;
  json::array assembled;
  for (const auto& [index, parts] : choices) {
    assembled.push_back(choice_of(index, json::value(parts.text), parts.finish));
  }
  response["choices"] = std::move(assembled);
  if (!usage.is_null()) response["usage"] = usage;
  return json::serialize(response);
}

}  // namespace completions

}  // namespace

std::string request_path(Provider provider, Api api, std::string_view model, bool stream) {
  if (api == Api::chat) return request_path(provider, model, stream);
  switch (provider) {
    case Provider::openai:
      if (api == Api::responses) return "/v1/responses";
      if (api == Api::completions) return "/v1/completions";
      if (api == Api::moderations) return "/v1/moderations";
      if (api == Api::embeddings) return "/v1/embeddings";
      break;
    case Provider::anthropic:
      if (api == Api::count_tokens) return "/v1/messages/count_tokens";
      break;
    case Provider::gemini:
      if (api == Api::embeddings) {  // one request for any number of inputs (route_embeddings)
        if (model.substr(0, 7) == "models/") model.remove_prefix(7);
        std::string path = "/v1beta/models/";
        core::append_percent_encoded(path, model);
        return path + ":batchEmbedContents";
      }
      if (api == Api::count_tokens) {
        if (model.substr(0, 7) == "models/") model.remove_prefix(7);
        std::string path = "/v1beta/models/";
        core::append_percent_encoded(path, model);
        return path + ":countTokens";
      }
      break;
  }
  throw_no_such_api(provider, api);
}

bool api_streams(Api api) noexcept {
  return api == Api::chat || api == Api::responses || api == Api::completions;
}

Usage parse_usage(Provider provider, Api api, std::string_view body) {
  switch (api) {
    case Api::chat:
      return parse_usage(provider, body);
    case Api::responses:
      return detail::openai_responses::parse_usage(body);
    case Api::completions:
      return completions::parse_usage(body);
    case Api::count_tokens:
      return free_usage(provider, body,
                        provider == Provider::gemini ? "totalTokens" : "input_tokens");
    case Api::moderations:
      return free_usage(provider, body, "results");
    case Api::embeddings:
      return embeddings_usage(provider, body);
  }
  throw_no_such_api(provider, api);
}

std::string response_to_sse(Provider provider, Api api, std::string_view complete_response_json) {
  if (api == Api::chat) return response_to_sse(provider, complete_response_json);
  const json::object response = detail::parse_object(provider, complete_response_json);
  if (api == Api::responses) return detail::openai_responses::response_to_sse(response);
  if (api == Api::completions) return completions::response_to_sse(response);
  throw_no_such_api(provider, api);
}

std::string sse_to_response(Provider provider, Api api, std::string_view sse_body) {
  if (api == Api::chat) return sse_to_response(provider, sse_body);
  if (api == Api::responses) return detail::openai_responses::sse_to_response(sse_body);
  if (api == Api::completions) return completions::sse_to_response(sse_body);
  throw_no_such_api(provider, api);
}

}  // namespace llm_caching::providers

// The fake provider's small calls (see README.md): OpenAI legacy completions (plain and
// streamed) and moderations, Anthropic messages/count_tokens, Gemini countTokens.
#include "fake_call.hpp"

#include <boost/json.hpp>

namespace llm_caching::fake::small {
namespace {

json::object completion_head(const Call& call) {
  return {{"id", "cmpl-fake" + hex(call.hash)},
          {"object", "text_completion"},
          {"created", kCreated},
          {"model", call.model}};
}

json::object completion_usage(const Tokens& t) {
  return {{"prompt_tokens", t.prompt},
          {"completion_tokens", t.completion},
          {"total_tokens", t.prompt + t.completion}};
}

json::object completion_choice(std::string_view text, json::value finish) {
  return {{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
}

/// The inputs of a moderation request: a string, or an array of strings or parts.
std::size_t moderation_inputs(const json::object& body) {
  const json::value* input = body.if_contains("input");
  if (input && input->is_array()) return std::max<std::size_t>(1, input->as_array().size());
  return 1;
}

}  // namespace

std::string completion_body(const Call& call, const Answer& answer, const Tokens& tokens) {
  json::object body = completion_head(call);
  body["choices"] = json::array{completion_choice(answer.text, "stop")};
  body["usage"] = completion_usage(tokens);
  return json::serialize(body);
}

std::vector<std::string> completion_events(const Call& call, const Answer& answer,
                                           const Tokens& tokens) {
  std::vector<std::string> events;
  auto emit = [&](json::array choices, bool with_usage) {
    json::object chunk = completion_head(call);
    chunk["choices"] = std::move(choices);
    if (with_usage) chunk["usage"] = completion_usage(tokens);
    events.push_back("data: " + json::serialize(chunk) + "\n\n");
  };
  for (const auto& piece : pieces(answer.text)) {
    emit({completion_choice(piece, nullptr)}, false);
  }
  emit({completion_choice("", "stop")}, false);
  if (call.wants_usage_chunk) emit(json::array{}, true);
  events.emplace_back("data: [DONE]\n\n");
  return events;
}

std::string moderation_body(const Call& call) {
  json::array results;
  const bool flagged = call.request->body.find("flag-me") != std::string::npos;
  for (std::size_t i = moderation_inputs(call.body); i > 0; --i) {
    results.push_back({{"flagged", flagged},
                       {"categories", {{"harassment", false}, {"violence", flagged}}},
                       {"category_scores", {{"harassment", 0}, {"violence", flagged ? 1 : 0}}}});
  }
  return json::serialize(json::object{
      {"id", "modr-fake" + hex(call.hash)}, {"model", call.model}, {"results", results}});
}

std::string count_tokens_body(const Call& call, const Tokens& tokens) {
  if (call.api == Api::gemini) {
    return json::serialize(
        json::object{{"totalTokens", tokens.prompt},
                     {"promptTokensDetails",
                      json::array{{{"modality", "TEXT"}, {"tokenCount", tokens.prompt}}}}});
  }
  return json::serialize(json::object{{"input_tokens", tokens.prompt}});
}

/// The body of a plain answer, or the events of a streamed one, of a call that is not a chat.
void answer(const Call& call, const Answer& answer, const Tokens& tokens, Reply& reply) {
  switch (call.endpoint) {
    case Endpoint::responses:
      if (call.streaming) reply.events = responses::events(call, answer, tokens);
      if (!call.streaming) reply.body = responses::body(call, answer, tokens);
      break;
    case Endpoint::completions:
      if (call.streaming) reply.events = completion_events(call, answer, tokens);
      if (!call.streaming) reply.body = completion_body(call, answer, tokens);
      break;
    case Endpoint::moderations:
      reply.body = moderation_body(call);
      break;
    case Endpoint::count_tokens:
      reply.body = count_tokens_body(call, tokens);
      break;
    case Endpoint::chat:
      break;
  }
}

}  // namespace llm_caching::fake::small

// What the fake provider's parts share: the request's view as one call (Call), the answer it
// gets (Answer, Tokens), the helpers that build them (fake_call.cpp), and each wire format's
// entry points (fake_openai.cpp, fake_anthropic.cpp, fake_gemini.cpp). fake_logic.cpp routes a
// request and applies the behaviours.
#pragma once

#include "fake_logic.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llm_caching::fake {

namespace json = boost::json;

enum class Api { openai, anthropic, gemini };
/// Which call of the API: its chat call (chat completions, messages, generateContent) or one of
/// the others (fake_responses.cpp, fake_small.cpp).
enum class Endpoint { chat, responses, completions, moderations, count_tokens };

/// `created` of every answer, and of the listed models.
inline constexpr std::int64_t kCreated = 1700000000;

struct Behaviors {
  std::vector<std::string> tokens;
  std::chrono::milliseconds delay{0};
  std::string failure;      // "429", "429ms", "gemini-exhausted", "500", "529", "invalid-json", ...
  int count = 0;            // K of the counted failures
  bool tool_first = false;  // "tool-first": call the first tool until a tool result is sent
  std::string unknown;
};

/// The request's view shared by the three formats.
struct Call {
  Api api;
  Endpoint endpoint = Endpoint::chat;
  const Request* request;
  json::object body;
  std::string model;
  bool streaming = false;
  std::uint64_t hash = 0;
  std::string short_hash;
  Behaviors behaviors;
  bool wants_usage_chunk = false;
};

struct Answer {
  std::string text;
  bool tool = false;
  std::string tool_name;
  std::string tool_arguments;  // serialized JSON
  json::value tool_input;
};

struct Tokens {
  std::int64_t prompt = 0;  // everything sent, cached included
  std::int64_t completion = 0;
  std::int64_t cache_read = 0;
  std::int64_t cache_write = 0;
  std::int64_t reasoning = 0;  // included in completion (the Responses API reports it)
};

/// A tool the request forces: its name and its input schema.
using ForcedTool = std::pair<std::string, json::value>;

// ---- shared helpers (fake_call.cpp) -----------------------------------------------------------

/// 16 lowercase hex digits.
std::string hex(std::uint64_t value);
/// The text in pieces of at most 16 bytes, never splitting a UTF-8 sequence (stream deltas).
std::vector<std::string> pieces(std::string_view text);
Reply json_reply(int status, const json::value& body);
/// The value at `path` of nested objects; null when a step is missing or not an object.
const json::value* find_path(const json::object& object, std::initializer_list<const char*> path);
/// The first tool of the array `tools` named `wanted` (any when empty), with its schema under
/// `schema_key`; `openai`: each tool's spec is under "function".
std::optional<ForcedTool> pick_tool(const json::value* tools, const std::string& wanted,
                                    const char* schema_key, bool openai);
/// What the call gets: the forced tool's call, a sample of the output schema, or the echo.
Answer make_answer(const Call& call);
Tokens count_tokens(const Call& call, const Answer& answer);

// ---- the wire formats -------------------------------------------------------------------------

namespace openai {
Reply error_reply(int status, const std::string& message);
std::optional<Reply> check_auth(const Request& request);
std::optional<ForcedTool> forced_tool(const json::object& body);
const json::value* output_schema(const json::object& body);
std::string body(const Call& call, const Answer& answer, const Tokens& tokens);
std::vector<std::string> events(const Call& call, const Answer& answer, const Tokens& tokens);
}  // namespace openai

namespace anthropic {
Reply error_reply(int status, const std::string& message);
std::optional<Reply> check_auth(const Request& request);
std::optional<ForcedTool> forced_tool(const json::object& body);
std::string body(const Call& call, const Answer& answer, const Tokens& tokens);
std::vector<std::string> events(const Call& call, const Answer& answer, const Tokens& tokens);
}  // namespace anthropic

namespace gemini {
Reply error_reply(int status, const std::string& message);
std::optional<Reply> check_auth(const Request& request);
std::optional<ForcedTool> forced_tool(const json::object& body);
const json::value* output_schema(const json::object& body);
/// 429 RESOURCE_EXHAUSTED with a RetryInfo detail and no header.
Reply exhausted_reply();
/// generateContent's answer, or streamGenerateContent's without alt=sse (one JSON array).
std::string body(const Call& call, const Answer& answer, const Tokens& tokens);
std::vector<std::string> events(const Call& call, const Answer& answer, const Tokens& tokens);
}  // namespace gemini

namespace responses {
std::optional<ForcedTool> forced_tool(const json::object& body);
/// The input carries a function_call_output item (an agent sent its tool's result).
bool has_tool_result(const json::object& body);
const json::value* output_schema(const json::object& body);
std::string body(const Call& call, const Answer& answer, const Tokens& tokens);
std::vector<std::string> events(const Call& call, const Answer& answer, const Tokens& tokens);
}  // namespace responses

namespace files {
/// POST /v1/files (multipart) and GET /v1/files/{id}.
Reply handle(const Request& request);
}  // namespace files

namespace embeddings {
/// POST /v1/embeddings; `inputs_seen` is set to the number of inputs answered.
Reply handle(const Request& request, std::size_t& inputs_seen);
/// Gemini's :embedContent, or with `batch` :batchEmbedContents.
Reply handle_gemini(const Request& request, bool batch, std::size_t& inputs_seen);
}  // namespace embeddings

namespace small {
/// The body of a plain answer, or the events of a streamed one, of a call that is not a chat.
void answer(const Call& call, const Answer& answer, const Tokens& tokens, Reply& reply);
std::string completion_body(const Call& call, const Answer& answer, const Tokens& tokens);
std::vector<std::string> completion_events(const Call& call, const Answer& answer,
                                           const Tokens& tokens);
std::string moderation_body(const Call& call);
/// Anthropic's {"input_tokens"} or Gemini's {"totalTokens"}: the prompt's count.
std::string count_tokens_body(const Call& call, const Tokens& tokens);
}  // namespace small

}  // namespace llm_caching::fake

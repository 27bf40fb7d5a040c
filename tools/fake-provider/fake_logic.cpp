// Routes, behaviours and the three wire formats of the fake provider (see README.md).
#include "fake_logic.hpp"

#include "core/canonical_json.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace llm_caching::fake {
namespace json = boost::json;
using namespace std::chrono_literals;

std::uint64_t fnv1a64(std::string_view data) {
  std::uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

std::string Request::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::string Request::query_param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
    }
  }
  return {};
}

namespace {

enum class Api { openai, anthropic, gemini };

constexpr std::int64_t kCreated = 1700000000;

/// Decodes %XX escapes in a path segment, as real servers do with the model in a Gemini URL
/// (clients encode "+" as %2B). A malformed escape is kept as it is.
std::string percent_decode(std::string_view text) {
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && digit(text[i + 1]) >= 0 &&
        digit(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(digit(text[i + 1]) * 16 + digit(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string hex(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

/// Cuts at most `limit` bytes without splitting a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
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

// ---- behaviours -------------------------------------------------------------------------------

struct Behaviors {
  std::vector<std::string> tokens;
  std::chrono::milliseconds delay{0};
  std::string failure;  // "429", "429ms", "gemini-exhausted", "500", "529", "invalid-json", ...
  int count = 0;        // K of the counted failures
  std::string unknown;
};

bool parse_count(std::string_view token, std::string_view prefix, int* out) {
  if (!token.starts_with(prefix)) return false;
  const auto digits = token.substr(prefix.size());
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *out);
  return ec == std::errc() && end == digits.data() + digits.size() && !digits.empty();
}

void add_behavior(Behaviors& b, std::string_view token) {
  if (token.empty()) return;
  b.tokens.emplace_back(token);
  int n = 0;
  if (parse_count(token, "delay-", &n)) {
    b.delay += std::chrono::milliseconds(n);
  } else if (parse_count(token, "429ms-", &n)) {
    b.failure = "429ms", b.count = n;
  } else if (parse_count(token, "429-", &n)) {
    b.failure = "429", b.count = n;
  } else if (parse_count(token, "gemini-exhausted-", &n)) {
    b.failure = "gemini-exhausted", b.count = n;
  } else if (token == "500" || token == "529" || token == "invalid-json" || token == "truncated" ||
             token == "drop" || token == "wrong-schema") {
    b.failure = std::string(token);
  } else if (b.unknown.empty()) {
    b.unknown = std::string(token);
  }
}

/// Behaviours come from the model name ("gpt-4o+429-2+delay-100") and from the
/// x-fake-behavior header ("429-2, delay-100").
Behaviors parse_behaviors(std::string_view model, std::string_view header) {
  Behaviors b;
  auto split = [&](std::string_view text, std::string_view separators) {
    while (!text.empty()) {
      const auto at = text.find_first_of(separators);
      add_behavior(b, text.substr(0, at));
      if (at == std::string_view::npos) break;
      text.remove_prefix(at + 1);
    }
  };
  if (const auto plus = model.find('+'); plus != std::string_view::npos) {
    split(model.substr(plus + 1), "+");
  }
  split(header, ", +");
  return b;
}

// ---- replies ----------------------------------------------------------------------------------

Reply json_reply(int status, const json::value& body) {
  Reply reply;
  reply.status = status;
  reply.headers.emplace_back("Content-Type", "application/json");
  reply.body = json::serialize(body);
  return reply;
}

Reply error_reply(Api api, int status, const std::string& message) {
  if (api == Api::anthropic) {
    const char* type = status == 400   ? "invalid_request_error"
                       : status == 401 ? "authentication_error"
                       : status == 404 ? "not_found_error"
                       : status == 429 ? "rate_limit_error"
                       : status == 529 ? "overloaded_error"
                                       : "api_error";
    return json_reply(status,
                      {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}});
  }
  if (api == Api::gemini) {
    const char* state = status == 400   ? "INVALID_ARGUMENT"
                        : status == 401 ? "UNAUTHENTICATED"
                        : status == 404 ? "NOT_FOUND"
                        : status == 429 ? "RESOURCE_EXHAUSTED"
                        : status == 503 ? "UNAVAILABLE"
                                        : "INTERNAL";
    return json_reply(status,
                      {{"error", {{"code", status}, {"message", message}, {"status", state}}}});
  }
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

/// The request's view shared by the three formats.
struct Call {
  Api api;
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
};

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

std::string last_user_text(const Call& call) {
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

/// The forced tool's schema, if the request forces one: (name, parameters).
std::optional<std::pair<std::string, json::value>> forced_tool(const Call& call) {
  const auto& body = call.body;
  auto pick = [](const json::value* tools, const std::string& wanted, const char* schema_key,
                 bool openai) -> std::optional<std::pair<std::string, json::value>> {
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
  };
  if (call.api == Api::openai) {
    const auto* choice = body.if_contains("tool_choice");
    if (!choice) return std::nullopt;
    if (choice->is_string() && choice->as_string() == "required") {
      return pick(body.if_contains("tools"), "", "parameters", true);
    }
    if (const auto* name =
            choice->is_object() ? find_path(choice->as_object(), {"function", "name"}) : nullptr;
        name && name->is_string()) {
      return pick(body.if_contains("tools"), std::string(name->as_string()), "parameters", true);
    }
    return std::nullopt;
  }
  if (call.api == Api::anthropic) {
    const auto* choice = body.if_contains("tool_choice");
    if (!choice || !choice->is_object()) return std::nullopt;
    const auto* type = choice->as_object().if_contains("type");
    if (!type || !type->is_string()) return std::nullopt;
    if (type->as_string() == "any")
      return pick(body.if_contains("tools"), "", "input_schema", false);
    const auto* name = choice->as_object().if_contains("name");
    if (type->as_string() == "tool" && name && name->is_string()) {
      return pick(body.if_contains("tools"), std::string(name->as_string()), "input_schema", false);
    }
    return std::nullopt;
  }
  const auto* mode = find_path(body, {"toolConfig", "functionCallingConfig", "mode"});
  if (!mode || !mode->is_string() || mode->as_string() != "ANY") return std::nullopt;
  std::string wanted;
  if (const auto* allowed =
          find_path(body, {"toolConfig", "functionCallingConfig", "allowedFunctionNames"});
      allowed && allowed->is_array() && !allowed->as_array().empty() &&
      allowed->as_array()[0].is_string()) {
    wanted = allowed->as_array()[0].as_string();
  }
  const auto* tools = body.if_contains("tools");
  if (!tools || !tools->is_array()) return std::nullopt;
  for (const auto& tool : tools->as_array()) {
    if (!tool.is_object()) continue;
    if (auto found = pick(tool.as_object().if_contains("functionDeclarations"), wanted,
                          "parameters", false)) {
      return found;
    }
  }
  return std::nullopt;
}

const json::value* output_schema(const Call& call) {
  if (call.api == Api::openai) {
    const auto* type = find_path(call.body, {"response_format", "type"});
    if (!type || !type->is_string() || type->as_string() != "json_schema") return nullptr;
    return find_path(call.body, {"response_format", "json_schema", "schema"});
  }
  if (call.api == Api::gemini) {
    for (const char* key :
         {"responseSchema", "responseJsonSchema", "response_schema", "response_json_schema"}) {
      if (const auto* schema = find_path(call.body, {"generationConfig", key})) return schema;
    }
  }
  return nullptr;
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
  return tokens;
}

// ---- OpenAI -----------------------------------------------------------------------------------

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

std::string openai_body(const Call& call, const Answer& answer, const Tokens& tokens) {
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

std::vector<std::string> openai_events(const Call& call, const Answer& answer,
                                       const Tokens& tokens) {
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

// ---- Anthropic --------------------------------------------------------------------------------

json::object anthropic_usage(const Tokens& t, bool streaming_start) {
  return {{"input_tokens", t.prompt - t.cache_read - t.cache_write},
          {"cache_creation_input_tokens", t.cache_write},
          {"cache_read_input_tokens", t.cache_read},
          {"output_tokens", streaming_start ? 1 : t.completion}};
}

json::object anthropic_message(const Call& call, json::array content, json::value stop,
                               json::object usage) {
  return {{"id", "msg_fake" + hex(call.hash)},
          {"type", "message"},
          {"role", "assistant"},
          {"model", call.model},
          {"content", content},
          {"stop_reason", stop},
          {"stop_sequence", nullptr},
          {"usage", usage}};
}

json::object anthropic_block(const Call& call, const Answer& answer, bool complete) {
  if (!answer.tool) return {{"type", "text"}, {"text", complete ? answer.text : ""}};
  return {{"type", "tool_use"},
          {"id", "toolu_fake" + call.short_hash},
          {"name", answer.tool_name},
          {"input", complete ? answer.tool_input : json::object()}};
}

std::string anthropic_body(const Call& call, const Answer& answer, const Tokens& tokens) {
  return json::serialize(anthropic_message(call, json::array{anthropic_block(call, answer, true)},
                                           answer.tool ? "tool_use" : "end_turn",
                                           anthropic_usage(tokens, false)));
}

std::vector<std::string> anthropic_events(const Call& call, const Answer& answer,
                                          const Tokens& tokens) {
  std::vector<std::string> events;
  auto emit = [&](const char* type, json::object data) {
    data.emplace("type", type);
    events.push_back(std::string("event: ") + type + "\ndata: " + json::serialize(data) + "\n\n");
  };
  emit("message_start",
       {{"message", anthropic_message(call, {}, nullptr, anthropic_usage(tokens, true))}});
  emit("content_block_start",
       {{"index", 0}, {"content_block", anthropic_block(call, answer, false)}});
  emit("ping", {});
  for (const auto& piece : pieces(answer.tool ? answer.tool_arguments : answer.text)) {
    json::object delta = answer.tool
                             ? json::object{{"type", "input_json_delta"}, {"partial_json", piece}}
                             : json::object{{"type", "text_delta"}, {"text", piece}};
    emit("content_block_delta", {{"index", 0}, {"delta", delta}});
  }
  emit("content_block_stop", {{"index", 0}});
  emit("message_delta",
       {{"delta",
         {{"stop_reason", answer.tool ? "tool_use" : "end_turn"}, {"stop_sequence", nullptr}}},
        {"usage", {{"output_tokens", tokens.completion}}}});
  emit("message_stop", {});
  return events;
}

// ---- Gemini -----------------------------------------------------------------------------------

json::object gemini_usage(const Tokens& t) {
  json::object usage{{"promptTokenCount", t.prompt},
                     {"candidatesTokenCount", t.completion},
                     {"totalTokenCount", t.prompt + t.completion}};
  if (t.cache_read > 0) usage["cachedContentTokenCount"] = t.cache_read;
  return usage;
}

json::object gemini_chunk(const Call& call, json::object part, bool last, const Tokens& tokens) {
  json::object candidate{{"content", {{"parts", json::array{std::move(part)}}, {"role", "model"}}},
                         {"index", 0}};
  if (last) candidate["finishReason"] = "STOP";
  json::object chunk{{"candidates", json::array{candidate}}};
  if (last) chunk["usageMetadata"] = gemini_usage(tokens);
  chunk["modelVersion"] = call.model;
  chunk["responseId"] = "fake" + call.short_hash;
  return chunk;
}

json::object gemini_part(const Answer& answer, std::string_view text) {
  if (answer.tool)
    return {{"functionCall", {{"name", answer.tool_name}, {"args", answer.tool_input}}}};
  return {{"text", text}};
}

std::vector<json::object> gemini_chunks(const Call& call, const Answer& answer,
                                        const Tokens& tokens) {
  std::vector<json::object> chunks;
  if (answer.tool) {
    chunks.push_back(gemini_chunk(call, gemini_part(answer, ""), true, tokens));
    return chunks;
  }
  const auto parts = pieces(answer.text);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    chunks.push_back(
        gemini_chunk(call, gemini_part(answer, parts[i]), i + 1 == parts.size(), tokens));
  }
  return chunks;
}

// ---- one call ---------------------------------------------------------------------------------

std::optional<Reply> check_auth(Api api, const Request& request) {
  if (api == Api::openai) {
    const std::string auth = request.header("authorization");
    if (auth.size() > 7 && auth.starts_with("Bearer ")) return std::nullopt;
    return error_reply(api, 401,
                       "You didn't provide an API key. You need to provide your API key in an "
                       "Authorization header using Bearer auth.");
  }
  if (api == Api::anthropic) {
    if (request.header("x-api-key").empty()) {
      return error_reply(api, 401, "x-api-key header is required");
    }
    if (request.header("anthropic-version").empty()) {
      return error_reply(api, 400, "anthropic-version: header is required");
    }
    return std::nullopt;
  }
  if (!request.header("x-goog-api-key").empty() || !request.query_param("key").empty()) {
    return std::nullopt;
  }
  return error_reply(api, 401,
                     "Method doesn't allow unregistered callers. Please use API Key or other "
                     "form of API consumer identity to call this API.");
}

std::optional<Reply> rate_limit_reply(const Call& call, std::uint64_t calls_so_far) {
  const auto& failure = call.behaviors.failure;
  if (calls_so_far > static_cast<std::uint64_t>(call.behaviors.count)) return std::nullopt;
  if (failure == "gemini-exhausted" && call.api == Api::gemini) {
    json::object error{
        {"code", 429},
        {"message", "Resource has been exhausted (e.g. check quota)."},
        {"status", "RESOURCE_EXHAUSTED"},
        {"details", json::array{{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                                 {"retryDelay", "1s"}}}}};
    return json_reply(429, {{"error", error}});
  }
  Reply reply = error_reply(call.api, 429, "Rate limit reached (fake provider).");
  if (failure == "429ms") {
    reply.headers.emplace_back("retry-after-ms", "50");
  } else {
    reply.headers.emplace_back(call.api == Api::anthropic ? "retry-after" : "Retry-After", "1");
  }
  if (call.api == Api::openai) reply.headers.emplace_back("x-ratelimit-reset-requests", "1s");
  return reply;
}

Reply success_reply(const Call& call) {
  const Answer answer = make_answer(call);
  const Tokens tokens = count_tokens(call, answer);
  Reply reply;
  const std::string request_id = "req_fake" + call.short_hash;
  reply.headers.emplace_back(call.api == Api::anthropic ? "request-id" : "x-request-id",
                             request_id);
  if (call.streaming) {
    reply.streaming = true;
    if (call.api == Api::openai) reply.events = openai_events(call, answer, tokens);
    if (call.api == Api::anthropic) reply.events = anthropic_events(call, answer, tokens);
    if (call.api == Api::gemini) {
      for (const auto& chunk : gemini_chunks(call, answer, tokens)) {
        reply.events.push_back("data: " + json::serialize(chunk) + "\r\n\r\n");
      }
    }
    reply.headers.emplace_back("Content-Type", "text/event-stream");
    reply.headers.emplace_back("Cache-Control", "no-cache");
    return reply;
  }
  reply.headers.emplace_back("Content-Type", "application/json");
  if (call.api == Api::openai) reply.body = openai_body(call, answer, tokens);
  if (call.api == Api::anthropic) reply.body = anthropic_body(call, answer, tokens);
  if (call.api == Api::gemini) {
    const auto chunks = gemini_chunks(call, answer, tokens);
    if (call.request->path.ends_with(":streamGenerateContent")) {
      // Without alt=sse, Gemini streams one JSON array of chunks.
      json::array array;
      for (const auto& chunk : chunks) array.push_back(chunk);
      reply.body = json::serialize(array);
    } else {
      Answer whole = answer;
      reply.body =
          json::serialize(gemini_chunk(call, gemini_part(whole, answer.text), true, tokens));
    }
  }
  return reply;
}

void apply_output_faults(const Call& call, Reply& reply) {
  const auto& failure = call.behaviors.failure;
  if (failure == "invalid-json") {
    if (reply.streaming) {
      reply.events.resize(1);
      reply.events.emplace_back("data: {\"broken\": [1, 2\n\n");
      if (call.api == Api::openai) reply.events.emplace_back("data: [DONE]\n\n");
    } else {
      reply.body = reply.body.substr(0, reply.body.size() / 2) + " <<not json";
    }
  }
  if (failure == "truncated") {
    reply.fault = Reply::Fault::truncated;
    if (reply.streaming) {
      for (const auto& event : reply.events) reply.body += event;
      reply.events.clear();
      reply.streaming = false;
    }
  }
}

}  // namespace

void Provider::on_connection() {
  std::lock_guard lock(mutex_);
  ++connections_;
}

void Provider::count(const std::string& route, const std::vector<std::string>& behaviors) {
  std::lock_guard lock(mutex_);
  ++total_;
  ++routes_[route];
  for (const auto& behavior : behaviors) ++behaviors_[behavior];
}

int Provider::bump_body_counter(std::uint64_t body_hash) {
  std::lock_guard lock(mutex_);
  return ++calls_per_body_[body_hash];
}

Reply Provider::stats() {
  std::lock_guard lock(mutex_);
  json::object routes, behaviors;
  for (const auto& [route, n] : routes_) routes[route] = n;
  for (const auto& [behavior, n] : behaviors_) behaviors[behavior] = n;
  return json_reply(200, {{"total", total_},
                          {"routes", routes},
                          {"behaviors", behaviors},
                          {"connections", connections_}});
}

Reply Provider::handle(const Request& request) {
  if (request.path == "/_stats" && request.method == "GET") return stats();
  if (request.path == "/_reset" && request.method == "POST") {
    std::lock_guard lock(mutex_);
    total_ = connections_ = 0;
    routes_.clear();
    behaviors_.clear();
    calls_per_body_.clear();
    return json_reply(200, {{"reset", true}});
  }
  if (request.path == "/v1/models" && request.method == "GET") {
    json::array models;
    for (const char* id :
         {"gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest", "gemini-2.0-flash"}) {
      models.push_back(
          {{"id", id}, {"object", "model"}, {"created", kCreated}, {"owned_by", "fake"}});
    }
    return json_reply(200, {{"object", "list"}, {"data", models}});
  }
  return route(request);
}

Reply Provider::route(const Request& request) {
  Call call;
  call.request = &request;
  std::string route_key = request.path;
  std::string model;
  bool gemini_stream_method = false;
  constexpr std::string_view kGeminiPrefix = "/v1beta/models/";
  if (request.path == "/v1/chat/completions") {
    call.api = Api::openai;
  } else if (request.path == "/v1/messages") {
    call.api = Api::anthropic;
  } else if (request.path.starts_with(kGeminiPrefix) &&
             request.path.rfind(':') > kGeminiPrefix.size()) {
    call.api = Api::gemini;
    const auto colon = request.path.rfind(':');
    model = percent_decode(request.path.substr(kGeminiPrefix.size(), colon - kGeminiPrefix.size()));
    const std::string method = request.path.substr(colon + 1);
    if (method != "generateContent" && method != "streamGenerateContent") {
      return error_reply(Api::gemini, 404, "Unknown method " + method);
    }
    gemini_stream_method = method == "streamGenerateContent";
    route_key = "/v1beta/models:" + method;
  } else {
    return error_reply(Api::openai, 404, "No route for " + request.method + " " + request.path);
  }
  if (request.method != "POST") {
    return error_reply(call.api, 404, "Use POST for " + request.path);
  }

  boost::system::error_code parse_error;
  json::value parsed = json::parse(request.body, parse_error);
  if (!parse_error && parsed.is_object() && call.api != Api::gemini) {
    if (const auto* m = parsed.as_object().if_contains("model"); m && m->is_string()) {
      model = m->as_string();
    }
  }
  call.behaviors = parse_behaviors(model, request.header("x-fake-behavior"));
  count(route_key, call.behaviors.tokens);  // every call counts, errors included

  if (auto denied = check_auth(call.api, request)) return *denied;
  if (parse_error || !parsed.is_object()) {
    return error_reply(call.api, 400, "The request body is not a JSON object.");
  }
  if (model.empty()) return error_reply(call.api, 400, "model: field required");
  if (!call.behaviors.unknown.empty()) {
    return error_reply(call.api, 400, "unknown fake behavior '" + call.behaviors.unknown + "'");
  }
  call.body = std::move(parsed.as_object());
  call.model = model;
  call.hash = fnv1a64(request.body);
  call.short_hash = hex(call.hash).substr(0, 8);
  if (call.api == Api::gemini) {
    call.streaming = gemini_stream_method && request.query_param("alt") == "sse";
  } else {
    const auto* stream = call.body.if_contains("stream");
    call.streaming = stream && stream->is_bool() && stream->as_bool();
  }
  const auto* include_usage = find_path(call.body, {"stream_options", "include_usage"});
  call.wants_usage_chunk = call.api == Api::openai && include_usage && include_usage->is_bool() &&
                           include_usage->as_bool();

  const std::string& failure = call.behaviors.failure;
  Reply reply;
  if (failure == "drop") {
    reply.fault = Reply::Fault::drop;
  } else if (auto limited =
                 (failure == "429" || failure == "429ms" || failure == "gemini-exhausted")
                     ? rate_limit_reply(call, bump_body_counter(call.hash ^ fnv1a64(failure)))
                     : std::nullopt) {
    reply = std::move(*limited);
  } else if (failure == "500") {
    reply = error_reply(call.api, 500, "The server had an error while processing your request.");
  } else if (failure == "529") {
    reply = call.api == Api::anthropic ? error_reply(call.api, 529, "Overloaded")
                                       : error_reply(call.api, 503, "The model is overloaded.");
  } else {
    reply = success_reply(call);
    apply_output_faults(call, reply);
  }
  reply.delay = call.behaviors.delay;
  return reply;
}

}  // namespace llm_caching::fake

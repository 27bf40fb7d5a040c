// Provider codecs (DESIGN §2): pure functions between our types and each provider's native JSON.
// No I/O here; the HTTP client and the exchange call these.
//
// Choices worth knowing:
// - OpenAI: the token limit is sent as "max_tokens" (not "max_completion_tokens") because the
//   OpenAI-compatible servers people point us at (Ollama, vLLM, LiteLLM, llama.cpp) accept only it.
//   Callers who need "max_completion_tokens" (o-series models) put it in settings.extra.
// - Anthropic: system-role messages in the history are appended to the top-level "system" (the API
//   has no system role inside "messages"); consecutive same-role messages are kept as they are (the
//   API combines them itself, and keeping them keeps the request what the caller built).
// - Gemini: "assistant" becomes "model"; system-role messages join "systemInstruction".
// - settings.extra is merged last and wins: at top level for OpenAI and Anthropic; for Gemini into
//   "generationConfig", except GenerateContentRequest's own top-level fields (tools, toolConfig,
//   safetySettings, cachedContent, labels, ...) which stay top level.
// - Unset settings are not emitted. Finish reasons are the provider's own strings.
// - ChatResponse::tool_calls holds each provider's native objects (OpenAI message.tool_calls[i],
//   Anthropic tool_use blocks, Gemini functionCall parts) so a replay is exact.
#pragma once

#include "llm_caching/cache_key.hpp"
#include "llm_caching/messages.hpp"
#include "llm_caching/usage.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::providers {

struct ChatRequest {
  std::string model;
  std::string system_prompt;
  std::vector<ModelMessage> messages;
  ModelSettings settings;
  /// A JSON Schema for structured output; unset = free text.
  std::optional<boost::json::object> output_schema;
  /// OpenAI json_schema name / Anthropic tool name; [A-Za-z0-9_-]{1,64}.
  std::string output_schema_name = "output";
};

/// Anthropic's required max_tokens when settings.max_tokens is unset.
inline constexpr std::int64_t kAnthropicDefaultMaxTokens = 4096;

/// The native request body. Throws ConfigurationError for an unknown message role or an invalid
/// schema name, and (Gemini) for a schema with a recursive $ref that cannot be inlined.
boost::json::object build_request(Provider provider, const ChatRequest& request);

/// "/v1/chat/completions", "/v1/messages", "/v1beta/models/{model}:generateContent" or
/// "/v1beta/models/{model}:streamGenerateContent?alt=sse" (model percent-encoded, a leading
/// "models/" removed). The model is only used for Gemini.
std::string request_path(Provider provider, std::string_view model, bool stream);

/// The `anthropic-version` sent when the caller names none (library and gateway alike).
inline constexpr std::string_view kAnthropicVersion = "2023-06-01";

struct ChatResponse {
  /// The answer's text. For structured output: the JSON text of the output (for Anthropic the
  /// serialised input of the forced tool call).
  std::string text;
  std::optional<boost::json::value> output_json;  ///< set when parsed with structured = true
  std::string finish_reason;                      ///< native: "stop", "end_turn", "STOP", ...
  Usage usage;                                    ///< normalised (DESIGN §6), requests = 1
  std::string model;                              ///< as reported by the provider
  std::string id;                                 ///< response id (Gemini responseId)
  std::vector<boost::json::object> tool_calls;    ///< native objects, in order
};

/// Parses a complete (non-streamed) native response. Throws ProviderError (http_status 200,
/// body_excerpt <= 200 chars with key-like tokens redacted) when the body is not JSON, lacks
/// choices/content/candidates, or the structured output is not valid JSON: error_type
/// "invalid_response"; when the body is an error object: error_type is the provider's type
/// ("overloaded_error", "RESOURCE_EXHAUSTED", ...); OpenAI refusal of structured output:
/// "refusal"; Gemini prompt blocked: "blocked".
ChatResponse parse_response(Provider provider, std::string_view body, bool structured);

/// The usage of a complete native response, without the rest of it: parse_response(provider,
/// body, false).usage, and the same ProviderError on the same bodies, for a fraction of the work
/// (one pass over the JSON that keeps only the usage object). For callers that need only the
/// cost, such as the exchange storing an answer it relays as it came.
Usage parse_usage(Provider provider, std::string_view body);

/// Normalised usage of a parsed native response; missing counts are 0; requests = 1.
Usage extract_usage(Provider provider, const boost::json::object& response);

struct ProviderErrorInfo {
  /// OpenAI error.type (error.code when type is empty), Anthropic error.type, Gemini error.status;
  /// "unknown" when the body is not a recognised error.
  std::string type;
  /// OpenAI error.code, Gemini error.code (as text); empty otherwise.
  std::string code;
  std::string message;  ///< never longer than 200 chars; key-like tokens redacted
  /// Gemini google.rpc.RetryInfo.retryDelay ("3s", "1.5s") in milliseconds.
  std::optional<std::chrono::milliseconds> retry_delay;
};

/// Reads a provider's error body. Never throws.
ProviderErrorInfo parse_error_body(Provider provider, int http_status, std::string_view body);

/// Turns a complete native response into the provider's SSE stream format. Throws ProviderError
/// ("invalid_response") if the response cannot be parsed.
std::string response_to_sse(Provider provider, std::string_view complete_response_json);

/// Assembles a provider's SSE stream back into a complete native response (JSON text). Throws
/// ProviderError for a malformed or truncated stream ("invalid_response") or an in-stream error
/// event (the provider's error type).
std::string sse_to_response(Provider provider, std::string_view sse_body);

// ---- the further APIs (Api in cache_key.hpp); Api::chat gives the functions above ----------
// (codec_apis.cpp; the Responses API in codec_openai_responses.cpp)

/// The path of a call to `api`: "/v1/responses", "/v1/completions", "/v1/moderations",
/// "/v1/messages/count_tokens", "/v1beta/models/{model}:countTokens". Throws
/// ConfigurationError for an API the provider does not have.
std::string request_path(Provider provider, Api api, std::string_view model, bool stream);
/// Whether the API streams at all (count_tokens and moderations answer one JSON object).
bool api_streams(Api api) noexcept;
/// The usage of a complete answer of `api`, with the same checks as parse_response: throws
/// ProviderError ("invalid_response", or the provider's error type) for a body that is not a
/// sound answer. count_tokens and moderations are free: their usage is requests = 1 only.
Usage parse_usage(Provider provider, Api api, std::string_view body);
std::string response_to_sse(Provider provider, Api api, std::string_view complete_response_json);
std::string sse_to_response(Provider provider, Api api, std::string_view sse_body);

}  // namespace llm_caching::providers

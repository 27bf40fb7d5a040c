// Helpers shared by the three codecs, and each codec's entry points (dispatched in codec.cpp).
#pragma once

#include "providers/codec.hpp"
#include "providers/sse.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace llm_caching::providers::detail {

/// At most `max_bytes` of `body` (cut on a UTF-8 boundary), with API-key-like tokens redacted.
std::string excerpt(std::string_view body, std::size_t max_bytes = 200);

/// Throws ProviderError(http_status 200) naming the provider and the problem.
[[noreturn]] void throw_invalid(Provider provider, std::string_view problem, std::string_view body,
                                std::string error_type = "invalid_response");

/// Throws ProviderError(200, the provider's error type) for a body that is an error object.
[[noreturn]] void throw_error_object(Provider provider, std::string_view body);

/// Parses `text` as a JSON object, or throws ProviderError ("invalid_response").
boost::json::object parse_object(Provider provider, std::string_view text);
/// Parses any JSON value; nullopt when `text` is not JSON.
std::optional<boost::json::value> try_parse(std::string_view text);

const boost::json::object* find_object(const boost::json::object& o, std::string_view key);
const boost::json::array* find_array(const boost::json::object& o, std::string_view key);
/// The string at `key`, or "" when absent or not a string.
std::string_view find_string(const boost::json::object& o, std::string_view key);
/// The integer at `key` (doubles truncated, negatives clamped to 0), or 0 when absent.
std::int64_t find_count(const boost::json::object& o, std::string_view key);

/// Throws ConfigurationError unless `name` matches [A-Za-z0-9_-]{1,64}.
void check_schema_name(std::string_view name);
/// Throws ConfigurationError naming the role and the accepted ones.
[[noreturn]] void throw_bad_role(Provider provider, std::string_view role);

/// "3s", "1.5s", "0.250s" → milliseconds; nullopt otherwise.
std::optional<std::chrono::milliseconds> parse_seconds_duration(std::string_view text);

/// Splits a whole SSE body into events; throws ProviderError ("invalid_response") when it ends
/// mid-event.
std::vector<SseEvent> read_sse(Provider provider, std::string_view sse_body);

/// parse_usage's one pass: the usage when the body is an answer parse_response(provider, body,
/// false) accepts; nullopt when it is not, or when the pass cannot tell (a member that appears
/// twice), which leaves the verdict to parse_response.
std::optional<Usage> scan_usage(Provider provider, std::string_view body);

/// Per-provider implementations.
namespace openai {
boost::json::object build_request(const ChatRequest& request);
ChatResponse parse_response(std::string_view body, bool structured);
Usage extract_usage(const boost::json::object& response);
ProviderErrorInfo parse_error_body(std::string_view body);
std::string response_to_sse(const boost::json::object& response);
std::string sse_to_response(std::string_view sse_body);
}  // namespace openai
/// OpenAI's Responses API (codec_openai_responses.cpp) and legacy completions (codec_apis.cpp).
namespace openai_responses {
Usage parse_usage(std::string_view body);
std::string response_to_sse(const boost::json::object& response);
std::string sse_to_response(std::string_view sse_body);
}  // namespace openai_responses
namespace anthropic {
boost::json::object build_request(const ChatRequest& request);
ChatResponse parse_response(std::string_view body, bool structured);
Usage extract_usage(const boost::json::object& response);
ProviderErrorInfo parse_error_body(std::string_view body);
std::string response_to_sse(const boost::json::object& response);
std::string sse_to_response(std::string_view sse_body);
}  // namespace anthropic
namespace gemini {
boost::json::object build_request(const ChatRequest& request);
ChatResponse parse_response(std::string_view body, bool structured);
Usage extract_usage(const boost::json::object& response);
ProviderErrorInfo parse_error_body(std::string_view body);
std::string response_to_sse(const boost::json::object& response);
std::string sse_to_response(std::string_view sse_body);
/// A JSON Schema rewritten into Gemini's OpenAPI 3.0 subset.
boost::json::object to_gemini_schema(const boost::json::object& json_schema);
}  // namespace gemini

}  // namespace llm_caching::providers::detail

#include "providers/codec.hpp"

#include "core/text.hpp"

#include "llm_caching/errors.hpp"
#include "providers/codec_detail.hpp"

#include <boost/json/parse.hpp>

#include <array>
#include <charconv>
#include <cmath>

namespace llm_caching::providers {

namespace json = boost::json;

namespace detail {

namespace {

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '*' || c == '.';
}

// Providers echo (partly masked) keys in auth errors: "Incorrect API key provided: sk-ab***yz".
std::string redact_keys(std::string_view text) {
  static constexpr std::array<std::string_view, 4> kPrefixes = {"sk-", "AIza", "Bearer ",
                                                                "x-api-key: "};
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    bool redacted = false;
    for (std::string_view prefix : kPrefixes) {
      if (text.substr(i, prefix.size()) != prefix) continue;
      std::size_t end = i + prefix.size();
      while (end < text.size() && is_token_char(text[end])) ++end;
      if (end - i - prefix.size() >= 8) {
        out.append("[redacted]");
        i = end;
        redacted = true;
        break;
      }
    }
    if (!redacted) out.push_back(text[i++]);
  }
  return out;
}

}  // namespace

std::string excerpt(std::string_view body, std::size_t max_bytes) {
  std::string text = redact_keys(body);
  if (text.size() <= max_bytes) return text;
  std::size_t cut = max_bytes;
  // Step back over UTF-8 continuation bytes so the excerpt stays valid UTF-8.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text;
}

void throw_invalid(Provider provider, std::string_view problem, std::string_view body,
                   std::string error_type) {
  std::string what = std::string(to_string(provider)) + " response: " + std::string(problem);
  throw ProviderError(what, 200, std::move(error_type), excerpt(body));
}

void throw_error_object(Provider provider, std::string_view body) {
  const ProviderErrorInfo info = parse_error_body(provider, 200, body);
  throw ProviderError(std::string(to_string(provider)) + " returned an error: " + info.message, 200,
                      info.type, excerpt(body));
}

std::optional<json::value> try_parse(std::string_view text) {
  json::parse_options options;
  options.max_depth = 256;  // structured outputs nest deeper than Boost's default of 32
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, options);
  if (ec) return std::nullopt;
  return v;
}

json::object parse_object(Provider provider, std::string_view text) {
  auto v = try_parse(text);
  if (!v) throw_invalid(provider, text.empty() ? "empty body" : "not valid JSON", text);
  if (!v->is_object()) throw_invalid(provider, "not a JSON object", text);
  return std::move(v->as_object());
}

const json::object* find_object(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v ? v->if_object() : nullptr;
}

const json::array* find_array(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v ? v->if_array() : nullptr;
}

std::string_view find_string(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_string()) return {};
  return v->get_string();
}

std::int64_t find_count(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return std::max<std::int64_t>(0, v->get_int64());
  if (v->is_uint64()) {
    return static_cast<std::int64_t>(std::min<std::uint64_t>(v->get_uint64(), INT64_MAX));
  }
  if (v->is_double() && std::isfinite(v->get_double()) && v->get_double() > 0 &&
      v->get_double() < 9.2e18) {
    return static_cast<std::int64_t>(v->get_double());
  }
  return 0;
}

void check_schema_name(std::string_view name) {
  const bool ok =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
      });
  if (!ok) {
    throw ConfigurationError("output schema name '" + excerpt(name, 80) +
                             "' must match [A-Za-z0-9_-]{1,64}");
  }
}

void throw_bad_role(Provider provider, std::string_view role) {
  throw ConfigurationError("message role '" + excerpt(role, 40) + "' is not supported for " +
                           std::string(to_string(provider)) +
                           "; use \"system\", \"user\" or \"assistant\"");
}

std::optional<std::chrono::milliseconds> parse_seconds_duration(std::string_view text) {
  if (text.size() < 2 || text.back() != 's' || text.size() > 32) return std::nullopt;
  text.remove_suffix(1);
  double seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(seconds) ||
      seconds < 0 || seconds > 1e9) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

std::vector<SseEvent> read_sse(Provider provider, std::string_view sse_body) {
  SseParser parser;
  std::vector<SseEvent> events = parser.feed(sse_body);
  if (!parser.finish()) throw_invalid(provider, "stream ended in the middle of an event", sse_body);
  return events;
}

}  // namespace detail

json::object build_request(Provider provider, const ChatRequest& request) {
  detail::check_schema_name(request.output_schema_name);
  switch (provider) {
    case Provider::openai:
      return detail::openai::build_request(request);
    case Provider::anthropic:
      return detail::anthropic::build_request(request);
    case Provider::gemini:
      return detail::gemini::build_request(request);
  }
  throw ConfigurationError("unknown provider");
}

std::string request_path(Provider provider, std::string_view model, bool stream) {
  switch (provider) {
    case Provider::openai:
      return "/v1/chat/completions";
    case Provider::anthropic:
      return "/v1/messages";
    case Provider::gemini:
      break;
  }
  if (model.substr(0, 7) == "models/") model.remove_prefix(7);
  std::string path = "/v1beta/models/";
  core::append_percent_encoded(path, model);
  path.append(stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
  return path;
}

ChatResponse parse_response(Provider provider, std::string_view body, bool structured) {
  switch (provider) {
    case Provider::openai:
      return detail::openai::parse_response(body, structured);
    case Provider::anthropic:
      return detail::anthropic::parse_response(body, structured);
    case Provider::gemini:
      return detail::gemini::parse_response(body, structured);
  }
  detail::throw_invalid(provider, "unknown provider", body);
}

Usage extract_usage(Provider provider, const json::object& response) {
  switch (provider) {
    case Provider::openai:
      return detail::openai::extract_usage(response);
    case Provider::anthropic:
      return detail::anthropic::extract_usage(response);
    case Provider::gemini:
      return detail::gemini::extract_usage(response);
  }
  return Usage{};
}

ProviderErrorInfo parse_error_body(Provider provider, int http_status, std::string_view body) {
  ProviderErrorInfo info;
  try {
    switch (provider) {
      case Provider::openai:
        info = detail::openai::parse_error_body(body);
        break;
      case Provider::anthropic:
        info = detail::anthropic::parse_error_body(body);
        break;
      case Provider::gemini:
        info = detail::gemini::parse_error_body(body);
        break;
    }
  } catch (...) {  // never throws: a broken body is still an error to report
    info = ProviderErrorInfo{};
  }
  if (info.type.empty()) info.type = "unknown";
  if (info.message.empty()) {
    info.message = body.empty() ? "HTTP " + std::to_string(http_status) + " with an empty body"
                                : detail::excerpt(body);
  }
  info.message = detail::excerpt(info.message);
  return info;
}

std::string response_to_sse(Provider provider, std::string_view complete_response_json) {
  const json::object response = detail::parse_object(provider, complete_response_json);
  switch (provider) {
    case Provider::openai:
      return detail::openai::response_to_sse(response);
    case Provider::anthropic:
      return detail::anthropic::response_to_sse(response);
    case Provider::gemini:
      return detail::gemini::response_to_sse(response);
  }
  return {};
}

std::string sse_to_response(Provider provider, std::string_view sse_body) {
  switch (provider) {
    case Provider::openai:
      return detail::openai::sse_to_response(sse_body);
    case Provider::anthropic:
      return detail::anthropic::sse_to_response(sse_body);
    case Provider::gemini:
      return detail::gemini::sse_to_response(sse_body);
  }
  return {};
}

}  // namespace llm_caching::providers

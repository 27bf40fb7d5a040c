// Errors in each provider's own format, and dollars as the gateway writes them: pure functions
// (controls.hpp declares them).
#include "gateway/controls.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <charconv>
#include <cstdint>

namespace llm_caching::gateway {

namespace {

std::string_view openai_type(int status) {
  switch (status) {
    case 400:
    case 404:
    case 405:
    case 413:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 429:
      return "rate_limit_error";
    case 504:
      return "timeout";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string_view anthropic_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 504:
      return "timeout_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

std::string_view gemini_status(int status) {
  switch (status) {
    case 401:
      return "UNAUTHENTICATED";
    case 404:
      return "NOT_FOUND";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 502:
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT";
  }
}

}  // namespace

std::string error_body(Provider provider, int status, std::string_view message,
                       std::string_view type) {
  namespace json = boost::json;
  switch (provider) {
    case Provider::openai:
      return json::serialize(
          json::object{{"error", json::object{{"message", message},
                                              {"type", type.empty() ? openai_type(status) : type},
                                              {"param", nullptr},
                                              {"code", nullptr}}}});
    case Provider::anthropic:
      return json::serialize(json::object{
          {"type", "error"},
          {"error", json::object{{"type", type.empty() ? anthropic_type(status) : type},
                                 {"message", message}}}});
    case Provider::gemini:
      return json::serialize(
          json::object{{"error", json::object{{"code", status},
                                              {"message", message},
                                              {"status", gemini_status(status)}}}});
  }
  return {};
}

std::string format_usd(std::int64_t nano_usd) {
  const bool negative = nano_usd < 0;
  const std::uint64_t magnitude =
      negative ? 0 - static_cast<std::uint64_t>(nano_usd) : static_cast<std::uint64_t>(nano_usd);
  // By hand rather than with fmt: two of these go out with every answer, hits included.
  std::array<char, 32> buffer;  // "-" + 11 digits + "." + 9 digits
  char* end = buffer.data();
  if (negative) *end++ = '-';
  end = std::to_chars(end, buffer.data() + buffer.size(), magnitude / 1'000'000'000).ptr;
  std::uint64_t fraction = magnitude % 1'000'000'000;
  if (fraction != 0) {
    *end++ = '.';
    int digits = 9;
    while (fraction % 10 == 0) {  // trailing zeros trimmed
      fraction /= 10;
      --digits;
    }
    for (int i = digits - 1; i >= 0; --i, fraction /= 10)
      end[i] = static_cast<char>('0' + fraction % 10);
    end += digits;
  }
  return std::string(buffer.data(), end);
}

}  // namespace llm_caching::gateway

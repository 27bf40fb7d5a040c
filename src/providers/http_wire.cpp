#include "providers/http_wire.hpp"

#include "llm_caching/errors.hpp"

#include <algorithm>
#include <array>
#include <boost/beast/core/string.hpp>

namespace llm_caching::providers {

namespace {

using boost::beast::iequals;

/// RFC 9110 tchar, as a table: every header of every request and response is checked.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

/// Headers whose job is framing the message: written by the functions below only.
bool is_framing(std::string_view name) noexcept {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection");
}

bool has(const HeaderList& headers, std::string_view name) noexcept {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& header) { return iequals(header.first, name); });
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

std::size_t estimated_size(const HeaderList& headers) noexcept {
  std::size_t size = 128;
  for (const auto& [name, value] : headers) size += name.size() + value.size() + 4;
  return size;
}

}  // namespace

bool is_valid_header(std::string_view name, std::string_view value) noexcept {
  if (name.empty()) return false;
  for (char c : name) {
    if (!kTokenChars[static_cast<unsigned char>(c)]) return false;
  }
  return std::none_of(value.begin(), value.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

std::string request_head(std::string_view method, std::string_view target, std::string_view host,
                         const HeaderList& headers, std::size_t body_size) {
  std::string out;
  out.reserve(estimated_size(headers) + target.size() + host.size());
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  for (const auto& [name, value] : headers) {
    if (!is_valid_header(name, value)) {
      throw ConfigurationError("the request header '" +
                               std::string(is_valid_header(name, "") ? name : "(invalid name)") +
                               "' has a line break or other invalid character in its value or "
                               "name (an API key read from a file with its newline?)");
    }
    if (!is_framing(name)) append_header(out, name, value);
  }
  if (!has(headers, "host")) append_header(out, "host", host);
  if (!has(headers, "user-agent")) append_header(out, "user-agent", "llm-caching/0.1");
  if (body_size > 0 || method == "POST" || method == "PUT" || method == "PATCH") {
    append_header(out, "content-length", std::to_string(body_size));
  }
  out.append("\r\n");
  return out;
}

std::string response_head(int status, std::string_view reason, const HeaderList& headers,
                          std::size_t body_size, bool keep_alive) {
  std::string out;
  out.reserve(estimated_size(headers));
  out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(reason).append("\r\n");
  for (const auto& [name, value] : headers) {
    if (!is_framing(name) && is_valid_header(name, value)) append_header(out, name, value);
  }
  if (status >= 200 && status != 204 && status != 304) {
    append_header(out, "content-length", std::to_string(body_size));
  }
  if (!keep_alive) append_header(out, "connection", "close");
  out.append("\r\n");
  return out;
}

}  // namespace llm_caching::providers

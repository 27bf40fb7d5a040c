// The fake provider's OpenAI files routes (see README.md), for the gateway's pass-through: a
// multipart upload answered with what the fake read of it (file name, purpose, byte count and
// an FNV-1a of the file's bytes, so a test can tell the bytes arrived unchanged), and a GET of a
// file by id.
#include "fake_call.hpp"

#include "cache/fnv1a.hpp"

#include <boost/json.hpp>

namespace llm_caching::fake::files {
namespace {

/// The value of `name="..."`-style parameter `key` in a part's headers, or "".
std::string header_param(std::string_view headers, std::string_view key) {
  const std::string needle = std::string(key) + "=\"";
  const auto at = headers.find(needle);
  if (at == std::string_view::npos) return {};
  const auto start = at + needle.size();
  return std::string(headers.substr(start, headers.find('"', start) - start));
}

struct Part {
  std::string name;
  std::string filename;
  std::string_view data;
};

/// The parts of a multipart/form-data body (RFC 7578), or none when it is not one.
std::vector<Part> parse_multipart(std::string_view content_type, std::string_view body) {
  std::vector<Part> parts;
  const auto b = content_type.find("boundary=");
  if (b == std::string_view::npos) return parts;
  std::string boundary(content_type.substr(b + 9));
  if (!boundary.empty() && boundary.front() == '"')
    boundary = boundary.substr(1, boundary.find('"', 1) - 1);
  boundary = boundary.substr(0, boundary.find(';'));
  const std::string delimiter = "--" + boundary;
  std::size_t at = body.find(delimiter);
  while (at != std::string_view::npos) {
    const std::size_t head_start = at + delimiter.size() + 2;  // past "\r\n"
    if (body.substr(at + delimiter.size(), 2) == "--") break;  // the closing delimiter
    const std::size_t head_end = body.find("\r\n\r\n", head_start);
    if (head_end == std::string_view::npos) break;
    const std::size_t next = body.find("\r\n" + delimiter, head_end + 4);
    if (next == std::string_view::npos) break;
    const std::string_view headers = body.substr(head_start, head_end - head_start);
    parts.push_back({header_param(headers, "name"), header_param(headers, "filename"),
                     body.substr(head_end + 4, next - head_end - 4)});
    at = next + 2;
  }
  return parts;
}

json::object file_object(std::string id, std::size_t bytes, std::string filename,
                         std::string purpose) {
  return {{"id", std::move(id)},
          {"object", "file"},
          {"bytes", bytes},
          {"created_at", kCreated},
          {"filename", std::move(filename)},
          {"purpose", std::move(purpose)},
          {"status", "processed"}};
}

}  // namespace

Reply handle(const Request& request) {
  if (auto denied = openai::check_auth(request)) return *denied;
  constexpr std::string_view kPrefix = "/v1/files/";
  if (request.method == "GET" && request.path.starts_with(kPrefix)) {
    return json_reply(200, file_object(request.path.substr(kPrefix.size()), 0, "", ""));
  }
  if (request.method != "POST" || request.path != "/v1/files") {
    return openai::error_reply(404, "No route for " + request.method + " " + request.path);
  }
  std::string purpose;
  const Part* file = nullptr;
  const auto parts = parse_multipart(request.header("content-type"), request.body);
  for (const Part& part : parts) {
    if (part.name == "purpose") purpose = part.data;
    if (part.name == "file") file = &part;
  }
  if (!file || purpose.empty()) {
    return openai::error_reply(400, "a multipart body with 'file' and 'purpose' is required");
  }
  json::object answer = file_object("file-fake" + hex(cache::fnv1a64(file->data)),
                                    file->data.size(), file->filename, purpose);
  answer["fnv1a"] = hex(cache::fnv1a64(file->data));  // the fake's own: the bytes it got
  return json_reply(200, answer);
}

}  // namespace llm_caching::fake::files

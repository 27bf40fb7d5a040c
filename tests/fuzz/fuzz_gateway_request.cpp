// The gateway's request handling before any I/O (gateway/controls.hpp): the request line routed,
// the header controls parsed, the caller's credential and partition, the answer-shaping headers.
// Input: "METHOD TARGET\n" then "name: value" lines. BadRequest is an answer (a 400).
#include "gateway/controls.hpp"

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace llm_caching;
  using namespace llm_caching::gateway;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto line_end = text.find('\n');
  const std::string_view line = text.substr(0, line_end);
  const auto space = line.find(' ');
  const std::string_view method = line.substr(0, space);
  const std::string_view target = space == std::string_view::npos ? "/" : line.substr(space + 1);
  Headers headers;
  if (line_end != std::string_view::npos) {
    std::string_view rest = text.substr(line_end + 1);
    while (!rest.empty() && headers.size() < 100) {
      const auto end = rest.find('\n');
      const std::string_view field = rest.substr(0, end);
      const auto colon = field.find(':');
      if (colon != std::string_view::npos) {
        headers.emplace_back(std::string(field.substr(0, colon)),
                             std::string(field.substr(colon + 1)));
      }
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + 1);
    }
  }
  const Route route = match_route(method, target);
  try {
    (void)parse_cache_controls(headers);
  } catch (const BadRequest&) {
  }
  (void)caller_identity(route.provider, headers, route.query_key);
  (void)answer_shaping_headers(headers);
  (void)error_body(route.provider, 400, target);
  return 0;
}

// Text that callers choose (a model name, say) in log lines and error messages.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace llm_caching::core {

/// At most `limit` bytes of `text` (then "..."), every byte that is not printable ASCII shown as
/// '?': a name can neither break a log line in two (forging the next one) nor flood it.
inline std::string printable(std::string_view text, std::size_t limit = 200) {
  std::string out;
  out.reserve(std::min(text.size(), limit) + 3);
  for (const char ch : text.substr(0, limit)) {
    const auto byte = static_cast<unsigned char>(ch);
    out += byte >= 0x20 && byte < 0x7f ? ch : '?';
  }
  if (text.size() > limit) out += "...";
  return out;
}

}  // namespace llm_caching::core

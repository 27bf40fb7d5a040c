// entry_task_name (core/entry.hpp): a caller's task name as an entry keeps it.
#include "core/entry.hpp"

namespace llm_caching::core {
namespace {

/// The length of the UTF-8 sequence at the start of `text` when it is one well-formed
/// character that is not a control character (C0, DEL, C1), else 0.
std::size_t character_length(std::string_view text) noexcept {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return lead >= 0x20 && lead != 0x7f ? 1 : 0;
  std::size_t length = 0;
  std::uint32_t code = 0;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, code = lead & 0x1fu;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, code = lead & 0x0fu;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, code = lead & 0x07u;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0u) != 0x80u) return 0;
    code = (code << 6) | (byte(i) & 0x3fu);
  }
  const std::uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
  const bool valid =
      code >= least[length] && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff);
  return valid && !(code >= 0x80 && code <= 0x9f) ? length : 0;
}

}  // namespace

std::string entry_task_name(std::string_view task) {
  std::string out;
  while (!task.empty()) {
    const std::size_t length = character_length(task);
    const std::size_t taken = length == 0 ? 1 : length;
    if (out.size() + taken > kMaxEntryTaskBytes) break;
    if (length == 0) {
      out.push_back('?');
    } else {
      out.append(task.substr(0, length));
    }
    task.remove_prefix(taken);
  }
  return out;
}

}  // namespace llm_caching::core

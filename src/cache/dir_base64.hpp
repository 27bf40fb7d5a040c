// Base64 (RFC 4648, with padding) for the bytes a `dir://` document cannot show as text.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace llm_caching::cache {

std::string base64_encode(std::string_view in);
/// nullopt for text that is not padded base64.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace llm_caching::cache

// The prompt of a provider request, in a few words, for an error that must say which call it was
// (a replay_only miss through the gateway names it, as the library's names its prompt).
#pragma once

#include <string>
#include <string_view>

namespace llm_caching::core {

/// The last text of the request's JSON body found under a key that holds what the caller wrote
/// (`content`, `text`, `input`, `prompt`: the last message of every provider's chat format, a
/// Responses or embeddings input, a legacy completion's prompt), as `printable` shows it, at
/// most `limit` bytes. "" when the body is not JSON or holds no such text.
std::string prompt_excerpt(std::string_view body, std::size_t limit = 80);

}  // namespace llm_caching::core

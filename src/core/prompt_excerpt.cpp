// The prompt of a provider request, in a few words (prompt_excerpt.hpp).
#include "core/prompt_excerpt.hpp"

#include "core/printable.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <array>

namespace llm_caching::core {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 4> kPromptKeys = {"content", "text", "input", "prompt"};

/// What the caller did not write as its prompt: instructions, tool definitions, settings.
constexpr std::array<std::string_view, 8> kSkippedKeys = {
    "system", "systemInstruction", "system_instruction", "instructions",
    "tools",  "tool_choice",       "response_format",    "generationConfig"};

bool is_skipped_key(std::string_view key) {
  for (std::string_view k : kSkippedKeys) {
    if (key == k) return true;
  }
  return false;
}

bool is_prompt_key(std::string_view key) {
  for (std::string_view k : kPromptKeys) {
    if (key == k) return true;
  }
  return false;
}

/// Depth first, in document order: the last string under a prompt key (or inside an array or
/// object under one) wins, so the conversation's last message is the one shown.
void find_last(const json::value& v, bool under_prompt_key, std::string_view& last, int depth) {
  if (depth > 64) return;  // a request nests a few levels; a hostile one is not followed down
  if (v.is_string()) {
    if (under_prompt_key && !v.get_string().empty()) last = v.get_string();
  } else if (v.is_array()) {
    for (const json::value& item : v.get_array())
      find_last(item, under_prompt_key, last, depth + 1);
  } else if (v.is_object()) {
    for (const auto& field : v.get_object()) {
      if (is_skipped_key(field.key())) continue;
      find_last(field.value(), under_prompt_key || is_prompt_key(field.key()), last, depth + 1);
    }
  }
}

}  // namespace

std::string prompt_excerpt(std::string_view body, std::size_t limit) {
  json::error_code ec;
  const json::value parsed = json::parse(body, ec);
  if (ec) return {};
  std::string_view last;
  find_last(parsed, false, last, 0);
  return last.empty() ? std::string() : printable(last, limit);
}

}  // namespace llm_caching::core

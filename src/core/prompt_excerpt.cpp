// The prompt of a provider request, in a few words (prompt_excerpt.hpp).
#include "core/prompt_excerpt.hpp"

#include "core/printable.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>

namespace llm_caching::core {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 4> kPromptKeys = {"content", "text", "input", "prompt"};

/// What the caller did not write as its prompt: instructions, tool definitions, settings.
constexpr std::array<std::string_view, 8> kSkippedKeys = {
    "system", "systemInstruction", "system_instruction", "instructions",
    "tools",  "tool_choice",       "response_format",    "generationConfig"};

bool listed(const auto& keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

/// Depth first, in document order: the last string under a prompt key (or inside an array or
/// object under one) wins, so the conversation's last message is the one shown. The recursion
/// is bounded by the parser, which refuses a body nested deeper than 32 levels.
void find_last(const json::value& v, bool under_prompt_key, std::string_view& last) {
  if (v.is_string()) {
    if (under_prompt_key && !v.get_string().empty()) last = v.get_string();
  } else if (v.is_array()) {
    for (const json::value& item : v.get_array()) find_last(item, under_prompt_key, last);
  } else if (v.is_object()) {
    for (const auto& field : v.get_object()) {
      if (listed(kSkippedKeys, field.key())) continue;
      find_last(field.value(), under_prompt_key || listed(kPromptKeys, field.key()), last);
    }
  }
}

}  // namespace

std::string prompt_excerpt(std::string_view body, std::size_t limit) {
  json::error_code ec;
  const json::value parsed = json::parse(body, ec);
  if (ec) return {};
  std::string_view last;
  find_last(parsed, false, last);
  return last.empty() ? std::string() : printable(last, limit);
}

}  // namespace llm_caching::core

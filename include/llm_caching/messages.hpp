// Conversation types shared by the library API and the provider codecs.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

namespace llm_caching {

/// One turn of a conversation, as the seed's `ModelMessage(role=..., content=...)`.
struct ModelMessage {
  std::string role;  ///< "system" | "user" | "assistant"
  std::string content;
  friend bool operator==(const ModelMessage&, const ModelMessage&) = default;
};

/// Sampling settings (pydantic_ai's ModelSettings). Unset fields are not sent.
struct ModelSettings {
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<std::int64_t> max_tokens;
  std::optional<std::int64_t> seed;
  std::vector<std::string> stop;
  /// Provider-specific fields merged into the native request as they are
  /// (e.g. {"reasoning_effort": "low"} for OpenAI).
  boost::json::object extra;
};

}  // namespace llm_caching

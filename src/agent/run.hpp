// Internal pieces of the library API shared with the CLI.
#pragma once

#include "llm_caching/cache_key.hpp"

#include <string>
#include <string_view>

namespace llm_caching::agent {

struct ModelSpec {
  Provider provider;
  std::string model;  ///< without the "provider:" prefix
};

/// "openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest", "google-gla:gemini-2.0-flash",
/// "gemini:gemini-2.0-flash". Throws ConfigurationError naming the accepted prefixes.
ModelSpec parse_model_spec(std::string_view spec);

}  // namespace llm_caching::agent

// Internal pieces of the library API shared with the CLI.
#pragma once

#include "llm_caching/cache_key.hpp"

#include <string>
#include <string_view>

namespace llm_caching::providers {
struct ProviderHost;
}

namespace llm_caching::agent {

struct ModelSpec {
  Provider provider;  ///< the wire format (OpenAI-compatible hosts are Provider::openai)
  std::string model;  ///< without the "prefix:", as sent to the provider
  /// Where the model is served: base URL and key variables, local or not. Never null.
  const providers::ProviderHost* host = nullptr;
};

/// "openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest", "google-gla:gemini-2.0-flash",
/// "gemini:gemini-2.0-flash", and OpenAI-compatible hosts: "groq:", "deepseek:", "openrouter:",
/// "together:", "mistral:", "ollama:", "vllm:", "llamacpp:". Only the first ':' separates, so
/// "ollama:llama3.2:1b" is the model "llama3.2:1b". Throws ConfigurationError naming the
/// accepted prefixes.
ModelSpec parse_model_spec(std::string_view spec);

}  // namespace llm_caching::agent

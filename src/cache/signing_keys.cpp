#include "cache/signing_keys.hpp"

#include "core/sha256.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace llm_caching::cache {
namespace {

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.pop_back();
  }
  return text;
}

std::string read_key_file(const std::string& path, const char* variable) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    throw ConfigurationError(fmt::format("{}: cannot read the key file {}", variable, path));
  }
  std::string key = trimmed(text.str());
  // An empty file must not switch signing off without a word.
  if (key.empty())
    throw ConfigurationError(fmt::format("{}: the key file {} is empty", variable, path));
  return key;
}

/// One key from its two variables (the value, or a file holding it); "" when neither is set.
std::string key_from_env(const GetEnv& env, const char* variable, const char* file_variable) {
  const std::optional<std::string> value = env(variable);
  const std::optional<std::string> file = env(file_variable);
  if (value && file) {
    throw ConfigurationError(
        fmt::format("both {} and {} are set; set one (the key, or a file holding it)", variable,
                    file_variable));
  }
  if (file) return read_key_file(*file, file_variable);
  return value ? *value : std::string();
}

void check_length(const std::string& key, const char* what) {
  if (!key.empty() && key.size() < kMinSigningKeyBytes) {
    // The length only: even a short key is a secret.
    throw ConfigurationError(fmt::format(
        "{} is {} bytes long; a signing key needs at least {} (e.g. `openssl rand -hex 32`)", what,
        key.size(), kMinSigningKeyBytes));
  }
}

}  // namespace

std::optional<std::string> process_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

core::SigningKeys resolve_signing_keys(const CacheOptions& options, const GetEnv& env) {
  core::SigningKeys keys{options.signing_key, options.signing_key_previous};
  const char* current_name = "CacheOptions::signing_key";
  const char* previous_name = "CacheOptions::signing_key_previous";
  if (keys.current.empty() && keys.previous.empty()) {
    keys.current = key_from_env(env, "LLM_CACHE_SIGNING_KEY", "LLM_CACHE_SIGNING_KEY_FILE");
    keys.previous =
        key_from_env(env, "LLM_CACHE_SIGNING_KEY_PREVIOUS", "LLM_CACHE_SIGNING_KEY_PREVIOUS_FILE");
    current_name = "LLM_CACHE_SIGNING_KEY";
    previous_name = "LLM_CACHE_SIGNING_KEY_PREVIOUS";
  }
  if (keys.current.empty() && !keys.previous.empty()) {
    throw ConfigurationError(fmt::format(
        "{} is set without {}: a rotation signs with the new key and still accepts the old one",
        previous_name, current_name));
  }
  check_length(keys.current, current_name);
  check_length(keys.previous, previous_name);
  return keys;
}

std::string signing_keys_identity(const core::SigningKeys& keys) {
  if (!keys.enabled()) return {};
  return core::sha256_hex(fmt::format("llm-caching signing keys\n{}\n{}\n{}", keys.current.size(),
                                      keys.current, keys.previous));
}

}  // namespace llm_caching::cache

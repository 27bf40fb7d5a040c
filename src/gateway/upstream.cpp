#include "gateway/upstream.hpp"

#include "core/text.hpp"
#include "llm_caching/errors.hpp"

#include <algorithm>
#include <cstdlib>

namespace llm_caching::gateway {

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

std::pair<Provider, std::string> split_assignment(std::string_view assignment,
                                                  std::string_view flag) {
  const auto equals = assignment.find('=');
  if (equals == std::string_view::npos || equals == 0 || equals + 1 == assignment.size()) {
    throw ConfigurationError(std::string(flag) +
                             " expects provider=VALUE (provider: openai, "
                             "anthropic or gemini)");
  }
  return {parse_provider(assignment.substr(0, equals)), std::string(assignment.substr(equals + 1))};
}

}  // namespace

Upstreams::Upstreams() {
  for (std::size_t i = 0; i < all_.size(); ++i) {
    const providers::ProviderHost& host = providers::default_host(static_cast<Provider>(i));
    all_[i].provider = host.wire;
    all_[i].host = std::string(host.prefix);
    all_[i].base_url = std::string(host.default_base_url);
  }
}

Upstreams Upstreams::from_environment() {
  Upstreams u;
  for (Upstream& upstream : u.all_) {
    const providers::ProviderHost& host = providers::default_host(upstream.provider);
    std::string url = env(std::string(host.base_url_variable).c_str());
    if (!url.empty()) upstream.base_url = core::without_trailing_slashes(std::move(url));
  }
  return u;
}

void Upstreams::set_base_url(std::string_view assignment) {
  auto [provider, url] = split_assignment(assignment, "--upstream");
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    throw ConfigurationError("--upstream " + std::string(to_string(provider)) +
                             ": the URL must start with http:// or https://");
  }
  (*this)[provider].base_url = core::without_trailing_slashes(std::move(url));
}

void Upstreams::set_key_from_env(std::string_view assignment) {
  auto [provider, variable] = split_assignment(assignment, "--upstream-key-env");
  std::string key = env(variable.c_str());
  if (key.empty()) {
    throw ConfigurationError("--upstream-key-env " + std::string(to_string(provider)) + ": $" +
                             variable + " is unset or empty");
  }
  if (key.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    throw ConfigurationError("--upstream-key-env " + std::string(to_string(provider)) + ": $" +
                             variable +
                             " has a line break (a trailing newline from a file?); remove it");
  }
  (*this)[provider].api_key = std::move(key);
}

}  // namespace llm_caching::gateway

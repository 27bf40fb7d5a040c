// Where the gateway sends misses: one endpoint per provider, read from the environment and the
// flags at start.
#pragma once

#include "gateway/http_types.hpp"
#include "llm_caching/cache_key.hpp"
#include "providers/http_model.hpp"

#include <array>
#include <string>
#include <string_view>

namespace llm_caching::gateway {

/// Where misses for one provider go: its base URL and the configured keys (none by default: the
/// caller's own key is forwarded). The same endpoint type as the library's: one provider client.
using Upstream = providers::ProviderEndpoint;

class Upstreams {
 public:
  /// The providers' public endpoints, no keys.
  Upstreams();
  /// From OPENAI_BASE_URL, ANTHROPIC_BASE_URL, GEMINI_BASE_URL, else the public endpoints. No
  /// keys: by default the caller's own key is forwarded. Read once, at the gateway's start.
  static Upstreams from_environment();

  /// Applies "provider=URL" (as given to --upstream). Throws ConfigurationError for an unknown
  /// provider or a URL that is not http(s)://.
  void set_base_url(std::string_view assignment);
  /// Applies "provider=ENV_VAR": the key is read from that variable now (the key itself never
  /// appears on a command line). Throws ConfigurationError when it is unset or empty.
  void set_key_from_env(std::string_view assignment);

  const Upstream& operator[](Provider p) const { return all_[static_cast<std::size_t>(p)]; }
  Upstream& operator[](Provider p) { return all_[static_cast<std::size_t>(p)]; }

 private:
  std::array<Upstream, 3> all_;
};

/// The model that sends one caller's miss upstream over the worker's client: the provider
/// client (providers/http_model.hpp) with the caller's headers and credential forwarded.
using UpstreamModel = providers::HttpModel;

}  // namespace llm_caching::gateway

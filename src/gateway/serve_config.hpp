// `llm-caching serve --config FILE`: the gateway's settings as a JSON file (docs/GATEWAY.md,
// "Config file"). Every field is optional; command-line flags override the file.
#pragma once

#include "gateway/upstream.hpp"
#include "llm_caching/costs.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::gateway {

/// One provider's entry under "upstreams".
struct UpstreamFileSettings {
  std::optional<std::string> base_url;  ///< http(s)://..., trailing slashes removed
  /// From "api_key", or read now from the variable named by "api_key_env". A secret: never
  /// logged, never in a key or an entry. Empty: none configured.
  std::string api_key;
  /// "replace_caller_key": true sends api_key instead of the caller's key; false (default) sends
  /// it only when the caller sends none.
  bool replace_caller_key = false;
};

/// The file's fields; an absent field is nullopt (the flag's default applies).
struct ServeFileSettings {
  std::optional<std::string> listen;     ///< HOST:PORT
  std::optional<std::string> cache_url;  ///< as --cache-url
  std::optional<std::string> log_level;
  std::optional<std::string> mode;     ///< as --mode
  std::optional<std::string> prices;   ///< as --prices: a price file, ours or LiteLLM's
  std::optional<std::string> ca_file;  ///< as --ca-file: extra CA for upstream TLS
  std::optional<bool> share_cache_across_keys;
  std::optional<bool> reject_unpriced;
  std::optional<bool> require_key;
  std::optional<std::int64_t> threads;
  std::optional<std::int64_t> body_limit;
  std::optional<std::int64_t> l1_mb;
  std::optional<std::int64_t> ttl;
  std::optional<std::int64_t> max_wait_ms;
  std::optional<std::int64_t> initial_wait_ms;
  std::optional<std::int64_t> upstream_timeout_ms;
  std::optional<std::int64_t> connect_timeout_ms;
  std::optional<std::int64_t> upstream_idle_timeout_ms;
  std::optional<std::int64_t> request_timeout_ms;
  std::optional<std::int64_t> shutdown_grace_ms;
  std::optional<std::int64_t> max_wait_cap_ms;
  std::optional<std::int64_t> max_connections;
  std::optional<std::int64_t> max_body_bytes_in_flight;
  std::optional<std::int64_t> max_header_fields;
  std::optional<std::int64_t> max_header_bytes;
  std::optional<std::int64_t> max_request_line;
  std::optional<std::int64_t> max_upstream_response_bytes;
  std::optional<std::int64_t> header_timeout_ms;
  std::optional<std::int64_t> stale_while_revalidate;            ///< seconds, as the flag
  std::optional<std::int64_t> stale_if_error;                    ///< seconds, as the flag
  std::array<std::optional<UpstreamFileSettings>, 3> upstreams;  ///< indexed by Provider
  /// As --budget and --soft-budget: arrays of specs (llm_caching/budget.hpp), checked here.
  std::vector<std::string> budgets;
  std::vector<std::string> soft_budgets;
};

/// Parses a config file's text. `file_name` only names the file in errors. Throws
/// ConfigurationError naming the file, the field and what is wrong: not JSON, not an object,
/// unknown field, wrong type, value out of range, bad URL, unknown provider, unset key variable.
/// Error messages never contain a key.
ServeFileSettings parse_serve_config(std::string_view text, const std::string& file_name);

/// Reads and parses the file; an unreadable file is a ConfigurationError too.
ServeFileSettings load_serve_config(const std::filesystem::path& file);

/// Applies the file's upstream entries: base URLs, then keys (fallback or replacing).
void apply_upstream_settings(const ServeFileSettings& settings, Upstreams& upstreams);

struct ListenAddress {
  std::string host;  ///< without IPv6 brackets
  std::uint16_t port = 0;
};
/// "HOST:PORT" ("[::1]:8080" for IPv6). Throws ConfigurationError starting with `what`.
ListenAddress parse_listen_address(std::string_view text, std::string_view what);

/// Resolves a listen host given by name ("localhost") to the address to bind, the first the
/// resolver returns; an IP address is returned as it is. Throws ConfigurationError starting with
/// `what` when the name does not resolve.
std::string resolve_listen_host(const std::string& host, std::string_view what);

/// Reads a price file in this project's format (an object with "models", as
/// data/model_costs.json) or LiteLLM's (model_prices_and_context_window.json), told apart by
/// that "models" object. Throws ConfigurationError starting with `what` and naming the file.
CostTable load_price_file(const std::string& path, std::string_view what);

/// What is wrong with an upstream base URL, in words that follow its source's name
/// ("OPENAI_BASE_URL: ..."); empty when it is usable: http:// or https://, then a host, then an
/// optional numeric port and path, no spaces.
std::string upstream_url_problem(std::string_view url);

/// True when an OpenAI-style base URL has no version segment (/v1, /v1beta, /api/v3...): its
/// requests would go to URL/chat/completions, which most servers do not serve.
bool lacks_version_segment(std::string_view url);

}  // namespace llm_caching::gateway

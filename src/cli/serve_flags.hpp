// `llm-caching serve`'s settings as flags: their values, which were given, and how the config
// file and the environment fill the rest (serve_flags.cpp). serve_command.cpp runs the gateway.
#pragma once

#include "cli/commands.hpp"
#include "gateway/serve_config.hpp"
#include "llm_caching/cache_options.hpp"
#include "llm_caching/runtime.hpp"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::cli {

struct ServeFlags {
  std::string config_file;
  /// The options, to tell a flag given on the command line (it wins) from a default (the
  /// config file's value replaces it).
  std::map<std::string, CLI::Option*, std::less<>> options;
  bool given(std::string_view name) const {
    const auto found = options.find(name);
    return found != options.end() && found->second->count() > 0;
  }
  std::string listen = "127.0.0.1:8080";
  /// The cache mode of requests whose headers set none: the flag, else the config file, else
  /// $LLM_CACHE_MODE (apply_environment), else use.
  std::string mode;
  std::vector<std::string> upstreams;
  std::vector<std::string> upstream_key_envs;
  std::string prices;   ///< a price file, ours or LiteLLM's; empty: the built-in table only
  std::string ca_file;  ///< extra CA for upstream TLS; empty: $LLM_CACHING_CA_FILE, if set
  bool share_across_keys = false;
  bool reject_unpriced = false;
  bool require_key = false;
  std::vector<std::string> budgets;       ///< --budget SPEC (llm_caching/budget.hpp)
  std::vector<std::string> soft_budgets;  ///< --soft-budget SPEC: logged, never refused
  bool no_ledger = false;                 ///< --no-ledger: write no ledger records
  std::string ledger_spill_dir;  ///< empty: $LLM_CACHE_LEDGER_SPILL_DIR, else beside the cache
  unsigned threads = 0;
  std::uint64_t body_limit = 8 * kMiB;
  std::uint64_t max_body_bytes_in_flight = 128 * kMiB;
  std::uint64_t max_connections = 0;
  std::uint64_t max_header_fields = 100;
  std::uint64_t max_header_bytes = 64 * 1024;
  std::uint64_t max_request_line = 8 * 1024;
  std::uint64_t max_upstream_response_bytes = 64 * kMiB;
  std::int64_t header_timeout_ms = 10000;
  std::int64_t max_wait_cap_ms = 120000;
  std::uint64_t l1_mib = 64;
  std::int64_t ttl_seconds = 15 * 24 * 3600;
  std::int64_t max_wait_ms = 10000;
  std::int64_t initial_wait_ms = 1000;
  std::int64_t upstream_timeout_ms = 600000;
  std::int64_t connect_timeout_ms = 10000;
  std::int64_t upstream_idle_timeout_ms = 30000;
  std::int64_t request_timeout_ms = 60000;
  std::int64_t shutdown_grace_ms = 30000;
  std::int64_t stale_while_revalidate_seconds = 0;
  std::int64_t stale_if_error_seconds = 0;
  std::string log_level = "info";
};

/// Adds serve's options (all but --config) to `serve`, bound to `flags`.
void add_serve_options(CLI::App& serve, ServeFlags& flags);

/// The stale windows and the mode whose flags were not given, from the environment as the
/// library's runtime reads it (`env`: RuntimeOptions::from_environment). The config file,
/// applied after, wins.
void apply_environment(ServeFlags& flags, const RuntimeOptions& env);

/// Fills every setting whose flag was not given from the config file (flags win).
void apply_file(const gateway::ServeFileSettings& file, GlobalOptions& global, ServeFlags& flags);

}  // namespace llm_caching::cli

// Sub-command registration for the llm-caching CLI. Each adds its sub-commands to the app and
// sets the callback that runs them.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace llm_caching::cli {

struct GlobalOptions {
  std::string cache_url;  ///< --cache-url, else LLM_CACHE_REDIS_URL, else the embedded file
  bool json = false;      ///< --json: machine-readable output
};

void add_cache_commands(CLI::App& app, GlobalOptions& global);

// cache_move_commands.cpp: the commands that walk a whole cache.
void add_export_command(CLI::App& cache_cmd);
void add_unused_command(CLI::App& cache_cmd, GlobalOptions& global);
/// `cache prune --unused`: removes the entries no usage log lists.
void prune_unused(const GlobalOptions& global, const std::vector<std::string>& logs,
                  const std::string& ns);
void add_ask_command(CLI::App& app, GlobalOptions& global);
void add_serve_command(CLI::App& app, GlobalOptions& global);
void add_warm_command(CLI::App& app, GlobalOptions& global);
/// `llm-caching costs` (costs_command.cpp): the ledger's report.
void add_costs_command(CLI::App& app, GlobalOptions& global);
/// `costs models` and `costs import` (costs_prices.cpp).
void add_price_commands(CLI::App& costs, GlobalOptions& global);

/// Prints a parse error as an `llm-caching:` line naming the bad flag or command (with a "did
/// you mean" for a near miss) and returns 2; help, --version and a command's own exit code
/// (CLI::RuntimeError) keep CLI11's handling.
int report_usage_error(const CLI::App& app, const CLI::ParseError& error);

/// A library error message in the CLI's terms: a hint that names a library field
/// (Agent::api_key, custom_costs) names the running command's flag or variable instead. The
/// library's own messages stay as they are for library users.
std::string in_cli_terms(std::string message, const CLI::App& app);

/// "jemalloc 5.3.0" or "glibc malloc": the allocator this program runs on.
std::string allocator_description();

}  // namespace llm_caching::cli

// Sub-command registration for the llm-caching CLI. Each adds its sub-commands to the app and
// sets the callback that runs them.
#pragma once

#include <CLI/CLI.hpp>

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

/// "jemalloc 5.3.0" or "glibc malloc": the allocator this program runs on.
std::string allocator_description();

}  // namespace llm_caching::cli

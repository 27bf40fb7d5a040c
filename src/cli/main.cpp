// llm-caching: the command line. Sub-commands live in cache_commands.cpp, ask_command.cpp, ...
#include "cli/commands.hpp"

#include "llm_caching/errors.hpp"
#include "llmc_commit.hpp"  // generated: the commit built from

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <functional>
#include <iostream>

namespace {

/// Each command's --help lists only its own options: say there that the global ones work too.
void mention_global_options(CLI::App& command) {
  for (CLI::App* sub : command.get_subcommands([](CLI::App*) { return true; })) {
    const std::string footer = sub->get_footer();
    sub->footer(footer + (footer.empty() || footer.back() == '\n' ? "" : "\n") +
                "Global options, before or after the command: --cache-url URL, --json "
                "(see llm-caching --help).");
    mention_global_options(*sub);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace llm_caching;
  CLI::App app{"llm-caching: a cache for LLM calls, with cost tracking and rate-limit handling"};
  // Built when --version is given, not at every start: it asks the allocator.
  app.set_version_flag("--version", std::function<std::string()>([] {
                         return "llm-caching " LLMC_VERSION " (allocator: " +
                                cli::allocator_description() + "), commit " LLMC_COMMIT;
                       }));
  app.require_subcommand(1);
  // Global options may come after the command as well (`llm-caching serve --cache-url URL`,
  // `llm-caching cache stats --json`), where users type them: an option a command does not know
  // falls through to its parent. Set before the commands are added, which inherit it.
  app.fallthrough();
  cli::GlobalOptions global;
  app.add_option(
      "--cache-url", global.cache_url,
      "Cache URL: sqlite:///abs/path.db | memory:// | dir://path (JSON files to commit) | "
      "redis://host:6379/0 | "
      "rediss://... | redis+sentinel://h1:26379,h2:26379/master/0 (default: "
      "$LLM_CACHE_REDIS_URL, else the embedded file under $XDG_CACHE_HOME/llm-caching/); "
      "before or after the command");
  app.add_flag("--json", global.json, "Machine-readable JSON output; before or after the command");
  app.footer(
      "Examples:\n"
      "  llm-caching serve                     # the gateway on 127.0.0.1:8080\n"
      "  llm-caching ask --model openai:gpt-4o-mini -v \"Hello\"\n"
      "  llm-caching cache stats --json --cache-url sqlite:///tmp/llm.db\n"
      "  llm-caching cache key --provider openai --explain request.json\n"
      "  llm-caching cache clear --namespace tests\n"
      "  llm-caching --cache-url dir://tests/llm-cache warm batch.jsonl --concurrency 8\n"
      "  llm-caching costs --since 7d --by task\n"
      "Run 'llm-caching <command> --help' for the options and an example of each command.\n"
      "Exit codes: 0 ok, 1 other failure, 2 configuration or usage error, 3 cache miss "
      "(replay_only, cache get), 4 rate limited, 5 provider error.");
  cli::add_cache_commands(app, global);
  cli::add_ask_command(app, global);
  cli::add_serve_command(app, global);
  cli::add_warm_command(app, global);
  cli::add_costs_command(app, global);
  mention_global_options(app);

  // Warnings (a stale answer served, a cache backend down) go to stderr: stdout carries only
  // the answer or the JSON a script reads.
  spdlog::set_default_logger(spdlog::stderr_color_mt("llm-caching"));
  spdlog::set_level(spdlog::level::warn);
  if (argc <= 1) {
    std::cerr << app.help();
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli::report_usage_error(app, e);
  } catch (const CacheMissError& e) {
    std::cerr << "llm-caching: " << e.what() << '\n';
    return 3;
  } catch (const ConfigurationError& e) {
    std::cerr << "llm-caching: configuration error: " << cli::in_cli_terms(e.what(), app) << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "llm-caching: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

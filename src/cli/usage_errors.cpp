// Usage errors in the CLI's own words: every one exits 2 (the documented code for a
// configuration error) with an `llm-caching:` line that names the bad flag or command, and a
// "did you mean" when a known name is a typo away. CLI11's own exit codes (104-114) and wording
// ("The following argument was not expected") tell a user neither.
#include "cli/commands.hpp"

#include <algorithm>
#include <iostream>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::cli {

namespace {

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`: a swap counts once, as
/// `cahce` for `cache` is one slip of the fingers, not two.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  std::iota(d[0].begin(), d[0].end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

/// The closest of `names` to `typed`, if close enough to be a typo (at most 2 edits, and fewer
/// than half its letters: `-x` suggests nothing).
std::string closest(std::string_view typed, const std::vector<std::string>& names) {
  std::string best;
  std::size_t best_distance = 3;
  for (const std::string& name : names) {
    const std::size_t distance = edit_distance(typed, name);
    if (distance < best_distance && distance * 2 < typed.size()) {
      best = name;
      best_distance = distance;
    }
  }
  return best;
}

/// The command that was being parsed: the deepest one the arguments named.
const CLI::App* current_command(const CLI::App& app) {
  const CLI::App* command = &app;
  for (;;) {
    const std::vector<const CLI::App*> parsed =
        command->get_subcommands([](const CLI::App* sub) { return sub->parsed(); });
    if (parsed.empty()) return command;
    command = parsed.front();
  }
}

std::string command_path(const CLI::App* command) {
  std::string path;
  for (; command != nullptr; command = command->get_parent()) {
    path = command->get_parent() ? " " + command->get_name() + path : "llm-caching" + path;
  }
  return path;
}

/// The options a command accepts: its own and, as options fall through, its parents'.
std::vector<std::string> option_names(const CLI::App* command) {
  std::vector<std::string> names;
  for (; command != nullptr; command = command->get_parent()) {
    for (const CLI::Option* option : command->get_options()) {
      for (const std::string& n : option->get_lnames()) names.push_back("--" + n);
      for (const std::string& n : option->get_snames()) names.push_back("-" + n);
    }
  }
  return names;
}

std::vector<std::string> command_names(const CLI::App* command) {
  std::vector<std::string> names;
  for (const CLI::App* sub : command->get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  return names;
}

/// "stats, get, rm"
std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

/// "unknown option '--modle' for llm-caching ask; did you mean '--model'?"
std::string describe_unknown(const CLI::App* command, const std::string& token) {
  const std::string where = command_path(command);
  if (token.starts_with("-")) {
    const std::string flag = token.substr(0, token.find('='));  // --modle=x names --modle
    const std::string guess = closest(flag, option_names(command));
    return "unknown option '" + flag + "' for " + where +
           (guess.empty() ? "" : "; did you mean '" + guess + "'?");
  }
  const std::vector<std::string> commands = command_names(command);
  if (commands.empty()) return "unexpected argument '" + token + "' for " + where;
  const std::string guess = closest(token, commands);
  return "unknown command '" + token + "' for " + where +
         (guess.empty() ? " (commands: " + joined(commands) + ")"
                        : "; did you mean '" + guess + "'?");
}

/// A library hint and what a CLI user does instead, per command ("" for every command).
struct Rewording {
  std::string_view command;
  std::string_view library_words;
  std::string_view cli_words;
};

constexpr Rewording kRewordings[] = {
    {"", " or Agent::api_key", ""},
    {"ask", " or Agent::base_url", " or --base-url"},
    {"", " or Agent::base_url", ""},
    {"ask", "pass custom_costs or load a LiteLLM price file",
     "give its price with --price IN,OUT (USD per million tokens) or a price file with --prices "
     "FILE"},
    {"serve", "pass custom_costs or load a LiteLLM price file",
     "give a price file with --prices FILE"},
    {"", "--ca-file, LLM_CACHING_CA_FILE or HttpClientOptions", "--ca-file or LLM_CACHING_CA_FILE"},
};

}  // namespace

std::string in_cli_terms(std::string message, const CLI::App& app) {
  const CLI::App* top = current_command(app);
  while (top->get_parent() && top->get_parent()->get_parent()) top = top->get_parent();
  const std::string& command = top->get_name();
  for (const Rewording& r : kRewordings) {
    if (!r.command.empty() && r.command != command) continue;
    const auto at = message.find(r.library_words);
    if (at != std::string::npos) message.replace(at, r.library_words.size(), r.cli_words);
  }
  return message;
}

int report_usage_error(const CLI::App& app, const CLI::ParseError& error) {
  // Help and --version are not errors; a command's own exit code (CLI::RuntimeError) is final.
  if (error.get_exit_code() == 0 || error.get_name() == "RuntimeError") return app.exit(error);
  const CLI::App* command = current_command(app);
  // An unknown word explains more than what it caused ("--model is required" after "--modle"),
  // so it is named first whatever CLI11 stopped at.
  const std::vector<std::string> unknown = app.remaining(true);
  std::string message;
  if (!unknown.empty()) {
    message = describe_unknown(command, unknown.front());
  } else if (error.get_name() == "RequiredError" && command->get_require_subcommand_min() > 0 &&
             command->get_subcommands().empty()) {
    message = command_path(command) + " needs a command (" + joined(command_names(command)) + ")";
  } else if (command->get_parent() == nullptr) {
    message = error.what();
  } else {
    // "ask: --model is required": the command, without the program name the line starts with.
    message =
        command_path(command).substr(std::string_view("llm-caching ").size()) + ": " + error.what();
  }
  std::cerr << "llm-caching: " << message << "\nRun '" << command_path(command)
            << " --help' for its options.\n";
  return 2;
}

}  // namespace llm_caching::cli

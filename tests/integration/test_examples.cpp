// The examples are documentation that must keep working: each one runs here against the fake
// provider, configured only through the environment as a real deployment would be, and its
// output is checked for what the README promises. The README's library snippets are checked to
// be excerpts of the examples, so they compile as written.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/object.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/fake_provider.hpp"
#include "support/test_env.hpp"

extern char** environ;

namespace {

constexpr const char* kApiKey = "sk-examples-test-secret-4711";

struct ExampleRun {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool is_proxy_variable(const std::string& entry) {
  for (const char* name : {"http_proxy=", "https_proxy=", "all_proxy=", "no_proxy=", "HTTP_PROXY=",
                           "HTTPS_PROXY=", "ALL_PROXY=", "NO_PROXY="}) {
    if (entry.starts_with(name)) return true;
  }
  return false;
}

// The child's environment: ours, minus proxies and any provider configuration, plus `extra`.
std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (is_proxy_variable(entry) || entry.starts_with("OPENAI_") ||
        entry.starts_with("LLM_CACHE_")) {
      continue;
    }
    env.push_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// Runs `path args...` to completion with `env`; stdout through a pipe, stderr into a file.
ExampleRun run_program(const std::string& path, const std::vector<std::string>& args,
                       const std::vector<std::string>& env, const std::string& stderr_file) {
  int out_pipe[2];
  if (pipe(out_pipe) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_file.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);

  std::vector<std::string> argv_text{path};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_text = env;
  std::vector<char*> envp;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  if (spawned != 0) {
    close(out_pipe[0]);
    throw std::runtime_error("cannot start " + path + ": " + std::strerror(spawned));
  }
  ExampleRun run;
  char buffer[4096];
  for (ssize_t n; (n = read(out_pipe[0], buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    run.out.append(buffer, static_cast<std::size_t>(n));
  }
  close(out_pipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.err = read_file(stderr_file);
  return run;
}

std::int64_t to_int(const std::string& text) {
  return std::stoll(text);
}

// The first capture group of `pattern` in `text`; fails the test when there is no match.
std::string capture(const std::string& text, const std::string& pattern) {
  std::smatch match;
  if (!std::regex_search(text, match, std::regex(pattern))) {
    ADD_FAILURE() << "no match for /" << pattern << "/ in:\n" << text;
    return "";
  }
  return match[1].str();
}

std::int64_t count_of(const std::string& text, const std::string& needle) {
  std::int64_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

class ExamplesTest : public ::testing::Test {
 protected:
  ExampleRun run(const char* path, const std::vector<std::string>& args = {}) {
    const std::vector<std::string> env = child_environment({
        "OPENAI_BASE_URL=" + fake_.base_url() + "/v1",
        std::string("OPENAI_API_KEY=") + kApiKey,
        "LLM_CACHE_REDIS_URL=sqlite://" + dir_.file("x.db"),
    });
    ExampleRun result = run_program(path, args, env, dir_.file("stderr.txt"));
    // Whatever happened, the key never shows.
    EXPECT_EQ(result.out.find(kApiKey), std::string::npos) << result.out;
    EXPECT_EQ(result.err.find(kApiKey), std::string::npos) << result.err;
    return result;
  }

  std::int64_t provider_calls() const {
    return fake_.stats().at("total").to_number<std::int64_t>();
  }
  std::int64_t behaviour_calls(const char* behaviour) const {
    const boost::json::object stats = fake_.stats();
    const auto* n = stats.at("behaviors").as_object().if_contains(behaviour);
    return n ? n->to_number<std::int64_t>() : 0;
  }

  llmc_test::TempDir dir_;
  llmc_test::FakeProvider fake_;
};

TEST_F(ExamplesTest, BasicMissesOnceThenEveryCallIsAHit) {
  const ExampleRun first = run(LLMC_EXAMPLE_01_BASIC_PATH);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_GT(std::stod(capture(first.out, R"(sync: MISS, \$([-0-9.e]+): echo: Hello)")), 0.0);
  // The coroutine asks the same question: answered from the cache, billed nothing.
  EXPECT_NE(first.out.find("awaitable: HIT, $0 (avoided $"), std::string::npos) << first.out;

  const ExampleRun second = run(LLMC_EXAMPLE_01_BASIC_PATH);
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(second.out.find("sync: HIT, $0: echo: Hello"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("awaitable: HIT"), std::string::npos) << second.out;
  EXPECT_EQ(provider_calls(), 1);
}

TEST_F(ExamplesTest, TypedHistorySendsTheStructAndParsesATypedAnswer) {
  const ExampleRun r = run(LLMC_EXAMPLE_02_TYPED_HISTORY_PATH);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // The profile's JSON reached the provider as the last history message before the prompt...
  EXPECT_NE(r.out.find("history as JSON: MISS: echo: Analyze this profile"), std::string::npos)
      << r.out;
  // ... and the struct itself is the same message, so the same key.
  EXPECT_NE(r.out.find("history as struct: HIT (same request, same key: yes)"), std::string::npos)
      << r.out;
  // The fake answers a schema with "x" for strings, one array item, true for booleans.
  EXPECT_NE(r.out.find("typed: MISS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("summary: x\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("suggested_topics: 1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("likes_machine_learning: true\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"(as JSON: {"summary":"x","suggested_topics":["x"],)"
                       R"("likes_machine_learning":true})"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(provider_calls(), 2);  // the text answer and the typed answer
}

TEST_F(ExamplesTest, ConverterShapesTheHistoryAndRecordersSeeMissThenHit) {
  const ExampleRun r = run(LLMC_EXAMPLE_03_CONVERTER_AND_RECORDER_PATH);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("  assistant: Hi! How can I help?\n"
                       "  user: The user waves.\n"
                       "  user: a plain string\n"
                       "  user: 42\n"
                       "  user: Hello\n"
                       "  assistant: echo: Hello ["),
            std::string::npos)
      << r.out;
  // One call per run: the seed's recorder on the miss, the Expense recorder on the hit.
  EXPECT_EQ(count_of(r.out, "Cost for "), 1) << r.out;
  EXPECT_GT(std::stod(capture(r.out, R"(Cost for openai:gpt-4o-mini on chat: \$([-0-9.e]+)\n)")),
            0.0);
  EXPECT_EQ(count_of(r.out, "Expense: "), 1) << r.out;
  EXPECT_GT(to_int(capture(r.out, R"(Expense: openai:gpt-4o-mini / chat: HIT, cost 0 nano-USD, )"
                                  R"(avoided ([0-9]+) nano-USD)")),
            0);
  EXPECT_EQ(provider_calls(), 1);
}

TEST_F(ExamplesTest, CustomCostsPriceTheCallAsComputedByHand) {
  const ExampleRun r = run(LLMC_EXAMPLE_04_CUSTOM_COSTS_PATH);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string usage_pattern =
      R"(usage: ([0-9]+) input, ([0-9]+) output, ([0-9]+) cache-write, ([0-9]+) cache-read)";
  std::smatch usage;
  ASSERT_TRUE(std::regex_search(r.out, usage, std::regex(usage_pattern))) << r.out;
  const std::int64_t input = to_int(usage[1]), output = to_int(usage[2]);
  const std::int64_t cache_write = to_int(usage[3]), cache_read = to_int(usage[4]);
  EXPECT_GT(input, 0);
  EXPECT_GT(output, 0);
  // $1.0, $2.0, $0.5, $0.1 per million tokens = 1000, 2000, 500, 100 nano-USD per token.
  const std::int64_t expected = input * 1000 + output * 2000 + cache_write * 500 + cache_read * 100;
  EXPECT_EQ(to_int(capture(r.out, R"(library: ([0-9]+) nano-USD)")), expected) << r.out;
  EXPECT_EQ(to_int(capture(r.out, R"(by hand: .* = ([0-9]+) nano-USD)")), expected) << r.out;
}

TEST_F(ExamplesTest, RateLimitsAreRiddenOutWithinMaxWait) {
  // Two 429s with retry-after-ms: 50, then an answer.
  const ExampleRun r = run(LLMC_EXAMPLE_05_RATE_LIMITS_PATH, {"openai:gpt-4o-mini+429ms-2"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("answered (MISS, "), std::string::npos) << r.out;
  EXPECT_EQ(behaviour_calls("429ms-2"), 3);
}

TEST_F(ExamplesTest, RateLimitPastMaxWaitIsARateLimitErrorAndExitStatus75) {
  const ExampleRun r =
      run(LLMC_EXAMPLE_05_RATE_LIMITS_PATH, {"openai:gpt-4o-mini+429ms-1000", "0.2"});
  EXPECT_EQ(r.exit_code, 75) << r.out << r.err;
  const std::int64_t attempts =
      to_int(capture(r.out, R"(rate limited: gave up after ([0-9]+) attempts)"));
  EXPECT_GE(attempts, 2);
  EXPECT_LE(to_int(capture(r.out, R"(attempts and ([0-9]+) ms of waiting)")), 200);
  EXPECT_NE(r.out.find("(the provider last asked for 50 ms)"), std::string::npos) << r.out;
  EXPECT_EQ(behaviour_calls("429ms-1000"), attempts);
}

TEST_F(ExamplesTest, ErrorHandlingCatchesEachKind) {
  const ExampleRun r = run(LLMC_EXAMPLE_06_ERROR_HANDLING_PATH, {"openai:gpt-4o-mini+429-5"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("unpriced model: Configuration error: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("my-unpriced-model"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no provider: Configuration error: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("replay only: Not in the cache: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("provider unreachable: Provider error (HTTP 0, transport): "),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("rate limited: Rate limit exceeded after 1 attempts: "), std::string::npos)
      << r.out;
  // Only the rate-limited call reached the provider: the others failed before any call
  // (replay_only included) or went to the unreachable address.
  EXPECT_EQ(provider_calls(), 1);
  EXPECT_EQ(behaviour_calls("429-5"), 1);
}

TEST_F(ExamplesTest, ErrorHandlingWithAPatientProviderJustAnswers) {
  const ExampleRun r = run(LLMC_EXAMPLE_06_ERROR_HANDLING_PATH);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("rate limited: answered: echo: Hello"), std::string::npos) << r.out;
}

// ---- the README's library section ----------------------------------------------------------

std::string trim(const std::string& line) {
  const auto first = line.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return line.substr(first, line.find_last_not_of(" \t") - first + 1);
}

// Lines with indentation removed, so an excerpt from inside a function matches the README.
std::vector<std::string> trimmed_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(trim(line));
  return lines;
}

// ```cpp blocks between "## The library" and the next "## " heading.
std::vector<std::string> readme_library_snippets() {
  const std::string readme = read_file(LLMC_README_PATH);
  const auto begin = readme.find("\n## The library\n");
  if (begin == std::string::npos) return {};
  const auto end = readme.find("\n## ", begin + 1);
  const std::string section = readme.substr(begin, end - begin);
  std::vector<std::string> snippets;
  for (std::size_t at = section.find("```cpp\n"); at != std::string::npos;
       at = section.find("```cpp\n", at)) {
    at += 7;
    const auto close = section.find("```", at);
    snippets.push_back(section.substr(at, close - at));
    at = close + 3;
  }
  return snippets;
}

// Regions of the examples between "// [readme:NAME]" and "// [/readme:NAME]".
std::vector<std::pair<std::string, std::string>> example_regions() {
  std::vector<std::pair<std::string, std::string>> regions;
  const std::regex region(R"(// \[readme:([a-z-]+)\]\n([\s\S]*?)[ \t]*// \[/readme:\1\])");
  for (const auto& file : std::filesystem::directory_iterator(LLMC_EXAMPLES_SOURCE_DIR)) {
    if (file.path().extension() != ".cpp") continue;
    const std::string text = read_file(file.path().string());
    for (std::sregex_iterator it(text.begin(), text.end(), region), last; it != last; ++it) {
      regions.emplace_back(file.path().filename().string() + ":" + (*it)[1].str(), (*it)[2].str());
    }
  }
  return regions;
}

TEST(ReadmeLibrarySection, EverySnippetIsAnExcerptOfAnExample) {
  const auto snippets = readme_library_snippets();
  const auto regions = example_regions();
  ASSERT_GE(snippets.size(), 6u) << "the README's library section shows the examples";
  for (const std::string& snippet : snippets) {
    bool found = false;
    for (const auto& [name, text] : regions)
      found = found || trimmed_lines(text) == trimmed_lines(snippet);
    EXPECT_TRUE(found) << "README snippet is not a marked region of examples/*.cpp "
                          "(// [readme:NAME] ... // [/readme:NAME]):\n"
                       << snippet;
  }
}

TEST(ReadmeLibrarySection, EveryMarkedRegionIsShownInTheReadme) {
  const auto snippets = readme_library_snippets();
  for (const auto& [name, text] : example_regions()) {
    bool shown = false;
    for (const std::string& s : snippets) shown = shown || trimmed_lines(text) == trimmed_lines(s);
    EXPECT_TRUE(shown) << name << " is marked for the README but the README does not show it";
  }
}

}  // namespace

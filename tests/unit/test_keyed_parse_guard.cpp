// Keyed paths parse request bodies with parse_json_exact only (DESIGN §3, issue 28). Boost.JSON's
// own parsers round about one in seven full-precision doubles to the wrong neighbour, so a body
// parsed with them keys differently from the same body at the gateway. This test reads the
// sources of every keyed path and fails on a Boost.JSON parser there, unless the line (or the
// comment line above it) says `// not keyed: <why>`.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

const fs::path kSourceDir = fs::path(LLMC_SOURCE_DIR) / "src";

/// The parse functions and parser classes of Boost.JSON (a using-declaration would let a bare
/// `parse(` through, so it counts too).
const std::regex kParser(R"(json::(parse\s*[(;]|parser\b|stream_parser\b|basic_parser\b))");

/// A parse that is not keyed must say why, on its line or on the comment line above.
const std::regex kAllow(R"(//\s*not keyed:\s*\S)");

/// Parsers the guard accepts in files it cannot annotate, each with the reason.
struct Exemption {
  const char* file;  // relative to src/
  const char* line;  // the exact statement, trimmed
  const char* why;
};
const Exemption kExemptions[] = {
    {"agent/typed_output.cpp", "boost::json::parser parser;",
     "turns the model's structured output into a typed value; output is never keyed"},
};

struct Finding {
  std::string file;
  int line = 0;
  std::string text;
};

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return std::string(s.substr(first, s.find_last_not_of(" \t\r") - first + 1));
}

/// The code of a line: string and character literals emptied and a `//` comment cut off (a
/// comment or message that names a parser is not a call).
std::string code_part(std::string_view line) {
  std::string code;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
        code += c;
      }
      continue;
    }
    if (c == '/' && i + 1 < line.size() && line[i + 1] == '/') break;
    if (c == '"' || c == '\'') quote = c;
    code += c;
  }
  return code;
}

bool exempt(const std::string& file, std::string_view line) {
  return std::any_of(std::begin(kExemptions), std::end(kExemptions),
                     [&](const Exemption& e) { return file == e.file && trim(line) == e.line; });
}

/// Every Boost.JSON parser in `text` (the source of `file`) that carries no allow-comment, on
/// its line or in the block of comment lines right above it.
std::vector<Finding> scan(const std::string& file, const std::string& text) {
  std::vector<Finding> findings;
  std::istringstream lines(text);
  std::string line;
  bool comments_above_allow = false;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (trim(line).starts_with("//")) {
      comments_above_allow = comments_above_allow || std::regex_search(line, kAllow);
      continue;
    }
    const bool allowed = comments_above_allow || std::regex_search(line, kAllow);
    comments_above_allow = false;
    if (!std::regex_search(code_part(line), kParser) || allowed || exempt(file, line)) continue;
    findings.push_back({file, number, trim(line)});
  }
  return findings;
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool is_source(const fs::path& path) {
  return path.extension() == ".cpp" || path.extension() == ".hpp";
}

/// The keyed paths, relative to src/: the CLI (`cache key`), the agent (builds the requests the
/// library keys), the gateway's routes, and every other file that derives a key or parses a body
/// for one. The core files that define the key and the exact parser are not callers.
std::vector<std::string> keyed_sources() {
  std::vector<std::string> files;
  for (const char* dir : {"cli", "agent"}) {
    for (const auto& entry : fs::directory_iterator(kSourceDir / dir)) {
      if (is_source(entry.path())) files.push_back(fs::relative(entry.path(), kSourceDir));
    }
  }
  files.push_back("gateway/routes.cpp");
  files.push_back("gateway/route_llm.cpp");
  for (const auto& entry : fs::recursive_directory_iterator(kSourceDir)) {
    if (!is_source(entry.path())) continue;
    const std::string name = fs::relative(entry.path(), kSourceDir);
    // The implementation of parse_json_exact itself, and the key derivation it feeds.
    if (name == "core/cache_key.cpp" || name == "core/canonical_json.cpp" ||
        name == "core/parse_exact.cpp") {
      continue;
    }
    const std::string text = read(entry.path());
    if (text.find("derive_key(") != std::string::npos ||
        text.find("parse_json_exact(") != std::string::npos) {
      files.push_back(name);
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  return files;
}

TEST(KeyedParseGuard, FlagsEveryBoostParserWithoutAReason) {
  const std::string source = R"(
  json::value a = json::parse(text, ec);
  auto b = boost::json::parse (text);
  using boost::json::parse;
  boost::json::stream_parser p;
  json::parser q;
  json::basic_parser<Handler> r(opts);
)";
  const auto findings = scan("cli/x.cpp", source);
  ASSERT_EQ(findings.size(), 6u);
  EXPECT_EQ(findings[0].line, 2);
  EXPECT_EQ(findings[0].text, "json::value a = json::parse(text, ec);");
  EXPECT_EQ(findings[5].line, 7);
}

TEST(KeyedParseGuard, AcceptsTheExactParserCommentsAndAnnotatedLines) {
  const std::string source = R"(
  json::value a = parse_json_exact(text, ec, &duplicate);
  // Never use json::parse( here: it mis-rounds.
  const char* s = "see json::parse(";  // a string, not a call
  // not keyed: a stored answer, printed for a person, which a comment of two lines
  // explains.
  json::value b = json::parse(stored, ec);
  json::value c = json::parse(stored, ec);  // not keyed: the config file
)";
  EXPECT_TRUE(scan("cli/x.cpp", source).empty());
}

TEST(KeyedParseGuard, AnAllowCommentMustGiveAReasonAndSitNextToTheParse) {
  EXPECT_EQ(scan("cli/x.cpp", "json::parse(t);  // not keyed:\n").size(), 1u);
  EXPECT_EQ(scan("cli/x.cpp", "// not keyed: far away\n\njson::parse(t);\n").size(), 1u);
  EXPECT_EQ(scan("cli/x.cpp", "// not keyed: one\njson::parse(t);\njson::parse(u);\n").size(), 1u);
  // A comment after the parse does not count for it.
  EXPECT_EQ(scan("cli/x.cpp", "json::parse(t);\n// not keyed: too late\n").size(), 1u);
  // A `//` inside a string does not hide the code after it.
  EXPECT_EQ(scan("cli/x.cpp", "f(\"http://h\"); json::parse(t);\n").size(), 1u);
}

TEST(KeyedParseGuard, ExemptionsNameOneStatementInOneFile) {
  EXPECT_TRUE(scan("agent/typed_output.cpp", "  boost::json::parser parser;\n").empty());
  EXPECT_EQ(scan("cli/cache_commands.cpp", "  boost::json::parser parser;\n").size(), 1u);
}

TEST(KeyedParseGuard, KeyedSourcesParseBodiesOnlyWithParseJsonExact) {
  const std::vector<std::string> files = keyed_sources();
  // A wrong source directory would make the guard pass vacuously.
  for (const char* must : {"cli/cache_commands.cpp", "gateway/routes.cpp", "gateway/route_llm.cpp",
                           "agent/agent.cpp", "exchange/exchange.cpp"}) {
    EXPECT_NE(std::find(files.begin(), files.end(), must), files.end()) << must;
  }
  std::vector<Finding> findings;
  for (const std::string& file : files) {
    const std::string text = read(kSourceDir / file);
    ASSERT_FALSE(text.empty()) << file;
    for (Finding& f : scan(file, text)) findings.push_back(std::move(f));
  }
  for (const Finding& f : findings) {
    ADD_FAILURE() << "src/" << f.file << ":" << f.line << ": " << f.text
                  << "\n  a keyed path must parse request bodies with llm_caching::"
                     "parse_json_exact (DESIGN §3); if this parse is not keyed, say why with "
                     "`// not keyed: <reason>` on the line or the comment line above";
  }
}

TEST(KeyedParseGuard, TheKeyCommandAndTheGatewayUseTheExactParser) {
  for (const char* file : {"cli/cache_commands.cpp", "gateway/route_llm.cpp"}) {
    EXPECT_NE(read(kSourceDir / file).find("parse_json_exact("), std::string::npos) << file;
  }
}

}  // namespace

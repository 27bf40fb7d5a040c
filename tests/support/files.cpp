// Test helpers for files and shell commands (files.hpp).
#include "support/files.hpp"

#include "core/sha256.hpp"

#include <fstream>
#include <sstream>

namespace llmc_test {

namespace fs = std::filesystem;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::map<std::string, std::string> tree_hashes(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& f : fs::recursive_directory_iterator(root)) {
    if (f.is_regular_file()) {
      out[fs::relative(f.path(), root).string()] =
          llm_caching::core::sha256_hex(slurp(f.path()));
    }
  }
  return out;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace llmc_test

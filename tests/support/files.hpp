// Test helpers for files and shell commands: a file's bytes, a tree's hashes (to show that a run
// left a recorded directory byte-identical) and a shell-quoted argument.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace llmc_test {

/// The bytes of `path` ("" when it cannot be read).
std::string slurp(const std::filesystem::path& path);

/// Every regular file under `root`, hidden ones included: its path relative to root -> the
/// sha256 of its bytes.
std::map<std::string, std::string> tree_hashes(const std::filesystem::path& root);

/// `s` as one POSIX shell word, in single quotes.
std::string quote(const std::string& s);

}  // namespace llmc_test

// The file operations of the `dir://` backend (dir_backend.hpp): whole-file reads, atomic writes
// (a temporary file renamed over the target), directories, and where the cross-process lock
// file lives.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace llm_caching::cache::dir_files {

/// strerror(errno).
std::string errno_text();
/// The whole file; nullopt when it does not exist. Throws CacheError on other failures.
std::optional<std::string> read_file(const std::filesystem::path& path);
/// Writes `text` to a new temporary file beside `path`, then renames it over `path`: a reader
/// sees the old file or the new one, never a part. Throws CacheError naming the file.
void write_atomically(const std::filesystem::path& path, std::string_view text);
/// Creates `dir` and its parents; throws CacheError when it is not a directory afterwards.
void make_directories(const std::filesystem::path& dir);
/// The lock file for the tree at `root` (which must exist): $TMPDIR/llm-caching-<uid>/
/// dir-<device>-<inode>.locks, in a folder created 0700 and checked to be this user's alone.
std::filesystem::path lock_file_for(const std::filesystem::path& root);

}  // namespace llm_caching::cache::dir_files

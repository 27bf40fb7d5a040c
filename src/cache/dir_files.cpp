#include "cache/dir_files.hpp"

#include "llm_caching/errors.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace llm_caching::cache::dir_files {

namespace fs = std::filesystem;

std::string errno_text() {
  return std::strerror(errno);
}

/// The whole file; nullopt when it does not exist. Throws CacheError on other failures.
std::optional<std::string> read_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw CacheError(fmt::format("cannot read the cache file {}: {}", path.string(), errno_text()));
  }
  std::string text;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) text.reserve(static_cast<std::size_t>(st.st_size));
  char buffer[16384];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      text.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      const std::string why = errno_text();
      ::close(fd);
      throw CacheError(fmt::format("cannot read the cache file {}: {}", path.string(), why));
    }
  }
  ::close(fd);
  return text;
}

/// Writes `text` to a new temporary file beside `path`, then renames it over `path`.
void write_atomically(const fs::path& path, std::string_view text) {
  static std::atomic<std::uint64_t> counter{0};
  const fs::path temp = path.parent_path() / fmt::format(".{}.{}.{}.tmp", path.filename().string(),
                                                         ::getpid(), ++counter);
  // 0644 less the umask: these files are meant for a repository, like any source file.
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw CacheError(
        fmt::format("cannot write the cache file {}: {}", temp.string(), errno_text()));
  }
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = errno_text();
      ::close(fd);
      ::unlink(temp.c_str());
      throw CacheError(fmt::format("cannot write the cache file {}: {}", temp.string(), why));
    }
    written += static_cast<std::size_t>(n);
  }
  // No fsync: a recorded answer can be recorded again, and the rename alone already keeps
  // readers from ever seeing part of a file.
  if (::close(fd) != 0 || ::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(temp.c_str());
    throw CacheError(fmt::format("cannot write the cache file {}: {}", path.string(), why));
  }
}

void make_directories(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw CacheError(fmt::format("cannot create the cache directory {}: {}", dir.string(),
                                 ec ? ec.message() : "it exists and is not a directory"));
  }
}

/// This user's folder for lock files in the temp directory: created 0700, and refused unless it
/// is a directory this user owns that no one else may write (another user could otherwise plant
/// a file or link there).
namespace {

fs::path private_lock_folder() {
  std::error_code ec;
  fs::path tmp = fs::temp_directory_path(ec);
  if (ec) tmp = "/tmp";
  const fs::path folder = tmp / fmt::format("llm-caching-{}", ::getuid());
  if (::mkdir(folder.c_str(), 0700) != 0 && errno != EEXIST) {
    throw CacheError(
        fmt::format("cannot create the lock folder {}: {}", folder.string(), errno_text()));
  }
  struct stat st {};
  if (::lstat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid() ||
      (st.st_mode & 022) != 0) {
    throw CacheError(fmt::format(
        "the lock folder {} is not a directory of this user that only it may write; remove it "
        "(or set TMPDIR elsewhere)",
        folder.string()));
  }
  return folder;
}

}  // namespace

/// The side file of the directory's cross-process locks, outside the tree (it must stay clean):
/// named from the directory's device and inode, so every path to it shares one lock file.
fs::path lock_file_for(const fs::path& root) {
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) {
    throw CacheError(
        fmt::format("cannot open the cache directory {}: {}", root.string(), errno_text()));
  }
  return private_lock_folder() / fmt::format("dir-{:x}-{:x}.locks",
                                             static_cast<std::uint64_t>(st.st_dev),
                                             static_cast<std::uint64_t>(st.st_ino));
}

}  // namespace llm_caching::cache::dir_files

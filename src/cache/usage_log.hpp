// LLM_CACHE_USAGE_LOG: the storage keys of the entries a run read, one a line, so that
// `llm-caching cache unused --since-log FILE` can list (and `cache prune --unused` remove) the
// recorded entries no test uses any more (docs/TESTING.md).
#pragma once

#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace llm_caching::cache {

class UsageLog {
 public:
  /// Opens `path` for appending (created 0644; parallel test processes may share one file).
  /// Throws ConfigurationError naming the file and the variable when it cannot be opened.
  explicit UsageLog(std::filesystem::path path);
  ~UsageLog();
  UsageLog(const UsageLog&) = delete;
  UsageLog& operator=(const UsageLog&) = delete;

  /// Appends `key` once per process: one write(2) of the whole line, which O_APPEND keeps whole
  /// among other processes' lines. A failed write is logged once and otherwise ignored: the log
  /// is a report, not part of answering.
  void record(std::string_view key);

  const std::filesystem::path& path() const noexcept { return path_; }

  /// The keys a log lists (blank lines ignored). Throws ConfigurationError naming the file when
  /// it cannot be read.
  static std::unordered_set<std::string> read(const std::filesystem::path& path);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::mutex mutex_;
  std::unordered_set<std::string> seen_;  // guarded by mutex_
  bool warned_ = false;                   // guarded by mutex_
};

}  // namespace llm_caching::cache

#include "cache/usage_log.hpp"

#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace llm_caching::cache {

UsageLog::UsageLog(std::filesystem::path path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw ConfigurationError(fmt::format("LLM_CACHE_USAGE_LOG: cannot open {} for appending: {}",
                                         path_.string(), std::strerror(errno)));
  }
}

UsageLog::~UsageLog() {
  if (fd_ >= 0) ::close(fd_);
}

void UsageLog::record(std::string_view key) {
  std::lock_guard lock(mutex_);
  if (!seen_.emplace(key).second) return;
  std::string line(key);
  line.push_back('\n');
  const ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size()) && !warned_) {
    warned_ = true;
    spdlog::warn("LLM_CACHE_USAGE_LOG: cannot append to {}: {}; the log will be incomplete",
                 path_.string(), n < 0 ? std::strerror(errno) : "short write");
  }
}

std::unordered_set<std::string> UsageLog::read(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw ConfigurationError(fmt::format("cannot read the usage log {}", path.string()));
  }
  std::unordered_set<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) keys.insert(line);
  }
  return keys;
}

}  // namespace llm_caching::cache

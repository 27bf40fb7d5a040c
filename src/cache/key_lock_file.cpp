#include "cache/key_lock_file.hpp"

#include "cache/fnv1a.hpp"

#include "llm_caching/errors.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace llm_caching::cache {

std::uint64_t lock_byte_of(std::string_view key) noexcept {
  return fnv1a64(key) & 0x3fffffffffffffffULL;  // a byte offset well inside off_t
}

KeyLockFile::KeyLockFile(std::filesystem::path path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    throw CacheError(
        fmt::format("cannot open the lock file {}: {}", path_.string(), std::strerror(errno)));
  }
}

KeyLockFile::~KeyLockFile() {
  ::close(fd_);  // releases every lock this object still holds
}

namespace {

struct flock one_byte(std::uint64_t byte, short type) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = static_cast<off_t>(byte);
  lock.l_len = 1;
  lock.l_pid = 0;  // required for OFD locks
  return lock;
}

}  // namespace

bool KeyLockFile::set(std::uint64_t byte, short type) {
  struct flock lock = one_byte(byte, type);
  if (::fcntl(fd_, F_OFD_SETLK, &lock) == 0) return true;
  if (errno == EAGAIN || errno == EACCES) return false;
  throw CacheError(fmt::format("cannot {} a lock in {}: {}", type == F_UNLCK ? "release" : "take",
                               path_.string(), std::strerror(errno)));
}

bool KeyLockFile::try_lock(std::string_view key, std::string_view token,
                           std::chrono::milliseconds ttl, std::int64_t now_ms) {
  const std::int64_t expires_at = now_ms + std::max<std::int64_t>(ttl.count(), 1);
  std::lock_guard lock(mutex_);
  if (auto found = held_.find(std::string(key)); found != held_.end()) {
    // Held here already (the file lock is ours): only a token past its ttl is taken over.
    if (found->second.expires_at_ms > now_ms) return false;
    found->second = Held{std::string(token), expires_at};
    return true;
  }
  const std::uint64_t byte = lock_byte_of(key);
  int& holders = held_bytes_[byte];
  if (holders == kReleasing) return false;  // still ours until unlock's fcntl returns
  if (holders == 0 && !set(byte, F_WRLCK)) {
    held_bytes_.erase(byte);
    return false;
  }
  ++holders;
  held_.emplace(std::string(key), Held{std::string(token), expires_at});
  return true;
}

void KeyLockFile::unlock(std::string_view key, std::string_view token) {
  const std::uint64_t byte = lock_byte_of(key);
  {
    std::lock_guard lock(mutex_);
    const auto found = held_.find(std::string(key));
    if (found == held_.end() || found->second.token != token) return;
    held_.erase(found);
    int& holders = held_bytes_[byte];
    if (--holders > 0) return;  // another key of this object shares the byte
    holders = kReleasing;
  }
  // The system call runs outside the mutex. In the gateway most unlocks come from the cache's
  // write-behind thread, which runs at idle priority: any other thread that wakes on its CPU
  // preempts it. Preempted inside the call while holding the mutex, it would keep every worker that
  // takes or tests a lock waiting until its CPU had nothing else to do (a priority inversion; up
  // to 2.2 ms measured). Until the call returns, the byte reads as held, so no try_lock can take it
  // and then lose it to this F_UNLCK.
  try {
    set(byte, F_UNLCK);
  } catch (...) {
    std::lock_guard lock(mutex_);
    held_bytes_.erase(byte);
    throw;
  }
  std::lock_guard lock(mutex_);
  held_bytes_.erase(byte);
}

bool KeyLockFile::is_locked(std::string_view key, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  if (auto found = held_.find(std::string(key)); found != held_.end()) {
    return found->second.expires_at_ms > now_ms;
  }
  struct flock probe = one_byte(lock_byte_of(key), F_WRLCK);
  if (::fcntl(fd_, F_OFD_GETLK, &probe) != 0) {
    throw CacheError(
        fmt::format("cannot test a lock in {}: {}", path_.string(), std::strerror(errno)));
  }
  return probe.l_type != F_UNLCK;
}

boost::asio::awaitable<void> KeyLockFile::wait_until_unlocked(
    std::string key, std::chrono::milliseconds at_most, std::function<std::int64_t()> now_ms,
    std::chrono::milliseconds longest_pause) {
  const auto until = std::chrono::steady_clock::now() + at_most;
  auto pause = std::chrono::milliseconds(1);
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  while (is_locked(key, now_ms())) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) break;
    timer.expires_at(std::min(now + pause, until));
    co_await timer.async_wait(boost::asio::use_awaitable);
    pause = std::min(pause * 2, longest_pause);
  }
}

}  // namespace llm_caching::cache

// Cross-process locks per key for the SQLite L2 (docs/SINGLE_FLIGHT.md): one byte of a side file
// per key, held with an open file description lock (fcntl F_OFD_SETLK). Taking or releasing one
// is a system call, not a database commit, and the kernel frees a holder's locks when its
// descriptor closes: a holder killed with SIGKILL releases at once instead of at a TTL.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace llm_caching::cache {

/// The byte of the lock file that stands for `key`: 62 bits of its FNV-1a 64 hash. Two keys that
/// share a byte only make one wait for the other's call; they never share an answer.
std::uint64_t lock_byte_of(std::string_view key) noexcept;

class KeyLockFile {
 public:
  /// Opens `path`, creating it with mode 0600. Throws CacheError naming the file.
  explicit KeyLockFile(std::filesystem::path path);
  ~KeyLockFile();
  KeyLockFile(const KeyLockFile&) = delete;
  KeyLockFile& operator=(const KeyLockFile&) = delete;

  /// Takes `key` for `token` unless another holder has it: another descriptor of the file (another
  /// process, or another backend of this one), or another token of this object whose `ttl` has
  /// not passed at `now_ms`. Throws CacheError on an unexpected fcntl failure.
  bool try_lock(std::string_view key, std::string_view token, std::chrono::milliseconds ttl,
                std::int64_t now_ms);
  /// Releases `key` if `token` holds it here; otherwise does nothing.
  void unlock(std::string_view key, std::string_view token);
  /// Whether `key` is held: by a token of this object (its ttl not passed), or by another
  /// descriptor of the file.
  bool is_locked(std::string_view key, std::int64_t now_ms);

  /// Polls is_locked (1 ms, doubling up to `longest_pause`) until `key` is free or `at_most` has
  /// passed. Testing the lock is one system call: a waiter answers within a few milliseconds of
  /// the holder's release (or of its death).
  boost::asio::awaitable<void> wait_until_unlocked(std::string key,
                                                   std::chrono::milliseconds at_most,
                                                   std::function<std::int64_t()> now_ms,
                                                   std::chrono::milliseconds longest_pause);

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  struct Held {
    std::string token;
    std::int64_t expires_at_ms = 0;
  };
  /// F_OFD_SETLK on `byte`; false when another descriptor holds it.
  bool set(std::uint64_t byte, short type);

  /// held_bytes_'s count for a byte that unlock is releasing outside the mutex.
  static constexpr int kReleasing = -1;

  std::filesystem::path path_;
  int fd_ = -1;
  std::mutex mutex_;
  std::unordered_map<std::string, Held> held_;         // guarded by mutex_
  std::unordered_map<std::uint64_t, int> held_bytes_;  // byte → keys holding it; guarded by mutex_
};

}  // namespace llm_caching::cache

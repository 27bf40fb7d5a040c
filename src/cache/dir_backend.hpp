// `dir://PATH`: a cache a test suite commits (docs/TESTING.md). One readable JSON file per entry
// (dir_document.hpp), at PATH/<namespace>/<sha256 hex>.json; a key of another form (the generic
// backend tests use some) goes to PATH/.other/<sha256 of the key>.json.
//
// Writes go to a temporary file in the same folder, renamed over the entry's file: a reader (or
// a parallel test runner) sees the old file or the new one, never a part. Reads write nothing (no
// access times), so a replay leaves the tree byte-identical. Entries never expire: the put's TTL
// is ignored and prune removes nothing (`cache prune --unused` removes what a run did not read).
// The cross-process locks (single-flight) are bytes of a side file in this user's folder of the
// temp directory ($TMPDIR/llm-caching-<uid>/, 0700), named from the directory's device and
// inode, so the tree holds only entries.
#pragma once

#include "cache/backend.hpp"
#include "cache/key_lock_file.hpp"
#include "cache/redactor.hpp"
#include "core/entry.hpp"
#include "llm_caching/cache_options.hpp"

#include <atomic>
#include <filesystem>
#include <memory>
#include <string_view>

namespace llm_caching::cache {

class DirBackend final : public Backend {
 public:
  /// Creates the directory (and parents) when missing. Throws CacheError naming it when it
  /// cannot be created or is not a directory, ConfigurationError for a bad redaction pattern.
  explicit DirBackend(DirOptions options, NowMs now_ms = system_now_ms);

  /// A file that is not a valid document (hand-broken, truncated, another key's) throws
  /// CacheError naming the file: a miss, logged, where the tiers degrade; an error when strict.
  asio::awaitable<std::optional<std::string>> get(std::string key) override;
  /// `value` must be an encoded entry to be readable; other bytes are kept as base64. An
  /// unsigned entry whose file already holds the same answer recorded by another task is not
  /// rewritten: the file keeps the task that recorded it first.
  asio::awaitable<void> put(std::string key, std::string value,
                            std::chrono::milliseconds ttl) override;
  asio::awaitable<bool> erase(std::string key) override;
  asio::awaitable<std::uint64_t> clear(std::string prefix) override;
  /// Nothing expires here: returns 0.
  asio::awaitable<std::uint64_t> prune() override;
  /// entries and bytes: the files, counted now.
  asio::awaitable<BackendStats> stats() override;
  /// One page with every matching key, sorted.
  asio::awaitable<KeyPage> list_keys(std::string prefix, std::string cursor,
                                     std::size_t limit) override;
  std::string describe() const override;
  asio::awaitable<bool> try_lock(std::string lock_key, std::string token,
                                 std::chrono::milliseconds ttl) override;
  asio::awaitable<void> unlock(std::string lock_key, std::string token) override;
  /// Polls the lock file: 1 ms, doubling up to 16 ms (as SqliteBackend does).
  asio::awaitable<void> wait_for_unlock(std::string lock_key,
                                        std::chrono::milliseconds at_most) override;
  bool notifies_unlock() const noexcept override { return true; }
  std::string unreadable_reason(const std::string& key) override;
  std::string entry_location(const std::string& key) const override {
    return file_of(key).string();
  }
  std::string stored_form(const std::string& key, std::string encoded) const override;
  bool erases_refused_entries() const noexcept override { return false; }
  /// The clear mark is a side file beside the lock file (`<lock file>.cleared`), outside the tree,
  /// so the tree a test suite commits holds only entries.
  bool keeps_clear_mark() const noexcept override { return true; }
  asio::awaitable<std::uint64_t> read_clear_mark() override;
  asio::awaitable<void> write_clear_mark() override;

  // The same operations without a coroutine frame (local files: they block briefly).
  std::optional<std::string> get_now(std::string_view key);
  void put_now(std::string_view key, std::string_view value);
  bool erase_now(std::string_view key);
  std::uint64_t clear_now(std::string_view prefix);
  BackendStats stats_now();
  std::vector<std::string> keys_now(std::string_view prefix);

  /// The file that holds `key` (whether or not it exists).
  std::filesystem::path file_of(std::string_view key) const;
  const std::filesystem::path& root() const noexcept { return root_; }

 private:
  /// Reads and checks the file of `key`: nullopt when absent; throws CacheError when invalid.
  std::optional<std::string> read(std::string_view key);
  /// Whether `existing` (a file's text) is `entry`'s unsigned document but for the task: the
  /// same answer, recorded first by another task.
  bool same_but_task(std::string_view key, const core::CacheEntry& entry,
                     const std::string& existing) const;
  /// The key a file of the tree holds, or "" for files that are not entries.
  std::string key_of(const std::filesystem::path& folder, const std::filesystem::path& file);
  /// Calls f(key, file) for every entry file of the tree.
  template <class F>
  void for_each_entry(F&& f);

  std::filesystem::path root_;  // absolute
  Redactor redact_;
  NowMs now_ms_;
  std::unique_ptr<KeyLockFile> locks_;
  std::filesystem::path clear_mark_file_;
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> errors_{0};
};

/// A namespace as a folder name: bytes outside [A-Za-z0-9._-], and a leading '.', as %XX, so no
/// namespace names a hidden folder, `..`, or a path.
std::string dir_folder_name(std::string_view namespace_);

}  // namespace llm_caching::cache

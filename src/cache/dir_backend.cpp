// The `dir://` backend's operations (see dir_backend.hpp).
#include "cache/dir_backend.hpp"

#include "cache/dir_document.hpp"
#include "cache/dir_files.hpp"
#include "core/entry.hpp"
#include "core/entry_signature.hpp"
#include "core/sha256.hpp"
#include "llm_caching/errors.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <system_error>

namespace llm_caching::cache {

namespace fs = std::filesystem;
using dir_files::errno_text;
using dir_files::lock_file_for;
using dir_files::make_directories;
using dir_files::read_file;
using dir_files::write_atomically;

namespace {

constexpr std::string_view kKeyPrefix = "llm-caching:v1:";
constexpr std::string_view kOtherFolder = ".other";
constexpr std::string_view kSuffix = ".json";

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

/// A storage key's namespace and digest; nullopt for keys of another form.
std::optional<std::pair<std::string_view, std::string_view>> split_key(std::string_view key) {
  if (!key.starts_with(kKeyPrefix)) return std::nullopt;
  key.remove_prefix(kKeyPrefix.size());
  const std::size_t colon = key.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const std::string_view ns = key.substr(0, colon);
  const std::string_view hex = key.substr(colon + 1);
  if (!is_hex64(hex) || ns.find(':') != std::string_view::npos) return std::nullopt;
  return std::make_pair(ns, hex);
}

/// dir_folder_name's inverse; nullopt for names it never writes.
std::optional<std::string> namespace_of_folder(std::string_view name) {
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '%') {
      out.push_back(name[i]);
      continue;
    }
    if (i + 2 >= name.size()) return std::nullopt;
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(name.data() + i + 1, name.data() + i + 3, value, 16);
    if (ec != std::errc() || end != name.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

}  // namespace

std::string dir_folder_name(std::string_view namespace_) {
  std::string out;
  for (std::size_t i = 0; i < namespace_.size(); ++i) {
    const auto c = static_cast<unsigned char>(namespace_[i]);
    const bool plain = std::isalnum(c) != 0 || c == '_' || c == '-' || (c == '.' && i > 0);
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

DirBackend::DirBackend(DirOptions options, NowMs now_ms)
    : root_(fs::absolute(options.path).lexically_normal()),
      redact_(options.redact, "LLM_CACHE_REDACT"),
      now_ms_(std::move(now_ms)) {
  if (root_.filename().empty()) root_ = root_.parent_path();  // "dir:///a/b/" names a/b
  make_directories(root_);
  const fs::path lock_file = lock_file_for(root_);
  locks_ = std::make_unique<KeyLockFile>(lock_file);
  clear_mark_file_ = fs::path(lock_file).replace_extension(".cleared");
}

asio::awaitable<std::uint64_t> DirBackend::read_clear_mark() {
  std::optional<std::string> text;
  try {
    text = read_file(clear_mark_file_);
  } catch (...) {
    ++errors_;
    throw;
  }
  std::uint64_t mark = 0;
  if (text) std::from_chars(text->data(), text->data() + text->size(), mark);
  co_return mark;
}

asio::awaitable<void> DirBackend::write_clear_mark() {
  try {
    write_atomically(clear_mark_file_, std::to_string(new_clear_mark()));
  } catch (...) {
    ++errors_;
    throw;
  }
  co_return;
}

fs::path DirBackend::file_of(std::string_view key) const {
  if (const auto parts = split_key(key)) {
    return root_ / dir_folder_name(parts->first) / (std::string(parts->second) + ".json");
  }
  return root_ / kOtherFolder / (core::sha256_hex(key) + ".json");
}

std::optional<std::string> DirBackend::read(std::string_view key) {
  const fs::path path = file_of(key);
  std::optional<std::string> text = read_file(path);
  if (!text) return std::nullopt;
  auto parsed = parse_document(*text);
  if (const auto* why = std::get_if<std::string>(&parsed)) {
    throw CacheError(fmt::format(
        "the cache file {} cannot be read: {}; fix it, or delete it to record the answer again",
        path.string(), *why));
  }
  auto& document = std::get<ParsedDocument>(parsed);
  if (document.key != key) {
    throw CacheError(fmt::format(
        "the cache file {} holds the entry of another key ({}); a file is named from its key: "
        "move it back, or delete it to record the answer again",
        path.string(), document.key));
  }
  return std::move(document.value);
}

std::optional<std::string> DirBackend::get_now(std::string_view key) {
  try {
    std::optional<std::string> value = read(key);
    ++(value ? hits_ : misses_);
    return value;
  } catch (...) {
    ++errors_;
    throw;
  }
}

std::string DirBackend::unreadable_reason(const std::string& key) {
  try {
    read(key);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

void DirBackend::put_now(std::string_view key, std::string_view value) {
  try {
    auto decoded = core::decode_entry(value);
    const auto* entry = std::get_if<core::CacheEntry>(&decoded);
    const std::string_view mac = entry != nullptr ? core::entry_mac(value) : std::string_view();
    const std::string text =
        entry != nullptr ? entry_document(key, *entry, redact_, mac) : raw_document(key, value);
    const fs::path path = file_of(key);
    // The same bytes already there (an answer recorded again), or the same answer recorded
    // first by another task: leave the file alone.
    if (const auto existing = read_file(path);
        existing && (*existing == text ||
                     (entry != nullptr && mac.empty() && same_but_task(key, *entry, *existing)))) {
      return;
    }
    make_directories(path.parent_path());
    write_atomically(path, text);
    ++writes_;
  } catch (...) {
    ++errors_;
    throw;
  }
}

bool DirBackend::same_but_task(std::string_view key, const core::CacheEntry& entry,
                               const std::string& existing) const {
  std::string first = document_task(existing);
  if (first.empty() || first == entry.task) return false;
  core::CacheEntry as_first = entry;
  as_first.task = std::move(first);
  return existing == entry_document(key, as_first, redact_);
}

std::string DirBackend::stored_form(const std::string& key, std::string encoded) const {
  // What a get of this put returns: the document's round trip (canonical JSON, redactions,
  // created_at 0). A signed entry's MAC must be made over these bytes, not the caller's.
  auto decoded = core::decode_entry(encoded);
  const auto* entry = std::get_if<core::CacheEntry>(&decoded);
  if (entry == nullptr) return encoded;
  auto parsed = parse_document(entry_document(key, *entry, redact_));
  if (auto* document = std::get_if<ParsedDocument>(&parsed)) return std::move(document->value);
  throw CacheError(fmt::format("an entry for {} cannot be kept as a document: {}", key,
                               std::get<std::string>(parsed)));
}

bool DirBackend::erase_now(std::string_view key) {
  const fs::path path = file_of(key);
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  ++errors_;
  throw CacheError(fmt::format("cannot delete the cache file {}: {}", path.string(), errno_text()));
}

std::string DirBackend::key_of(const fs::path& folder, const fs::path& file) {
  const std::string name = file.filename().string();
  if (name.starts_with('.') || !name.ends_with(kSuffix)) return {};
  if (folder.filename() == kOtherFolder) {
    const auto text = read_file(file);
    if (!text) return {};
    const auto parsed = parse_document(*text);
    const auto* document = std::get_if<ParsedDocument>(&parsed);
    return document != nullptr ? document->key : std::string();
  }
  const std::string_view hex = std::string_view(name).substr(0, name.size() - kSuffix.size());
  const auto ns = namespace_of_folder(folder.filename().string());
  if (!is_hex64(hex) || !ns || ns->empty() || dir_folder_name(*ns) != folder.filename()) return {};
  return fmt::format("{}{}:{}", kKeyPrefix, *ns, hex);
}

template <class F>
void DirBackend::for_each_entry(F&& f) {
  std::error_code ec;
  for (fs::directory_iterator folders(root_, ec), end; !ec && folders != end;
       folders.increment(ec)) {
    if (!folders->is_directory(ec)) continue;
    const fs::path folder = folders->path();
    const std::string folder_name = folder.filename().string();
    if (folder_name.starts_with('.') && folder_name != kOtherFolder) continue;
    std::error_code inner;
    for (fs::directory_iterator files(folder, inner), stop; !inner && files != stop;
         files.increment(inner)) {
      if (!files->is_regular_file(inner)) continue;
      const std::string key = key_of(folder, files->path());
      if (!key.empty()) f(key, *files);
    }
    if (inner) ec = inner;
  }
  if (ec) {
    ++errors_;
    throw CacheError(
        fmt::format("cannot list the cache directory {}: {}", root_.string(), ec.message()));
  }
}

std::vector<std::string> DirBackend::keys_now(std::string_view prefix) {
  std::vector<std::string> keys;
  for_each_entry([&](const std::string& key, const fs::directory_entry&) {
    if (std::string_view(key).starts_with(prefix)) keys.push_back(key);
  });
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::uint64_t DirBackend::clear_now(std::string_view prefix) {
  std::uint64_t removed = 0;
  for (const std::string& key : keys_now(prefix)) removed += erase_now(key) ? 1 : 0;
  return removed;
}

BackendStats DirBackend::stats_now() {
  BackendStats stats;
  for_each_entry([&](const std::string&, const fs::directory_entry& file) {
    std::error_code ec;
    const auto size = file.file_size(ec);
    ++stats.entries;
    if (!ec) stats.bytes += size;
  });
  stats.hits = hits_;
  stats.misses = misses_;
  stats.writes = writes_;
  stats.errors = errors_;
  return stats;
}

asio::awaitable<std::optional<std::string>> DirBackend::get(std::string key) {
  co_return get_now(key);
}
asio::awaitable<void> DirBackend::put(std::string key, std::string value,
                                      std::chrono::milliseconds ttl) {
  if (ttl.count() >= 0) put_now(key, value);  // a negative ttl stores nothing, as elsewhere
  co_return;
}
asio::awaitable<bool> DirBackend::erase(std::string key) {
  co_return erase_now(key);
}
asio::awaitable<std::uint64_t> DirBackend::clear(std::string prefix) {
  co_return clear_now(prefix);
}
asio::awaitable<std::uint64_t> DirBackend::prune() {
  co_return 0;
}
asio::awaitable<BackendStats> DirBackend::stats() {
  co_return stats_now();
}
asio::awaitable<Backend::KeyPage> DirBackend::list_keys(std::string prefix, std::string cursor,
                                                        std::size_t limit) {
  (void)cursor, (void)limit;
  KeyPage page;
  page.keys = keys_now(prefix);
  co_return page;
}
std::string DirBackend::describe() const {
  return "dir://" + root_.string();
}
asio::awaitable<bool> DirBackend::try_lock(std::string lock_key, std::string token,
                                           std::chrono::milliseconds ttl) {
  co_return locks_->try_lock(lock_key, token, ttl, now_ms_());
}
asio::awaitable<void> DirBackend::unlock(std::string lock_key, std::string token) {
  locks_->unlock(lock_key, token);
  co_return;
}

asio::awaitable<void> DirBackend::wait_for_unlock(std::string lock_key,
                                                  std::chrono::milliseconds at_most) {
  co_await locks_->wait_until_unlocked(std::move(lock_key), at_most, now_ms_,
                                       std::chrono::milliseconds(16));
}

}  // namespace llm_caching::cache

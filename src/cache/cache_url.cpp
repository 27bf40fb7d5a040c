// Cache URL parsing (DESIGN §5): the scheme, the SQLite and memory forms, password masking and
// the backend's identity. The Redis forms are in cache_url_redis.cpp, the query parameters and
// percent-decoding in cache_url_params.cpp.
#include "cache/cache_url.hpp"

#include "cache/cache_url_params.hpp"
#include "cache/cache_url_redis.hpp"
#include "cache/redactor.hpp"
#include "core/text.hpp"

#include "llm_caching/errors.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <limits>
#include <utility>

namespace llm_caching::cache {
namespace {

using url::fail;
using url::parse_query;
using url::parse_unsigned;
using url::percent_decode;
using url::reject_unknown_params;

constexpr std::string_view kAcceptedForms =
    "accepted forms: \"\" (the embedded default SQLite file), "
    "sqlite:///absolute/path/cache.db[?max_bytes=1GiB&busy_timeout_ms=5000&mmap_size=64MiB], "
    "memory://[?max_bytes=64MiB], dir://relative/path or dir:///absolute/path, "
    "redis://[[user]:[password]@]host[:port][/db], "
    "rediss://... (TLS), redis+sentinel://[user:password@]h1:26379,h2:26379/master[/db], "
    "redis+cluster://[user:password@]h1:7000,h2:7001 or rediss+cluster://... (TLS)";

const char* env_or_null(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

SqliteOptions parse_sqlite(std::string_view rest, std::string_view query, std::string_view url) {
  if (rest.empty()) fail("a SQLite URL needs a file: sqlite:///absolute/path/cache.db", url);
  if (rest.front() != '/') {
    fail(fmt::format("the SQLite path must be absolute; write sqlite:///absolute/path/cache.db "
                     "(three slashes), e.g. sqlite:///{}",
                     rest),
         url);
  }
  SqliteOptions options;
  options.path = percent_decode(rest, url);
  if (rest.back() == '/') fail("the SQLite path names a directory, not a file", url);
  const auto params = parse_query(query, url);
  reject_unknown_params(params, {"max_bytes", "busy_timeout_ms", "mmap_size"}, url);
  if (auto it = params.find("max_bytes"); it != params.end()) {
    options.max_bytes = parse_byte_size(it->second, "cache URL parameter max_bytes");
  }
  if (auto it = params.find("busy_timeout_ms"); it != params.end()) {
    const std::uint64_t ms = parse_unsigned(it->second, "cache URL parameter busy_timeout_ms");
    if (ms > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
      fail("busy_timeout_ms is too large", url);
    }
    options.busy_timeout = std::chrono::milliseconds(ms);
  }
  if (auto it = params.find("mmap_size"); it != params.end()) {
    // 0 is meaningful here (no memory map), unlike for a size bound.
    options.mmap_bytes =
        it->second == "0" ? 0 : parse_byte_size(it->second, "cache URL parameter mmap_size");
  }
  return options;
}

MemoryOptions parse_memory(std::string_view rest, std::string_view query, std::string_view url) {
  if (!rest.empty()) fail("memory:// takes no host or path, only ?max_bytes=", url);
  MemoryOptions options;
  const auto params = parse_query(query, url);
  reject_unknown_params(params, {"max_bytes"}, url);
  if (auto it = params.find("max_bytes"); it != params.end()) {
    options.max_bytes = parse_byte_size(it->second, "cache URL parameter max_bytes");
  }
  return options;
}

DirOptions parse_dir(std::string_view rest, std::string_view query, std::string_view url) {
  if (rest.empty()) {
    fail("a dir:// URL needs a directory: dir://relative/path or dir:///absolute/path", url);
  }
  if (!parse_query(query, url).empty()) fail("dir:// takes no query parameters", url);
  DirOptions options;
  options.path = percent_decode(rest, url);
  return options;
}

bool is_scheme(std::string_view s) {
  return !s.empty() && std::isalpha(static_cast<unsigned char>(s.front())) &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) {
           return std::isalnum(c) != 0 || c == '+' || c == '-' || c == '.';
         });
}

std::string mask_query_passwords(std::string_view query) {
  std::string out;
  while (true) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    const std::size_t eq = item.find('=');
    if (eq != std::string_view::npos &&
        core::lowercase(item.substr(0, eq)).find("pass") != std::string::npos) {
      out.append(item.substr(0, eq + 1)).append("***");
    } else {
      out.append(item);
    }
    if (amp == std::string_view::npos) return out;
    out.push_back('&');
    query = query.substr(amp + 1);
  }
}

}  // namespace

std::string mask_url_password(std::string_view url) {
  // Everything after "scheme://" (or the whole string when there is no "://": a URL missing its
  // scheme may still carry "user:pass@host").
  const std::size_t sep = url.find("://");
  const bool has_scheme = sep != std::string_view::npos && is_scheme(url.substr(0, sep));
  const std::size_t start = has_scheme ? sep + 3 : 0;
  std::string out(url.substr(0, start));
  std::string_view rest = url.substr(start);

  // The user-info ends at the LAST '@': passwords with an unencoded '@' or '/' are still masked
  // whole. A rest starting with '/' has an empty authority (sqlite:///path@x) and no user-info.
  const std::size_t at = rest.rfind('@');
  if (at != std::string_view::npos && !rest.starts_with('/')) {
    const std::string_view userinfo = rest.substr(0, at);
    const std::size_t colon = userinfo.find(':');
    if (colon != std::string_view::npos) {
      out.append(userinfo.substr(0, colon + 1)).append("***");
      rest = rest.substr(at);
    }
  }
  const std::size_t q = rest.find('?');
  if (q == std::string_view::npos) return out.append(rest);
  out.append(rest.substr(0, q + 1));
  return out.append(mask_query_passwords(rest.substr(q + 1)));
}

std::uint64_t parse_byte_size(std::string_view text, std::string_view what) {
  std::size_t digits_end = 0;
  while (digits_end < text.size() && std::isdigit(static_cast<unsigned char>(text[digits_end]))) {
    ++digits_end;
  }
  const std::string unit = core::lowercase(text.substr(digits_end));
  static constexpr std::pair<std::string_view, std::uint64_t> kUnits[] = {
      {"", 1},
      {"b", 1},
      {"kb", 1000},
      {"mb", 1000 * 1000},
      {"gb", 1000000000},
      {"tb", 1000ull * 1000000000},
      {"kib", 1024},
      {"mib", kMiB},
      {"gib", kGiB},
      {"tib", 1024 * kGiB}};
  const auto found = std::find_if(std::begin(kUnits), std::end(kUnits),
                                  [&](const auto& u) { return u.first == unit; });
  if (digits_end == 0 || found == std::end(kUnits)) {
    throw ConfigurationError(fmt::format(
        "{}: '{}' is not a size; write bytes or a number with KB, MB, GB, TB, KiB, MiB, GiB or "
        "TiB, e.g. 64MiB",
        what, text));
  }
  const std::uint64_t number = parse_unsigned(text.substr(0, digits_end), what);
  if (number == 0) throw ConfigurationError(fmt::format("{}: must be greater than 0", what));
  if (number > std::numeric_limits<std::uint64_t>::max() / found->second) {
    throw ConfigurationError(fmt::format("{}: '{}' is too large", what, text));
  }
  return number * found->second;
}

std::filesystem::path default_cache_file() {
  // XDG says a relative XDG_CACHE_HOME is invalid and must be ignored.
  if (const char* xdg = env_or_null("XDG_CACHE_HOME"); xdg != nullptr && xdg[0] == '/') {
    return std::filesystem::path(xdg) / "llm-caching" / "cache.db";
  }
  if (const char* home = env_or_null("HOME"); home != nullptr && home[0] == '/') {
    return std::filesystem::path(home) / ".cache" / "llm-caching" / "cache.db";
  }
  throw ConfigurationError(
      "cannot place the default cache file: neither XDG_CACHE_HOME nor HOME is set to an absolute "
      "path; set one of them, or pass a cache URL such as sqlite:///absolute/path/cache.db");
}

std::string resolve_cache_url(const CacheOptions& options) {
  if (!options.url.empty()) return options.url;
  if (const char* env = env_or_null("LLM_CACHE_REDIS_URL")) return env;
  return {};
}

BackendConfig parse_cache_url(std::string_view url) {
  if (url.empty()) return SqliteOptions{.path = default_cache_file()};
  const std::size_t sep = url.find("://");
  if (sep == std::string_view::npos || !is_scheme(url.substr(0, sep))) fail(kAcceptedForms, url);
  const std::string scheme = core::lowercase(url.substr(0, sep));
  std::string_view rest = url.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) fail("a fragment ('#') is not allowed", url);
  const std::size_t q = rest.find('?');
  const std::string_view query = q == std::string_view::npos ? "" : rest.substr(q + 1);
  rest = rest.substr(0, q);
  if (scheme == "sqlite") return parse_sqlite(rest, query, url);
  if (scheme == "memory") return parse_memory(rest, query, url);
  if (scheme == "dir") return parse_dir(rest, query, url);
  if (scheme == "redis" || scheme == "rediss" || scheme == "redis+sentinel" ||
      scheme == "redis+cluster" || scheme == "rediss+cluster") {
    return parse_redis_url(scheme, rest, query, url);
  }
  fail(fmt::format("unknown scheme; {}", kAcceptedForms), url);
}

void apply_environment(BackendConfig& config) {
  auto* dir = std::get_if<DirOptions>(&config);
  if (dir == nullptr || !dir->redact.empty()) return;
  if (const char* patterns = env_or_null("LLM_CACHE_REDACT")) {
    dir->redact = Redactor::split_lines(patterns);
  }
}

std::vector<std::string> redact_patterns(const BackendConfig& config) {
  if (const auto* dir = std::get_if<DirOptions>(&config)) return dir->redact;
  const char* patterns = env_or_null("LLM_CACHE_REDACT");
  return patterns != nullptr ? Redactor::split_lines(patterns) : std::vector<std::string>{};
}

std::string describe_config(const BackendConfig& config) {
  if (const auto* sqlite = std::get_if<SqliteOptions>(&config)) {
    return "sqlite://" + sqlite->path.string();
  }
  if (const auto* dir = std::get_if<DirOptions>(&config)) return "dir://" + dir->path.string();
  if (const auto* redis = std::get_if<RedisOptions>(&config)) return redis->masked_url;
  return "memory://";
}

std::string backend_identity(const BackendConfig& config) {
  if (const auto* dir = std::get_if<DirOptions>(&config)) {
    std::string identity =
        "dir:" + std::filesystem::absolute(dir->path).lexically_normal().string();
    // The patterns only as a count and hash: a pattern may hold part of a secret.
    std::string patterns;
    for (const auto& p : dir->redact) patterns += p + '\n';
    return fmt::format("{}?redact={}/{:x}", identity, dir->redact.size(),
                       std::hash<std::string>{}(patterns));
  }
  if (const auto* sqlite = std::get_if<SqliteOptions>(&config)) {
    return fmt::format("sqlite:{}?max_bytes={}&busy_timeout_ms={}&mmap_size={}",
                       sqlite->path.lexically_normal().string(), sqlite->max_bytes,
                       sqlite->busy_timeout.count(), sqlite->mmap_bytes);
  }
  if (const auto* memory = std::get_if<MemoryOptions>(&config)) {
    return fmt::format("memory:?max_bytes={}", memory->max_bytes);
  }
  // Every setting, the passwords only as a hash: two spellings of one server share a pool,
  // and the registry's keys never hold a secret.
  const auto& redis = std::get<RedisOptions>(config);
  std::string hosts;
  for (const auto& e : redis.endpoints) hosts += fmt::format("[{}]:{},", e.host, e.port);
  const auto hash = [](const std::string& s) { return std::hash<std::string>{}(s); };
  return fmt::format(
      "redis:{}{}/{}/{}?user={}&pw={:x}&suser={}&spw={:x}&tls={}&ca={}&cert={}&key={}&verify={}"
      "&ct={}&st={}&pool={}&name={}&replicas={}",
      redis.cluster ? "cluster:" : "", hosts, redis.sentinel_master, redis.db, redis.username,
      hash(redis.password), redis.sentinel_username, hash(redis.sentinel_password),
      redis.tls.enabled, redis.tls.ca_file, redis.tls.cert_file, redis.tls.key_file,
      redis.tls.verify_peer, redis.connect_timeout.count(), redis.command_timeout.count(),
      redis.pool_size, redis.client_name, redis.read_from_replicas);
}

}  // namespace llm_caching::cache

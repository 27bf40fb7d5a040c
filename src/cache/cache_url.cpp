#include "cache/cache_url.hpp"

#include "core/text.hpp"

#include "llm_caching/errors.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <utility>
#include <vector>

namespace llm_caching::cache {
namespace {

constexpr std::string_view kAcceptedForms =
    "accepted forms: \"\" (the embedded default SQLite file), "
    "sqlite:///absolute/path/cache.db[?max_bytes=1GiB&busy_timeout_ms=5000&mmap_size=64MiB], "
    "memory://[?max_bytes=64MiB], redis://[[user]:[password]@]host[:port][/db], "
    "rediss://... (TLS), redis+sentinel://[user:password@]h1:26379,h2:26379/master[/db]";

const char* env_or_null(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

[[noreturn]] void fail(std::string_view problem, std::string_view url) {
  throw ConfigurationError(
      fmt::format("invalid cache URL '{}': {}", mask_url_password(url), problem));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text, std::string_view url) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const int hi = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_digit(text[i + 2]) : -1;
    if (lo < 0) fail("a '%' must be followed by two hex digits", url);
    const char decoded = static_cast<char>(hi * 16 + lo);
    if (decoded == '\0') fail("%00 is not allowed", url);
    out.push_back(decoded);
    i += 2;
  }
  return out;
}

/// Query parameters in order of appearance; a repeated or value-less parameter is an error.
std::map<std::string, std::string> parse_query(std::string_view query, std::string_view url) {
  std::map<std::string, std::string> params;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq + 1 == item.size()) {
      fail(fmt::format("query parameter '{}' needs a value (name=value)", item.substr(0, eq)), url);
    }
    std::string name(item.substr(0, eq));
    if (!params.emplace(name, percent_decode(item.substr(eq + 1), url)).second) {
      fail(fmt::format("query parameter '{}' is given twice", name), url);
    }
  }
  return params;
}

void reject_unknown_params(const std::map<std::string, std::string>& params,
                           std::initializer_list<std::string_view> known, std::string_view url) {
  std::vector<std::string> unknown;
  for (const auto& [name, value] : params) {
    if (std::find(known.begin(), known.end(), name) == known.end()) unknown.push_back(name);
  }
  if (unknown.empty()) return;
  fail(fmt::format("unknown query parameter{} {}; accepted here: {}", unknown.size() > 1 ? "s" : "",
                   fmt::join(unknown, ", "), fmt::join(known, ", ")),
       url);
}

std::uint64_t parse_unsigned(std::string_view digits, std::string_view what) {
  if (digits.empty() || digits.size() > 19 ||
      !std::all_of(digits.begin(), digits.end(),
                   [](unsigned char c) { return std::isdigit(c) != 0; })) {
    throw ConfigurationError(
        fmt::format("{}: '{}' is not a non-negative whole number", what, digits));
  }
  std::uint64_t value = 0;
  for (char c : digits) value = value * 10 + static_cast<std::uint64_t>(c - '0');
  return value;
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

// ---- Redis forms ----------------------------------------------------------------------------

/// "2", "0.5", "1.25" (seconds, as redis-py takes them) -> milliseconds, 1 ms .. 1 h.
std::chrono::milliseconds parse_seconds(std::string_view text, std::string_view name,
                                        std::string_view url) {
  const std::size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  const auto digits = [](std::string_view d) {
    return std::all_of(d.begin(), d.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
  };
  if ((whole.empty() && fraction.empty()) || !digits(whole) || !digits(fraction) ||
      whole.size() > 6 || (dot != std::string_view::npos && fraction.empty())) {
    fail(fmt::format("{} must be a number of seconds such as 2 or 0.5, not '{}'", name, text), url);
  }
  std::uint64_t ms = whole.empty() ? 0 : parse_unsigned(whole, name) * 1000;
  std::uint64_t scale = 100;
  for (std::size_t i = 0; i < fraction.size() && scale > 0; ++i, scale /= 10) {
    ms += static_cast<std::uint64_t>(fraction[i] - '0') * scale;
  }
  if (ms < 1 || ms > 3'600'000)
    fail(fmt::format("{} must be between 0.001 and 3600 seconds", name), url);
  return std::chrono::milliseconds(ms);
}

/// "host", "host:port", "[v6]", "[v6]:port".
RedisEndpoint parse_endpoint(std::string_view text, std::uint16_t default_port,
                             std::string_view url) {
  RedisEndpoint endpoint;
  endpoint.port = default_port;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) fail("an IPv6 host is missing its closing ']'", url);
    endpoint.host = std::string(text.substr(1, close - 1));
    const std::string_view after = text.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) fail("expected ':port' after ']'", url);
    if (endpoint.host.empty() ||
        endpoint.host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) {
      fail(fmt::format("'{}' is not an IPv6 address", text.substr(0, close + 1)), url);
    }
    port_text = after.empty() ? std::string_view{} : after.substr(1);
    if (!after.empty() && port_text.empty()) fail("a ':' must be followed by a port", url);
  } else {
    const std::size_t colon = text.find(':');
    endpoint.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = text.substr(colon + 1);
      if (port_text.empty()) fail("a ':' must be followed by a port", url);
      if (port_text.find(':') != std::string_view::npos) {
        fail("an IPv6 host must be written in brackets, e.g. redis://[::1]:6379", url);
      }
    }
    if (endpoint.host.empty()) fail("the host is missing, e.g. redis://localhost:6379/0", url);
    if (endpoint.host.find_first_of(" /\\[]{}<>\"'%") != std::string::npos) {
      fail(fmt::format("'{}' is not a valid host name", endpoint.host), url);
    }
  }
  if (!port_text.empty()) {
    const bool numeric =
        port_text.size() <= 5 && std::all_of(port_text.begin(), port_text.end(),
                                             [](unsigned char c) { return std::isdigit(c) != 0; });
    const std::uint64_t port = numeric ? parse_unsigned(port_text, "port") : 0;
    if (port < 1 || port > 65535) {
      fail(fmt::format("port '{}' is not a number from 1 to 65535", port_text), url);
    }
    endpoint.port = static_cast<std::uint16_t>(port);
  }
  return endpoint;
}

int parse_db(std::string_view text, std::string_view url) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(),
                   [](unsigned char c) { return std::isdigit(c) != 0; })) {
    fail(fmt::format("the database must be a number such as /0, not '{}'", text), url);
  }
  return static_cast<int>(parse_unsigned(text, "db"));
}

/// `user:password@` (both percent-decoded). A user without a password cannot AUTH.
void parse_userinfo(std::string_view userinfo, std::string& user, std::string& password,
                    std::string_view url) {
  const std::size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) {
    fail("a user name needs a password (user:password@host), or write :password@host", url);
  }
  user = percent_decode(userinfo.substr(0, colon), url);
  password = percent_decode(userinfo.substr(colon + 1), url);
  if (password.empty() && !user.empty()) fail("the password after 'user:' is empty", url);
}

void apply_redis_params(RedisOptions& options, const std::map<std::string, std::string>& params,
                        bool tls, bool sentinel, std::string_view url) {
  std::vector<std::string_view> known = {"timeout", "socket_timeout", "socket_connect_timeout",
                                         "db",      "client_name",    "max_connections"};
  if (tls)
    known.insert(known.end(), {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"});
  if (sentinel) known.insert(known.end(), {"sentinel_username", "sentinel_password"});
  for (const auto& [name, value] : params) {
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    if (name.starts_with("ssl_") && !tls) {
      fail(fmt::format("'{}' needs a TLS URL: write rediss:// instead of redis://", name), url);
    }
    fail(fmt::format("unknown query parameter '{}'; accepted here: {}", name,
                     fmt::join(known, ", ")),
         url);
  }
  const auto get = [&](std::string_view name) -> const std::string* {
    auto it = params.find(std::string(name));
    return it == params.end() ? nullptr : &it->second;
  };
  if (get("timeout") && get("socket_timeout")) {
    fail("give either timeout or socket_timeout (they are the same setting), not both", url);
  }
  const std::string* command_timeout =
      get("socket_timeout") ? get("socket_timeout") : get("timeout");
  if (command_timeout) {
    options.command_timeout = parse_seconds(*command_timeout, "socket_timeout", url);
    options.connect_timeout = options.command_timeout;
  }
  if (const auto* v = get("socket_connect_timeout")) {
    options.connect_timeout = parse_seconds(*v, "socket_connect_timeout", url);
  }
  if (const auto* v = get("db")) options.db = parse_db(*v, url);
  if (const auto* v = get("client_name")) {
    if (v->find_first_of(" \r\n") != std::string::npos)
      fail("client_name may not contain spaces", url);
    options.client_name = *v;
  }
  if (const auto* v = get("max_connections")) {
    const std::uint64_t n = parse_unsigned(*v, "cache URL parameter max_connections");
    if (n < 1 || n > 64) fail("max_connections must be from 1 to 64", url);
    options.pool_size = static_cast<std::size_t>(n);
  }
  if (const auto* v = get("ssl_ca_certs")) options.tls.ca_file = *v;
  if (const auto* v = get("ssl_certfile")) options.tls.cert_file = *v;
  if (const auto* v = get("ssl_keyfile")) options.tls.key_file = *v;
  if (options.tls.cert_file.empty() != options.tls.key_file.empty()) {
    fail("ssl_certfile and ssl_keyfile must be given together", url);
  }
  if (const auto* v = get("ssl_cert_reqs")) {
    const std::string reqs = core::lowercase(*v);
    if (reqs == "required") {
      options.tls.verify_peer = true;
    } else if (reqs == "none") {
      options.tls.verify_peer = false;
    } else {
      fail(fmt::format("ssl_cert_reqs must be 'required' or 'none', not '{}'", *v), url);
    }
  }
  if (const auto* v = get("sentinel_username")) {
    options.sentinel_username = *v;
    options.sentinel_auth_set = true;
  }
  if (const auto* v = get("sentinel_password")) {
    options.sentinel_password = *v;
    options.sentinel_auth_set = true;
  }
  if (options.sentinel_auth_set && !options.sentinel_username.empty() &&
      options.sentinel_password.empty()) {
    fail("sentinel_username needs sentinel_password", url);
  }
}

RedisOptions parse_redis(std::string_view scheme, std::string_view rest, std::string_view query,
                         std::string_view url) {
  const bool sentinel = scheme == "redis+sentinel";
  RedisOptions options;
  options.masked_url = mask_url_password(url);
  options.tls.enabled = scheme == "rediss";
  // The user-info ends at the last '@' before the path (a password may hold an unencoded '@').
  const std::size_t at = rest.substr(0, rest.find('/', rest.rfind('@') + 1)).rfind('@');
  if (at != std::string_view::npos) {
    parse_userinfo(rest.substr(0, at), options.username, options.password, url);
    rest = rest.substr(at + 1);
  }
  const std::size_t slash = rest.find('/');
  const std::string_view hosts = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (hosts.empty()) fail("the host is missing, e.g. redis://localhost:6379/0", url);
  if (sentinel) {
    for (std::string_view list = hosts;;) {
      const std::size_t comma = list.find(',');
      const std::string_view one = list.substr(0, comma);
      if (one.empty()) fail("the sentinel host list has an empty entry", url);
      options.endpoints.push_back(parse_endpoint(one, 26379, url));
      if (comma == std::string_view::npos) break;
      list = list.substr(comma + 1);
    }
    const std::size_t next = path.find('/');
    options.sentinel_master = percent_decode(path.substr(0, next), url);
    if (options.sentinel_master.empty()) {
      fail("the master name is missing: redis+sentinel://h1:26379,h2:26379/mymaster/0", url);
    }
    path = next == std::string_view::npos ? "" : path.substr(next + 1);
  } else {
    if (hosts.find(',') != std::string_view::npos) {
      fail("several hosts need redis+sentinel://h1:26379,h2:26379/master/db", url);
    }
    options.endpoints.push_back(parse_endpoint(hosts, 6379, url));
  }
  if (!path.empty()) {
    if (path.find('/') != std::string_view::npos)
      fail("the path must be just the database number", url);
    options.db = parse_db(path, url);
  }
  const auto params = parse_query(query, url);
  if (!path.empty() && params.count("db") != 0)
    fail("the database is given twice (path and ?db=)", url);
  apply_redis_params(options, params, options.tls.enabled, sentinel, url);
  if (!options.sentinel_auth_set) {
    options.sentinel_username = options.username;
    options.sentinel_password = options.password;
  }
  return options;
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
  if (scheme == "redis+cluster") {
    throw ConfigurationError(fmt::format(
        "Redis Cluster (redis+cluster://) is not available in this build yet (url {}); use "
        "redis://, rediss:// or redis+sentinel://",
        mask_url_password(url)));
  }
  std::string_view rest = url.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) fail("a fragment ('#') is not allowed", url);
  const std::size_t q = rest.find('?');
  const std::string_view query = q == std::string_view::npos ? "" : rest.substr(q + 1);
  rest = rest.substr(0, q);
  if (scheme == "sqlite") return parse_sqlite(rest, query, url);
  if (scheme == "memory") return parse_memory(rest, query, url);
  if (scheme == "redis" || scheme == "rediss" || scheme == "redis+sentinel") {
    return parse_redis(scheme, rest, query, url);
  }
  fail(fmt::format("unknown scheme; {}", kAcceptedForms), url);
}

std::string backend_identity(const BackendConfig& config) {
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
      "redis:{}/{}/{}?user={}&pw={:x}&suser={}&spw={:x}&tls={}&ca={}&cert={}&key={}&verify={}"
      "&ct={}&st={}&pool={}&name={}",
      hosts, redis.sentinel_master, redis.db, redis.username, hash(redis.password),
      redis.sentinel_username, hash(redis.sentinel_password), redis.tls.enabled, redis.tls.ca_file,
      redis.tls.cert_file, redis.tls.key_file, redis.tls.verify_peer, redis.connect_timeout.count(),
      redis.command_timeout.count(), redis.pool_size, redis.client_name);
}

}  // namespace llm_caching::cache

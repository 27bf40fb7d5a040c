// The Redis forms of a cache URL (docs/REDIS.md): redis://, rediss://, redis+sentinel:// and
// redis+cluster:// / rediss+cluster://, with redis-py's query parameters.
#include "cache/cache_url_redis.hpp"

#include "cache/cache_url.hpp"
#include "cache/cache_url_params.hpp"
#include "core/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <vector>

namespace llm_caching::cache {
namespace {

using url::fail;
using url::Params;
using url::parse_query;
using url::parse_unsigned;
using url::percent_decode;

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

/// What kind of Redis URL the parameters belong to: which of them it accepts.
struct RedisScheme {
  bool tls = false;
  bool sentinel = false;
  bool cluster = false;
};

/// redis-py's parameter names (and read_from_replicas on a cluster) that `scheme` accepts;
/// fails on any other.
void reject_unknown_redis_params(const Params& params, RedisScheme scheme, std::string_view url) {
  std::vector<std::string_view> known = {
      "timeout",     "socket_timeout",  "socket_connect_timeout", "db",
      "client_name", "max_connections", "ledger_max_records"};
  if (scheme.tls)
    known.insert(known.end(), {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"});
  if (scheme.sentinel) known.insert(known.end(), {"sentinel_username", "sentinel_password"});
  if (scheme.cluster) known.push_back("read_from_replicas");
  for (const auto& [name, value] : params) {
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    if (name.starts_with("ssl_") && !scheme.tls) {
      fail(fmt::format("'{}' needs a TLS URL: write rediss:// instead of redis://", name), url);
    }
    if (name == "read_from_replicas") {
      fail("'read_from_replicas' needs a cluster URL (redis+cluster:// or rediss+cluster://)", url);
    }
    fail(fmt::format("unknown query parameter '{}'; accepted here: {}", name,
                     fmt::join(known, ", ")),
         url);
  }
}

void apply_redis_params(RedisOptions& options, const Params& params, RedisScheme scheme,
                        std::string_view url) {
  reject_unknown_redis_params(params, scheme, url);
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
  if (const auto* v = get("ledger_max_records")) {
    const std::uint64_t n = parse_unsigned(*v, "cache URL parameter ledger_max_records");
    if (n < 1) fail("ledger_max_records must be at least 1", url);
    options.ledger_max_records = static_cast<std::size_t>(n);
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
  if (const auto* v = get("read_from_replicas")) {
    const std::string value = core::lowercase(*v);
    if (value != "true" && value != "false") {
      fail(fmt::format("read_from_replicas must be 'true' or 'false', not '{}'", *v), url);
    }
    options.read_from_replicas = value == "true";
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

/// "h1:p1,h2:p2" -> endpoints (default port `default_port`).
std::vector<RedisEndpoint> parse_host_list(std::string_view hosts, std::uint16_t default_port,
                                           std::string_view what, std::string_view url) {
  std::vector<RedisEndpoint> endpoints;
  for (std::string_view list = hosts;;) {
    const std::size_t comma = list.find(',');
    const std::string_view one = list.substr(0, comma);
    if (one.empty()) fail(fmt::format("the {} host list has an empty entry", what), url);
    endpoints.push_back(parse_endpoint(one, default_port, url));
    if (comma == std::string_view::npos) break;
    list = list.substr(comma + 1);
  }
  return endpoints;
}

}  // namespace

RedisOptions parse_redis_url(std::string_view scheme, std::string_view rest, std::string_view query,
                             std::string_view url) {
  const bool sentinel = scheme == "redis+sentinel";
  RedisOptions options;
  options.masked_url = mask_url_password(url);
  options.cluster = scheme == "redis+cluster" || scheme == "rediss+cluster";
  options.tls.enabled = scheme == "rediss" || scheme == "rediss+cluster";
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
    options.endpoints = parse_host_list(hosts, 26379, "sentinel", url);
    const std::size_t next = path.find('/');
    options.sentinel_master = percent_decode(path.substr(0, next), url);
    if (options.sentinel_master.empty()) {
      fail("the master name is missing: redis+sentinel://h1:26379,h2:26379/mymaster/0", url);
    }
    path = next == std::string_view::npos ? "" : path.substr(next + 1);
  } else if (options.cluster) {
    options.endpoints = parse_host_list(hosts, 6379, "cluster", url);
  } else {
    if (hosts.find(',') != std::string_view::npos) {
      fail(
          "several hosts need redis+sentinel://h1:26379,h2:26379/master/db or "
          "redis+cluster://h1:7000,h2:7001",
          url);
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
  apply_redis_params(
      options, params,
      RedisScheme{.tls = options.tls.enabled, .sentinel = sentinel, .cluster = options.cluster},
      url);
  // A cluster has database 0 only (SELECT is refused there).
  if (options.cluster && options.db != 0) fail("Redis Cluster has only database 0", url);
  if (!options.sentinel_auth_set) {
    options.sentinel_username = options.username;
    options.sentinel_password = options.password;
  }
  return options;
}

}  // namespace llm_caching::cache

#include "gateway/serve_config.hpp"

#include "llm_caching/budget.hpp"

#include "cache/cache_url.hpp"
#include "gateway/stale.hpp"
#include "llm_caching/cache_mode.hpp"
#include "llm_caching/errors.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace llm_caching::gateway {

namespace json = boost::json;

namespace {

/// Builds errors that name the file and the field.
struct Context {
  const std::string& file;
  [[noreturn]] void fail(std::string_view field, std::string_view problem) const {
    throw ConfigurationError("config file " + file + ": field \"" + std::string(field) +
                             "\": " + std::string(problem));
  }
};

std::string read_string(const Context& ctx, std::string_view field, const json::value& value) {
  if (!value.is_string()) ctx.fail(field, "expected a string");
  return std::string(value.as_string());
}

bool read_bool(const Context& ctx, std::string_view field, const json::value& value) {
  if (!value.is_bool()) ctx.fail(field, "expected true or false");
  return value.as_bool();
}

std::int64_t read_integer(const Context& ctx, std::string_view field, const json::value& value,
                          std::int64_t min, std::int64_t max) {
  std::int64_t number = 0;
  if (value.is_int64()) {
    number = value.as_int64();
  } else if (value.is_uint64()) {
    number = max;  // beyond int64: reported as out of range below
    if (value.as_uint64() <= static_cast<std::uint64_t>(max)) {
      number = static_cast<std::int64_t>(value.as_uint64());
    } else {
      ctx.fail(field, "must be from " + std::to_string(min) + " to " + std::to_string(max));
    }
  } else {
    ctx.fail(field, "expected a whole number");
  }
  if (number < min || number > max) {
    ctx.fail(field, "must be from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return number;
}

std::string checked_base_url(const Context& ctx, std::string_view field, std::string url) {
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    ctx.fail(field, "the URL must start with http:// or https://");
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

UpstreamFileSettings read_upstream(const Context& ctx, const std::string& field,
                                   const json::value& value) {
  if (!value.is_object()) ctx.fail(field, "expected an object with \"base_url\" and keys");
  UpstreamFileSettings out;
  std::string key_env;
  bool has_key = false;
  for (const auto& [name, item] : value.as_object()) {
    const std::string path = field + "." + std::string(name);
    if (name == "base_url") {
      out.base_url = checked_base_url(ctx, path, read_string(ctx, path, item));
    } else if (name == "api_key") {
      // Never echo the value: it is a secret.
      if (!item.is_string() || item.as_string().empty())
        ctx.fail(path, "expected a non-empty string");
      out.api_key = std::string(item.as_string());
      has_key = true;
    } else if (name == "api_key_env") {
      key_env = read_string(ctx, path, item);
      if (key_env.empty()) ctx.fail(path, "expected the name of an environment variable");
    } else if (name == "replace_caller_key") {
      out.replace_caller_key = read_bool(ctx, path, item);
    } else {
      ctx.fail(path, "unknown field (expected base_url, api_key, api_key_env, replace_caller_key)");
    }
  }
  if (has_key && !key_env.empty()) {
    ctx.fail(field + ".api_key_env", "give either api_key or api_key_env, not both");
  }
  if (!key_env.empty()) {
    const char* key = std::getenv(key_env.c_str());
    if (!key || !*key) ctx.fail(field + ".api_key_env", "$" + key_env + " is unset or empty");
    out.api_key = key;
  }
  if (out.api_key.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    ctx.fail(field + (key_env.empty() ? ".api_key" : ".api_key_env"),
             "the key has a line break (a trailing newline from a file?); remove it");
  }
  if (out.replace_caller_key && out.api_key.empty()) {
    ctx.fail(field + ".replace_caller_key", "needs api_key or api_key_env");
  }
  return out;
}

void read_upstreams(const Context& ctx, const json::value& value, ServeFileSettings& out) {
  if (!value.is_object()) ctx.fail("upstreams", "expected an object keyed by provider");
  for (const auto& [name, item] : value.as_object()) {
    const std::string field = "upstreams." + std::string(name);
    Provider provider{};
    try {
      provider = parse_provider(name);
    } catch (const std::exception&) {
      ctx.fail(field, "unknown provider (expected openai, anthropic or gemini)");
    }
    out.upstreams[static_cast<std::size_t>(provider)] = read_upstream(ctx, field, item);
  }
}

struct IntegerField {
  std::string_view name;
  std::optional<std::int64_t> ServeFileSettings::*member;
  std::int64_t min;
  std::int64_t max;
};

constexpr std::int64_t kDay = 24 * 3600;
const std::array<IntegerField, 21> kIntegerFields = {{
    {"threads", &ServeFileSettings::threads, 0, 1024},
    {"body_limit", &ServeFileSettings::body_limit, 1, std::int64_t{1} << 40},
    {"l1_mb", &ServeFileSettings::l1_mb, 0, std::int64_t{1} << 20},
    {"ttl", &ServeFileSettings::ttl, 1, 10 * 366 * kDay},
    {"max_wait_ms", &ServeFileSettings::max_wait_ms, 0, 366 * kDay * 1000},
    {"initial_wait_ms", &ServeFileSettings::initial_wait_ms, 1, 366 * kDay * 1000},
    {"upstream_timeout_ms", &ServeFileSettings::upstream_timeout_ms, 1, 366 * kDay * 1000},
    {"connect_timeout_ms", &ServeFileSettings::connect_timeout_ms, 1, 366 * kDay * 1000},
    {"upstream_idle_timeout_ms", &ServeFileSettings::upstream_idle_timeout_ms, 1,
     366 * kDay * 1000},
    {"request_timeout_ms", &ServeFileSettings::request_timeout_ms, 1, 366 * kDay * 1000},
    {"shutdown_grace_ms", &ServeFileSettings::shutdown_grace_ms, 0, 366 * kDay * 1000},
    {"max_wait_cap_ms", &ServeFileSettings::max_wait_cap_ms, 0, 3'600'000},
    {"max_connections", &ServeFileSettings::max_connections, 0, 1'000'000},
    {"max_body_bytes_in_flight", &ServeFileSettings::max_body_bytes_in_flight, 1,
     std::int64_t{1} << 40},
    {"max_header_fields", &ServeFileSettings::max_header_fields, 1, 10'000},
    {"max_header_bytes", &ServeFileSettings::max_header_bytes, 1024, std::int64_t{1} << 24},
    {"max_request_line", &ServeFileSettings::max_request_line, 64, std::int64_t{1} << 24},
    {"max_upstream_response_bytes", &ServeFileSettings::max_upstream_response_bytes, 1,
     std::int64_t{1} << 40},
    {"header_timeout_ms", &ServeFileSettings::header_timeout_ms, 1, 366 * kDay * 1000},
    {"stale_while_revalidate", &ServeFileSettings::stale_while_revalidate, 0, kMaxStaleSeconds},
    {"stale_if_error", &ServeFileSettings::stale_if_error, 0, kMaxStaleSeconds},
}};

constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};

void read_field(const Context& ctx, std::string_view name, const json::value& item,
                ServeFileSettings& out) {
  for (const IntegerField& field : kIntegerFields) {
    if (name == field.name) {
      out.*field.member = read_integer(ctx, name, item, field.min, field.max);
      return;
    }
  }
  if (name == "listen") {
    const std::string text = read_string(ctx, name, item);
    try {
      parse_listen_address(text, "listen");
    } catch (const ConfigurationError& e) {
      ctx.fail(name, e.what());
    }
    out.listen = text;
  } else if (name == "prices" || name == "ca_file") {
    const std::string path = read_string(ctx, name, item);
    if (path.empty()) ctx.fail(name, "expected a file name");
    (name == "prices" ? out.prices : out.ca_file) = path;
  } else if (name == "cache_url") {
    const std::string url = read_string(ctx, name, item);
    try {
      cache::parse_cache_url(url);
    } catch (const std::exception& e) {
      ctx.fail(name, e.what());
    }
    out.cache_url = url;
  } else if (name == "log_level") {
    const std::string level = read_string(ctx, name, item);
    if (std::find(kLogLevels.begin(), kLogLevels.end(), level) == kLogLevels.end()) {
      ctx.fail(name, "expected trace, debug, info, warn, error, critical or off");
    }
    out.log_level = level;
  } else if (name == "mode") {
    const std::string mode = read_string(ctx, name, item);
    try {
      parse_cache_mode(mode);
    } catch (const std::exception&) {
      ctx.fail(name, "expected use, refresh, bypass, read_only or replay_only");
    }
    out.mode = mode;
  } else if (name == "share_cache_across_keys") {
    out.share_cache_across_keys = read_bool(ctx, name, item);
  } else if (name == "reject_unpriced") {
    out.reject_unpriced = read_bool(ctx, name, item);
  } else if (name == "require_key") {
    out.require_key = read_bool(ctx, name, item);
  } else if (name == "upstreams") {
    read_upstreams(ctx, item, out);
  } else if (name == "budgets" || name == "soft_budgets") {
    if (!item.is_array()) ctx.fail(name, "expected an array of budget specs");
    for (const json::value& spec : item.as_array()) {
      const std::string text = read_string(ctx, name, spec);
      try {
        Budget::parse(text);
      } catch (const std::exception& e) {
        ctx.fail(name, e.what());
      }
      (name == "budgets" ? out.budgets : out.soft_budgets).push_back(text);
    }
  } else {
    ctx.fail(name,
             "unknown field (the fields are the serve flags' names with underscores, "
             "see llm-caching serve --help)");
  }
}

}  // namespace

ServeFileSettings parse_serve_config(std::string_view text, const std::string& file_name) {
  json::error_code ec;
  const json::value root = json::parse(text, ec);
  if (ec) {
    throw ConfigurationError("config file " + file_name + ": not valid JSON (" + ec.message() +
                             ")");
  }
  if (!root.is_object()) {
    throw ConfigurationError("config file " + file_name + ": expected a JSON object at the top");
  }
  const Context ctx{file_name};
  ServeFileSettings out;
  for (const auto& [name, item] : root.as_object()) read_field(ctx, name, item, out);
  return out;
}

ServeFileSettings load_serve_config(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigurationError("config file " + file.string() + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigurationError("config file " + file.string() + ": cannot be read");
  return parse_serve_config(text.str(), file.string());
}

void apply_upstream_settings(const ServeFileSettings& settings, Upstreams& upstreams) {
  for (std::size_t i = 0; i < settings.upstreams.size(); ++i) {
    if (!settings.upstreams[i]) continue;
    const UpstreamFileSettings& from = *settings.upstreams[i];
    Upstream& to = upstreams[static_cast<Provider>(i)];
    if (from.base_url) to.base_url = *from.base_url;
    if (from.replace_caller_key) {
      to.api_key = from.api_key;
    } else if (!from.api_key.empty()) {
      to.fallback_api_key = from.api_key;
    }
  }
}

ListenAddress parse_listen_address(std::string_view text, std::string_view what) {
  const std::string expects = std::string(what) + " expects HOST:PORT with a port from 0 to 65535";
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) throw ConfigurationError(expects);
  std::string_view host = text.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  const std::string_view digits = text.substr(colon + 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (host.empty() || digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
      port > 65535) {
    throw ConfigurationError(expects);
  }
  return {std::string(host), static_cast<std::uint16_t>(port)};
}

std::string resolve_listen_host(const std::string& host, std::string_view what) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (!ec) return host;
  boost::asio::io_context io;
  boost::asio::ip::tcp::resolver resolver(io);
  // Passive: the addresses to bind, not to connect to.
  const auto results = resolver.resolve(host, "0", boost::asio::ip::tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    throw ConfigurationError(std::string(what) + ": cannot resolve host '" + host +
                             "': " + (ec ? ec.message() : "no address"));
  }
  return results.begin()->endpoint().address().to_string();
}

CostTable load_price_file(const std::string& path, std::string_view what) {
  const std::string where = std::string(what) + " " + path;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigurationError(where + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  json::error_code ec;
  // not keyed: a price file, parsed only to tell its format.
  const json::value root = json::parse(text.str(), ec);
  if (ec) throw ConfigurationError(where + ": not valid JSON (" + ec.message() + ")");
  const json::object* top = root.if_object();
  try {
    if (top && top->contains("models") && top->at("models").is_object()) {
      return CostTable::from_json(text.str());
    }
    return CostTable::from_litellm_json(text.str());
  } catch (const ConfigurationError& e) {
    throw ConfigurationError(where + ": " + e.what());
  }
}

std::string upstream_url_problem(std::string_view url) {
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return "'" + std::string(url) + "' must start with http:// or https://";
  }
  if (url.find_first_of(" \t\r\n") != std::string_view::npos) {
    return "'" + std::string(url) + "' has a space in it";
  }
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  const auto colon = authority.rfind(':');
  const bool bracketed = authority.starts_with('[');
  const bool has_port =
      colon != std::string_view::npos && (!bracketed || authority[colon - 1] == ']');
  const std::string_view host = has_port ? authority.substr(0, colon) : authority;
  if (host.empty() || host == "[]") return "'" + std::string(url) + "' has no host";
  if (has_port) {
    const std::string_view port = authority.substr(colon + 1);
    unsigned number = 0;
    const auto [end, perr] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (port.empty() || perr != std::errc() || end != port.data() + port.size() || number > 65535) {
      return "'" + std::string(url) + "' has a bad port";
    }
  }
  return "";
}

bool lacks_version_segment(std::string_view url) {
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
  std::string_view path = slash == std::string_view::npos ? "" : url.substr(slash);
  while (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    const std::string_view segment = path.substr(0, path.find('/'));
    // v1, v1beta, v4: a 'v' then a digit.
    if (segment.size() >= 2 && segment[0] == 'v' &&
        std::isdigit(static_cast<unsigned char>(segment[1]))) {
      return false;
    }
    path.remove_prefix(segment.size());
  }
  return true;
}

}  // namespace llm_caching::gateway

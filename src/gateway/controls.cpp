#include "gateway/controls.hpp"

#include "core/sha256.hpp"
#include "core/text.hpp"

#include "providers/codec.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>
#include <vector>

namespace llm_caching::gateway {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// Calls `f` with each comma-separated, trimmed, lowercased token of every header `name`.
template <class F>
void for_each_token(const Headers& headers, std::string_view name, F&& f) {
  for (const auto& [key, value] : headers) {
    if (key != name) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view token = trim(rest.substr(0, comma));
      if (!token.empty()) f(core::lowercase(token));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
}

std::optional<std::int64_t> parse_whole(std::string_view text) {
  text = trim(text);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0) {
    return std::nullopt;
  }
  return value;
}

bool valid_namespace(std::string_view ns) {
  return !ns.empty() && ns.size() <= 64 && std::all_of(ns.begin(), ns.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

}  // namespace

std::string_view find_header(const Headers& headers, std::string_view lowercase_name) {
  for (const auto& [key, value] : headers) {
    if (key == lowercase_name) return value;
  }
  return {};
}

CacheControls parse_cache_controls(const Headers& headers, const StaleWindows& defaults,
                                   CacheMode default_mode) {
  bool skip_read = false;
  bool skip_write = false;
  bool only_if_cached = false;
  StaleDirectives stale(defaults);
  for_each_token(headers, "x-llm-cache", [&](const std::string& token) {
    if (token == "no-cache" || token == "refresh") {
      skip_read = true;
    } else if (token == "no-store") {
      skip_write = true;
    } else if (token == "only-if-cached") {
      only_if_cached = true;
    } else if (token == "no-stale") {
      stale.turn_off();
    } else {
      throw BadRequest("x-llm-cache: unknown value '" + token.substr(0, 40) +
                       "' (expected no-cache, no-store, refresh, only-if-cached or no-stale)");
    }
  });
  for_each_token(headers, "cache-control", [&](const std::string& token) {
    stale.read(token);
    if (token == "no-cache") skip_read = true;
    if (token == "no-store") skip_write = true;
    if (token == "only-if-cached") only_if_cached = true;
  });
  if (only_if_cached && skip_read) {
    throw BadRequest("x-llm-cache: only-if-cached contradicts no-cache/refresh");
  }

  CacheControls controls;
  controls.mode = default_mode;  // a request's own directives below win
  const StaleWindows windows = stale.windows();
  controls.stale_while_revalidate = windows.stale_while_revalidate;
  controls.stale_if_error = windows.stale_if_error;
  if (only_if_cached) {
    controls.mode = CacheMode::replay_only;
  } else if (skip_read) {
    controls.mode = skip_write ? CacheMode::bypass : CacheMode::refresh;
  } else if (skip_write) {
    controls.mode = CacheMode::read_only;
  }

  if (const auto ttl = find_header(headers, "x-llm-cache-ttl"); !ttl.empty()) {
    const auto seconds = parse_whole(ttl);
    constexpr std::int64_t kTenYears = 10LL * 366 * 24 * 3600;
    if (!seconds || *seconds == 0 || *seconds > kTenYears) {
      throw BadRequest("x-llm-cache-ttl: expected a whole number of seconds from 1 to " +
                       std::to_string(kTenYears));
    }
    controls.ttl = std::chrono::seconds(*seconds);
  }
  if (const auto ns = find_header(headers, "x-llm-cache-namespace"); !ns.empty()) {
    if (!valid_namespace(ns)) {
      throw BadRequest("x-llm-cache-namespace: expected 1 to 64 of A-Z a-z 0-9 . _ -");
    }
    controls.namespace_ = std::string(ns);
  }
  if (const auto task = find_header(headers, "x-llm-task"); !task.empty()) {
    if (task.size() > 128 || !printable_ascii(task)) {
      throw BadRequest("x-llm-task: expected at most 128 printable ASCII characters");
    }
    controls.task = std::string(task);
  }
  if (const auto wait = find_header(headers, "x-llm-max-wait-ms"); !wait.empty()) {
    const auto ms = parse_whole(wait);
    if (!ms || *ms > 3'600'000) {
      throw BadRequest("x-llm-max-wait-ms: expected whole milliseconds from 0 to 3600000");
    }
    controls.max_wait = std::chrono::milliseconds(*ms);
  }
  if (const auto coalesce = find_header(headers, "x-llm-cache-coalesce"); !coalesce.empty()) {
    const std::string value = core::lowercase(coalesce);
    if (value != "on" && value != "off") {
      throw BadRequest("x-llm-cache-coalesce: expected on or off");
    }
    controls.coalesce = value == "on";
  }
  return controls;
}

std::string_view cache_status(CacheMode mode, bool served_from_cache) noexcept {
  if (served_from_cache) return "HIT";
  return mode == CacheMode::refresh || mode == CacheMode::bypass ? "BYPASS" : "MISS";
}

std::string_view cache_status(CacheMode mode, bool cache_hit, bool coalesced, bool stale) noexcept {
  if (stale) return "STALE";
  if (coalesced) return "COALESCED";
  return cache_status(mode, cache_hit);
}

namespace {

/// Whether `target` is an origin-form path with no query and nothing to decode: only RFC 3986
/// pchars and '/', no '%'. Such a target is its own path, which Boost.URL would only copy.
bool is_plain_path(std::string_view target) noexcept {
  if (target.empty() || target.front() != '/') return false;
  return std::all_of(target.begin(), target.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("-._~!$&'()*+,;=:@/").find(c) != std::string_view::npos;
  });
}

/// The cached APIs beyond chat that have a fixed path (Gemini's countTokens is a model action).
std::optional<Api> further_api(std::string_view path) {
  if (path == "/v1/messages/count_tokens") return Api::count_tokens;
  if (path.starts_with("/v1/")) path.remove_prefix(3);  // OpenAI's, with or without the /v1
  if (path == "/responses") return Api::responses;
  if (path == "/completions") return Api::completions;
  if (path == "/moderations") return Api::moderations;
  return std::nullopt;
}

/// Gemini's ?key= (and, for generateContent, ?alt=) from the query, when there is one.
void read_query(const std::optional<boost::urls::url_view>& parsed, Route& route) {
  if (!parsed) return;  // a plain path has no query
  for (const auto& param : parsed->params()) {
    if (param.key == "key") route.query_key = param.value;
    if (param.key == "alt") route.gemini_sse = param.value == "sse";
  }
}

/// The Gemini API version of a path under "/<version>/models/" (v1beta, v1alpha or v1: the
/// real API serves each), or "" for any other path.
std::string_view gemini_version_of(std::string_view path) {
  for (const std::string_view version : {"v1beta", "v1alpha", "v1"}) {
    if (path.size() > version.size() + 9 && path[0] == '/' && path.substr(1).starts_with(version) &&
        path.substr(1 + version.size()).starts_with("/models/")) {
      return version;
    }
  }
  return {};
}

}  // namespace

Route match_route(std::string_view method, std::string_view target) {
  Route route;
  // Every request is routed: the usual targets skip the URL parser (a copy and a decode).
  std::optional<boost::urls::url_view> parsed;
  std::string path;
  if (is_plain_path(target)) {
    path = target;
  } else {
    auto result = boost::urls::parse_origin_form(target);
    if (!result) return route;
    parsed = *result;
    path = parsed->path();  // percent-decoded
  }
  if (path.starts_with("/v1beta/")) route.provider = Provider::gemini;
  if (path == "/v1/messages" || path == "/v1/messages/count_tokens") {
    route.provider = Provider::anthropic;
  }

  auto expect = [&](std::string_view wanted, RouteKind kind) {
    route.kind = method == wanted ? kind : RouteKind::method_not_allowed;
    return route;
  };
  if (path == "/v1/chat/completions" || path == "/chat/completions") {
    return expect("POST", RouteKind::llm);
  }
  if (path == "/v1/messages") return expect("POST", RouteKind::llm);
  if (path == "/v1/embeddings" || path == "/embeddings") {
    route.api = Api::embeddings;
    return expect("POST", RouteKind::embeddings);
  }
  if (const auto api = further_api(path)) {
    route.api = *api;
    if (route.api == Api::moderations) route.model = "omni-moderation-latest";
    return expect("POST", RouteKind::llm);
  }
  if (path == "/v1/models" || path == "/models") return expect("GET", RouteKind::models);
  if (path == "/healthz") return expect("GET", RouteKind::healthz);
  if (path == "/metrics") return expect("GET", RouteKind::metrics);
  if (path == "/costs") return expect("GET", RouteKind::costs);

  if (const std::string_view version = gemini_version_of(path); !version.empty()) {
    const std::string_view rest = std::string_view(path).substr(version.size() + 9);  // /v/models/
    const auto colon = rest.rfind(':');
    const std::string_view action =
        colon == std::string_view::npos || colon == 0 ? std::string_view() : rest.substr(colon + 1);
    const bool gemini_action = action == "embedContent" || action == "batchEmbedContents" ||
                               action == "generateContent" || action == "streamGenerateContent" ||
                               action == "countTokens";
    if (gemini_action) {
      route.provider = Provider::gemini;
      route.gemini_version = version;
    }
    if (action == "embedContent" || action == "batchEmbedContents") {
      route.api = Api::embeddings;
      route.model = std::string(rest.substr(0, colon));
      route.gemini_batch = action == "batchEmbedContents";
      read_query(parsed, route);
      route.gemini_sse = false;  // embeddings never stream
      return expect("POST", RouteKind::embeddings);
    }
    if (action == "generateContent" || action == "streamGenerateContent" ||
        action == "countTokens") {
      if (action == "countTokens") route.api = Api::count_tokens;
      route.model = std::string(rest.substr(0, colon));
      route.gemini_stream = action == "streamGenerateContent";
      read_query(parsed, route);
      return expect("POST", RouteKind::llm);
    }
  }
  if (path.starts_with("/v1/") || path.starts_with("/v1beta/") || path.starts_with("/v1alpha/") ||
      path.starts_with("/upload/")) {
    route.kind = RouteKind::passthrough;
    if (path.starts_with("/upload/") || path.starts_with("/v1alpha/")) {
      route.provider = Provider::gemini;  // Gemini's file uploads, its alpha API
    }
    read_query(parsed, route);
    route.gemini_sse = false;
  }
  return route;
}

std::string caller_credential(Provider provider, const Headers& headers,
                              std::string_view query_key) {
  auto bearer = [&]() -> std::string {
    const std::string_view auth = find_header(headers, "authorization");
    if (auth.size() > 7 && core::lowercase(auth.substr(0, 7)) == "bearer ") {
      return std::string(trim(auth.substr(7)));
    }
    return std::string(trim(auth));
  };
  switch (provider) {
    case Provider::openai:
      return bearer();
    case Provider::anthropic:
      if (const auto key = find_header(headers, "x-api-key"); !key.empty()) return std::string(key);
      return bearer();
    case Provider::gemini:
      if (const auto key = find_header(headers, "x-goog-api-key"); !key.empty()) {
        return std::string(key);
      }
      if (!query_key.empty()) return std::string(query_key);
      return bearer();
  }
  return {};
}

std::string caller_identity(Provider provider, const Headers& headers, std::string_view query_key) {
  return caller_identity(caller_credential(provider, headers, query_key), headers);
}

std::string caller_identity(std::string credential, const Headers& headers) {
  std::string identity = std::move(credential);
  // The credential headers forwarded as they are (kForwardedCredentialHeaders) choose the
  // partition too: an upstream that reads one of them must never see one caller's answer served
  // to another. Appended after a newline, which no header value holds, so a plain key's
  // identity (and so its partition) is the key itself, as before.
  for (const std::string_view name : kForwardedCredentialHeaders) {
    for (const auto& [header, value] : headers) {
      if (header != name) continue;
      identity.append("\n").append(name).append(": ").append(value);
    }
  }
  return identity;
}

std::string answer_shaping_headers(const Headers& headers) {
  static constexpr std::array<std::string_view, 3> kNames = {"anthropic-beta", "anthropic-version",
                                                             "openai-beta"};
  // Most requests have none of them: one pass says so (a memoized hit asks on every request).
  const bool any = std::any_of(headers.begin(), headers.end(), [](const auto& header) {
    return std::find(kNames.begin(), kNames.end(), header.first) != kNames.end();
  });
  if (!any) return {};
  std::string out;
  for (const std::string_view name : kNames) {
    std::vector<std::string> values;
    for (const auto& [header, value] : headers) {  // a header may repeat: all its values count
      if (header != name) continue;
      std::string_view rest = value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view item = trim(rest.substr(0, comma));
        if (!item.empty()) values.emplace_back(item);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
    }
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    if (values.empty()) continue;
    if (name == "anthropic-version" && values.size() == 1 &&
        values[0] == providers::kAnthropicVersion) {
      continue;  // what the gateway sends when the caller sends none: the same answers
    }
    if (!out.empty()) out += ';';
    out.append(name).append("=");
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ',';
      // Escaped: a value holding ';' must not read as another header (',' splits values).
      core::append_escaped(out, values[i], ";,");
    }
  }
  return out;
}

std::string tenant_scope(std::string_view credential) {
  if (credential.empty()) return "anonymous";
  return "key:" + core::sha256_hex(credential).substr(0, 32);
}

const std::string& TenantScopeMemo::operator()(std::string_view identity) {
  if (identity != last_identity_ || last_scope_.empty()) {
    last_scope_ = tenant_scope(identity);
    last_identity_ = std::string(identity);
  }
  return last_scope_;
}

}  // namespace llm_caching::gateway

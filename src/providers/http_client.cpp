// HttpClient: URL and proxy handling, the keep-alive pool and the stale-connection retry.
// The Beast work happens in http_connection.cpp.
#include "providers/http_client.hpp"

#include "core/text.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <optional>

#include "providers/http_connection.hpp"
#include "providers/idle_pool.hpp"

namespace llm_caching::providers {

using detail::Connection;
using detail::ConnectPlan;
using detail::ProxyHop;
using detail::WireRequest;

std::string_view to_string(TransportError::Kind kind) noexcept {
  switch (kind) {
    case TransportError::Kind::connect:
      return "connect";
    case TransportError::Kind::tls_verify:
      return "tls_verify";
    case TransportError::Kind::timeout:
      return "timeout";
    case TransportError::Kind::reset:
      return "reset";
    case TransportError::Kind::protocol:
      return "protocol";
    case TransportError::Kind::too_large:
      return "too_large";
  }
  return "unknown";
}

namespace {

using boost::beast::iequals;

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

struct TargetUrl {
  bool tls = false;
  std::string host;
  std::uint16_t port = 0;
  std::string origin_form;  // path and query
  std::string host_header;
};

/// `what` names the URL in messages without echoing it (a URL may carry a key in its query).
TargetUrl parse_url(std::string_view text, const std::string& what) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) throw ConfigurationError(what + " is not a valid absolute URL");
  const boost::urls::url_view url = *parsed;
  TargetUrl target;
  const std::string scheme = core::lowercase(url.scheme());
  if (scheme != "http" && scheme != "https") {
    throw ConfigurationError(what + " must use http:// or https://, not " + scheme + "://");
  }
  target.tls = scheme == "https";
  target.host = url.host_address();
  if (target.host.empty()) throw ConfigurationError(what + " has no host");
  target.port = target.tls ? 443 : 80;
  if (url.has_port()) {
    const auto port = parse_port(url.port());
    if (!port) throw ConfigurationError(what + " has an invalid port");
    target.port = *port;
  }
  target.origin_form = url.encoded_path().empty() ? "/" : std::string(url.encoded_path());
  if (url.has_query()) target.origin_form += "?" + std::string(url.encoded_query());
  const bool v6 = target.host.find(':') != std::string::npos;
  target.host_header = v6 ? "[" + target.host + "]" : target.host;
  if (url.has_port()) target.host_header += ":" + std::to_string(target.port);
  return target;
}

const char* first_env(std::initializer_list<const char*> names, const char** found) {
  for (const char* name : names) {
    const char* value = std::getenv(name);
    if (value && *value) {
      *found = name;
      return value;
    }
  }
  return nullptr;
}

std::optional<ProxyHop> proxy_from_env(std::initializer_list<const char*> names) {
  const char* name = nullptr;
  const char* value = first_env(names, &name);
  if (!value) return std::nullopt;
  std::string text = value;
  if (text.find("://") == std::string::npos) text = "http://" + text;
  const std::string what = std::string("proxy variable ") + name;
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) throw ConfigurationError(what + " is not a valid URL");
  if (core::lowercase(parsed->scheme()) != "http") {
    throw ConfigurationError(what + ": only http:// proxies are supported");
  }
  ProxyHop hop;
  hop.host = parsed->host_address();
  hop.port = 80;
  if (parsed->has_port()) {
    const auto port = parse_port(parsed->port());
    if (!port) throw ConfigurationError(what + " has an invalid port");
    hop.port = *port;
  }
  if (hop.host.empty()) throw ConfigurationError(what + " has no host");
  if (parsed->has_userinfo()) {
    hop.authorization = "Basic " + base64(parsed->user() + ":" + parsed->password());
  }
  return hop;
}

/// NO_PROXY: comma-separated host names, domain suffixes (".example.com" or "example.com"
/// match sub-domains), IP addresses, optional ":port", or "*" for everything.
bool bypasses_proxy(const std::string& no_proxy, const std::string& host, std::uint16_t port) {
  const std::string wanted = core::lowercase(host);
  std::size_t start = 0;
  while (start <= no_proxy.size()) {
    std::size_t end = no_proxy.find(',', start);
    if (end == std::string::npos) end = no_proxy.size();
    std::string entry = core::lowercase(no_proxy.substr(start, end - start));
    start = end + 1;
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (entry.empty()) continue;
    if (entry == "*") return true;
    std::string entry_port;
    if (entry.front() == '[') {  // "[::1]" or "[::1]:8080"
      const std::size_t close = entry.find(']');
      if (close == std::string::npos) continue;
      if (close + 1 < entry.size() && entry[close + 1] == ':') {
        entry_port = entry.substr(close + 2);
      }
      entry = entry.substr(1, close - 1);
    } else if (std::count(entry.begin(), entry.end(), ':') == 1) {  // "host:port"
      const std::size_t colon = entry.find(':');
      entry_port = entry.substr(colon + 1);
      entry.resize(colon);
    }
    if (!entry_port.empty() && parse_port(entry_port) != port) continue;
    if (entry.rfind("*.", 0) == 0) entry.erase(0, 1);
    if (!entry.empty() && entry.front() == '.') entry.erase(0, 1);
    if (wanted == entry) return true;
    if (wanted.size() > entry.size() && wanted.ends_with("." + entry)) return true;
  }
  return false;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return {};
}

struct HttpClient::Impl : std::enable_shared_from_this<HttpClient::Impl> {
  using Clock = std::chrono::steady_clock;
  using Pool = detail::IdlePool<Connection>;
  Impl(asio::any_io_executor executor, HttpClientOptions options)
      : executor(std::move(executor)),
        options(std::move(options)),
        pool(this->options.max_idle_per_host, this->options.idle_timeout),
        sweeper(this->executor) {}

  asio::any_io_executor executor;
  HttpClientOptions options;
  std::shared_ptr<detail::TlsContext> tls;
  std::optional<ProxyHop> https_proxy;
  std::optional<ProxyHop> http_proxy;
  std::string no_proxy;
  std::atomic<std::size_t> opened{0};
  mutable std::mutex mutex;
  Pool pool;  // guarded by mutex
  /// Closes the connections idle for options.idle_timeout. Armed only while one is idle: an
  /// armed timer keeps the io_context running. Used on the client's executor, under the mutex.
  asio::steady_timer sweeper;
  bool sweep_armed = false;

  std::unique_ptr<Connection> take_idle(const std::string& key) {
    std::vector<Pool::Handle> expired;  // closed after the lock is released
    std::lock_guard lock(mutex);
    return pool.take(key, Clock::now(), expired);
  }

  void put_idle(const std::string& key, std::unique_ptr<Connection> connection) {
    std::lock_guard lock(mutex);
    const Clock::time_point now = Clock::now();
    // Not parked (the pool is full or closed): `connection` closes as it goes.
    if (pool.put(key, connection, now) && pool.expires() && !sweep_armed) {
      arm_sweep(now + options.idle_timeout);
    }
  }

  /// With the mutex held.
  void arm_sweep(Clock::time_point at) {
    sweep_armed = true;
    sweeper.expires_at(at);
    sweeper.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled by close_idle()
      if (auto self = weak.lock()) self->sweep();
    });
  }

  void sweep() {
    std::vector<Pool::Handle> expired;  // closed after the lock is released
    std::lock_guard lock(mutex);
    sweep_armed = false;
    if (const auto next = pool.sweep(Clock::now(), expired)) arm_sweep(*next);
  }

  /// A request URL with what send() derives from it. The last one is kept: a client mostly
  /// calls the same endpoint, and parsing the URL was a visible part of a gateway miss.
  struct Route {
    std::string url;
    TargetUrl target;
    ConnectPlan plan;
    std::string pool_key;
  };
  std::shared_ptr<const Route> last_route;  // guarded by mutex

  std::shared_ptr<const Route> route_for(const std::string& url);

  ConnectPlan plan_for(const TargetUrl& target) const {
    ConnectPlan plan{target.tls, target.host, target.port, std::nullopt};
    const auto& proxy = target.tls ? https_proxy : http_proxy;
    if (proxy && !bypasses_proxy(no_proxy, target.host, target.port)) plan.proxy = proxy;
    return plan;
  }
};

namespace {

std::string pool_key(const ConnectPlan& plan) {
  std::string key = (plan.tls ? "https://" : "http://") + plan.describe();
  if (plan.proxy) key += " via " + plan.proxy->host + ":" + std::to_string(plan.proxy->port);
  return key;
}

}  // namespace

std::shared_ptr<const HttpClient::Impl::Route> HttpClient::Impl::route_for(const std::string& url) {
  {
    std::lock_guard lock(mutex);
    if (last_route && last_route->url == url) return last_route;
  }
  auto route = std::make_shared<Route>();
  route->url = url;
  route->target = parse_url(url, "request URL");
  route->plan = plan_for(route->target);
  route->pool_key = pool_key(route->plan);
  std::lock_guard lock(mutex);
  last_route = route;
  return route;
}

namespace {

asio::awaitable<HttpResponse> send_with_pool(std::shared_ptr<HttpClient::Impl> impl,
                                             HttpRequest request,
                                             std::function<void(std::string_view)> on_chunk) {
  const std::shared_ptr<const HttpClient::Impl::Route> route = impl->route_for(request.url);
  const TargetUrl& target = route->target;
  const ConnectPlan& plan = route->plan;
  WireRequest wire{request.method, target.origin_form, target.host_header, &request};
  if (plan.proxy && !plan.tls) {
    // Plain http through a proxy: the proxy gets the absolute URI, no tunnel.
    wire.target = "http://" + target.host_header + target.origin_form;
    if (!plan.proxy->authorization.empty()) {
      request.headers.emplace_back("Proxy-Authorization", plan.proxy->authorization);
    }
  }
  const std::string& key = route->pool_key;
  const auto* chunk_sink = on_chunk ? &on_chunk : nullptr;
  for (int attempt = 0;; ++attempt) {
    auto connection = attempt == 0 ? impl->take_idle(key) : nullptr;
    const bool reused = connection != nullptr;
    if (!connection) {
      connection = co_await Connection::open(impl->executor, impl->tls, plan, impl->options);
      ++impl->opened;
    }
    try {
      HttpResponse response = co_await connection->exchange(wire, chunk_sink);
      if (connection->reusable()) impl->put_idle(key, std::move(connection));
      co_return response;
    } catch (const TransportError& error) {
      // The server may have closed an idle connection just as we reused it: nothing reached
      // the caller yet, so one more try on a fresh connection is safe and invisible.
      const bool stale =
          reused && !connection->received_any() && error.kind() == TransportError::Kind::reset;
      if (!stale) throw;
    }
  }
}

}  // namespace

HttpClient::HttpClient(asio::any_io_executor executor, HttpClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {
  impl_->tls = detail::make_tls_context(impl_->options);
  impl_->https_proxy = proxy_from_env({"HTTPS_PROXY", "https_proxy"});
  impl_->http_proxy = proxy_from_env({"HTTP_PROXY", "http_proxy"});
  const char* name = nullptr;
  if (const char* value = first_env({"NO_PROXY", "no_proxy"}, &name)) impl_->no_proxy = value;
}

HttpClient::~HttpClient() = default;

asio::awaitable<HttpResponse> HttpClient::send(HttpRequest request) {
  return send_with_pool(impl_, std::move(request), nullptr);
}

asio::awaitable<HttpResponse> HttpClient::send_streaming(
    HttpRequest request, std::function<void(std::string_view chunk)> on_body_chunk) {
  if (!on_body_chunk) on_body_chunk = [](std::string_view) {};
  return send_with_pool(impl_, std::move(request), std::move(on_body_chunk));
}

std::size_t HttpClient::connections_opened() const noexcept {
  return impl_->opened.load();
}

std::size_t HttpClient::idle_connections() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->pool.size();
}

void HttpClient::close_idle() {
  std::vector<Impl::Pool::Handle> closed;  // closed after the lock is released
  std::lock_guard lock(impl_->mutex);
  impl_->pool.close(closed);
  impl_->sweeper.cancel();
  impl_->sweep_armed = false;
}

}  // namespace llm_caching::providers

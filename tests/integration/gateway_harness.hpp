// Shared by the gateway integration tests: start `llm-caching serve` in front of the fake
// provider, send raw HTTP (our HttpClient, curl, or a bare socket) to it.
#pragma once

#include "providers/http_client.hpp"
#include "providers/sse.hpp"
#include "support/child_process.hpp"
#include "support/fake_provider.hpp"
#include "support/test_env.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace gateway_test {

namespace json = boost::json;
using llm_caching::providers::HttpClient;
using llm_caching::providers::HttpRequest;
using llm_caching::providers::HttpResponse;

inline constexpr const char* kCliPath = LLMC_CLI_PATH;

/// Proxies in the environment would send loopback calls (ours and the gateway's) elsewhere.
inline void clear_proxy_environment() {
  for (const char* name : {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY",
                           "no_proxy", "ALL_PROXY", "all_proxy"}) {
    unsetenv(name);
  }
}

inline std::uint16_t port_of(const std::string& ready_line) {
  return static_cast<std::uint16_t>(std::stoi(ready_line.substr(ready_line.rfind(':') + 1)));
}

/// What a GatewayProcess does with its stderr.
enum class GatewayStderr { inherited, captured };

/// `llm-caching serve` on a free port, upstreams pointed at `fake`, its own SQLite file.
/// With GatewayStderr::captured its log lines go to a file that log() reads.
class GatewayProcess {
 public:
  explicit GatewayProcess(const llmc_test::FakeProvider& fake, std::vector<std::string> extra = {},
                          std::string upstream_base = {},
                          GatewayStderr stderr_to = GatewayStderr::inherited)
      : process_(with_stderr(stderr_to, argv(fake, std::move(extra), std::move(upstream_base)))),
        port_(port_of(process_.ready_line())) {}

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::uint16_t port() const { return port_; }
  std::string cache_url() const { return "sqlite://" + dir_.file("cache.db"); }
  int stop() { return process_.stop(); }
  pid_t pid() const { return process_.pid(); }
  /// The log lines so far (GatewayStderr::captured; stop() first for all of them).
  std::string log() const {
    std::ifstream in(dir_.file("stderr.log"), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  /// The shell execs the gateway (same pid) with stderr sent to the log file.
  std::vector<std::string> with_stderr(GatewayStderr stderr_to, std::vector<std::string> args) {
    if (stderr_to == GatewayStderr::inherited) return args;
    std::vector<std::string> shell = {"/bin/sh", "-c",
                                      "exec \"$@\" 2>'" + dir_.file("stderr.log") + "'", "sh"};
    shell.insert(shell.end(), args.begin(), args.end());
    return shell;
  }

  std::vector<std::string> argv(const llmc_test::FakeProvider& fake, std::vector<std::string> extra,
                                std::string upstream_base) {
    clear_proxy_environment();
    if (upstream_base.empty()) upstream_base = fake.base_url();
    std::vector<std::string> args = {kCliPath,
                                     "--cache-url",
                                     "sqlite://" + dir_.file("cache.db"),
                                     "serve",
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--threads",
                                     "2",
                                     "--log-level",
                                     "warn",
                                     "--initial-wait-ms",
                                     "20",
                                     "--upstream",
                                     "openai=" + upstream_base + "/v1",
                                     "--upstream",
                                     "anthropic=" + upstream_base,
                                     "--upstream",
                                     "gemini=" + upstream_base};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  llmc_test::TempDir dir_;  // before process_: the process uses it
  llmc_test::ChildProcess process_;
  std::uint16_t port_;
};

/// `llm-caching serve` on a free port over the cache at `cache_url`, shared with other processes
/// (a Redis, one SQLite file): the cross-process single-flight tests.
class SharedCacheGateway {
 public:
  SharedCacheGateway(const llmc_test::FakeProvider& fake, const std::string& cache_url)
      : process_({kCliPath, "--cache-url", cache_url, "serve", "--listen", "127.0.0.1:0",
                  "--threads", "2", "--log-level", "warn", "--initial-wait-ms", "20", "--upstream",
                  "openai=" + fake.base_url() + "/v1"}),
        port_(port_of(process_.ready_line())) {}

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return process_.pid(); }

 private:
  llmc_test::ChildProcess process_;
  std::uint16_t port_;
};

/// One request with our own HTTP client on a private io_context.
inline HttpResponse send(HttpRequest request) {
  boost::asio::io_context io;
  HttpClient client(io.get_executor());
  return llmc_test::run_sync(io, client.send(std::move(request)));
}

inline HttpRequest post(const std::string& url, std::string body,
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpRequest request;
  request.method = "POST";
  request.url = url;
  request.body = std::move(body);
  request.headers = std::move(headers);
  request.headers.emplace_back("content-type", "application/json");
  return request;
}

inline std::string openai_body(const std::string& text, bool stream = false,
                               const std::string& model = "gpt-4o-mini") {
  return json::serialize(
      json::object{{"model", model},
                   {"stream", stream},
                   {"messages", json::array{json::object{{"role", "user"}, {"content", text}}}}});
}

inline std::string anthropic_body(const std::string& text, bool stream = false) {
  return json::serialize(
      json::object{{"model", "claude-3-5-haiku-latest"},
                   {"max_tokens", 64},
                   {"stream", stream},
                   {"messages", json::array{json::object{{"role", "user"}, {"content", text}}}}});
}

inline std::string gemini_body(const std::string& text) {
  return json::serialize(json::object{
      {"contents", json::array{json::object{
                       {"role", "user"}, {"parts", json::array{json::object{{"text", text}}}}}}}});
}

/// The number of calls the fake provider received (all routes).
inline std::int64_t upstream_calls(const llmc_test::FakeProvider& fake) {
  return fake.stats().at("total").as_int64();
}

/// "0.00000555" (x-llm-cost-usd) as nano-USD, exactly.
inline std::int64_t nano_usd_of(const std::string& dollars) {
  const std::size_t dot = dollars.find('.');
  const std::int64_t whole = std::stoll(dollars.substr(0, dot));
  std::string fraction = dot == std::string::npos ? "" : dollars.substr(dot + 1);
  fraction.resize(9, '0');
  return whole * 1'000'000'000 + std::stoll(fraction);
}

/// One sample of a gateway's /metrics, by its full name with labels
/// (`llmc_gateway_refused_total{reason="header_count"}`); -1 when the page has no such line.
inline std::int64_t metric_sample(const std::string& base_url, const std::string& series) {
  HttpRequest get;
  get.method = "GET";
  get.url = base_url + "/metrics";
  const std::string text = send(std::move(get)).body;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(text.substr(at + series.size() + 2));
}

/// metric_sample once it reads `expected`, asking again for at most ~2 s: a request's counters
/// are recorded just after its answer is sent, so a client that reads /metrics at once may be
/// served first by another worker. Returns the last value read (the test compares it).
inline std::int64_t settled_metric(const std::string& base_url, const std::string& series,
                                   std::int64_t expected) {
  std::int64_t value = metric_sample(base_url, series);
  for (int attempt = 0; attempt < 200 && value != expected; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    value = metric_sample(base_url, series);
  }
  return value;
}

struct CurlResult {
  int exit_code = -1;
  int status = 0;
  std::map<std::string, std::string> headers;  ///< lowercase names, last response only
  std::string body;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Runs curl with `args` (shell-quoted by the caller) and reads back status, headers and body.
inline CurlResult curl(const std::string& args) {
  llmc_test::TempDir dir;
  const std::string headers_file = dir.file("headers");
  const std::string body_file = dir.file("body");
  const std::string command =
      "curl -sS --noproxy '*' -D '" + headers_file + "' -o '" + body_file + "' " + args + " 2>&1";
  CurlResult result;
  result.exit_code = std::system(command.c_str());
  result.body = read_file(body_file);
  std::istringstream lines(read_file(headers_file));
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.starts_with("HTTP/")) {
      result.status = std::stoi(line.substr(line.find(' ') + 1, 3));
      result.headers.clear();
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    result.headers[name] = value;
  }
  return result;
}

/// Single-quotes a string for the shell.
inline std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

/// Writes `pieces` on a fresh connection, each its own segment with `pause` after it, and reads
/// until the server closes it (or `max` bytes).
inline std::string raw_exchange_in_pieces(std::uint16_t port,
                                          const std::vector<std::string>& pieces,
                                          std::chrono::milliseconds pause,
                                          std::size_t max = std::size_t{1} << 24) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  socket.set_option(boost::asio::ip::tcp::no_delay(true));
  for (const std::string& piece : pieces) {
    boost::asio::write(socket, boost::asio::buffer(piece));
    std::this_thread::sleep_for(pause);
  }
  std::string out;
  boost::system::error_code ec;
  char buffer[8192];
  while (out.size() < max) {
    const std::size_t n = socket.read_some(boost::asio::buffer(buffer), ec);
    if (ec) break;
    out.append(buffer, n);
  }
  return out;
}

/// Writes `bytes` on a fresh connection and reads until the server closes it (or `max` bytes).
inline std::string raw_exchange(std::uint16_t port, const std::string& bytes,
                                std::size_t max = std::size_t{1} << 24) {
  return raw_exchange_in_pieces(port, {bytes}, std::chrono::milliseconds(0), max);
}

}  // namespace gateway_test

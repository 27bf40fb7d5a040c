// HttpClient against the fake provider over real loopback sockets: http, https, pooling,
// timeouts, broken replies, proxies.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>

#include <array>
#include <functional>
#include <memory>
#include <optional>

#include "providers/http_client.hpp"
#include "support/fake_provider.hpp"

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::ip::tcp;
using llm_caching::providers::HttpClient;
using llm_caching::providers::HttpClientOptions;
using llm_caching::providers::HttpRequest;
using llm_caching::providers::HttpResponse;
using llm_caching::providers::TransportError;
using llmc_test::FakeProvider;
using llmc_test::run_sync;
using Kind = TransportError::Kind;
using namespace std::chrono_literals;

constexpr const char* kSecret = "sk-test-secret-value-123";

HttpRequest chat_request(const std::string& base_url, const std::string& text,
                         const std::string& behavior = "") {
  HttpRequest request;
  request.url = base_url + "/v1/chat/completions";
  request.headers = {{"Authorization", std::string("Bearer ") + kSecret},
                     {"Content-Type", "application/json"}};
  if (!behavior.empty()) request.headers.emplace_back("x-fake-behavior", behavior);
  request.body =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":")" + text + R"("}]})";
  return request;
}

std::string content_of(const HttpResponse& response) {
  const auto body = json::parse(response.body).as_object();
  return std::string(body.at("choices").at(0).at("message").at("content").as_string());
}

/// Runs `send` and returns the TransportError it threw, or nullopt.
std::optional<TransportError> transport_error_of(const std::function<void()>& send) {
  try {
    send();
  } catch (const TransportError& error) {
    return error;
  }
  return std::nullopt;
}

class HttpClientTest : public ::testing::Test {
 protected:
  static llmc_test::FakeProviderPair& fakes() { return llmc_test::shared_fake_providers(); }
  HttpResponse send(HttpClient& client, HttpRequest request) {
    return run_sync(io_, client.send(std::move(request)));
  }
  HttpClientOptions trusting() const {
    HttpClientOptions options;
    options.ca_file = fakes().certs.ca_cert;
    return options;
  }

  // No proxy from the developer's environment may redirect these loopback calls.
  llmc_test::ScopedEnv no_https_proxy_{"HTTPS_PROXY", std::nullopt};
  llmc_test::ScopedEnv no_https_proxy_lower_{"https_proxy", std::nullopt};
  llmc_test::ScopedEnv no_http_proxy_{"HTTP_PROXY", std::nullopt};
  llmc_test::ScopedEnv no_http_proxy_lower_{"http_proxy", std::nullopt};
  llmc_test::ScopedEnv no_no_proxy_{"NO_PROXY", std::nullopt};
  llmc_test::ScopedEnv no_no_proxy_lower_{"no_proxy", std::nullopt};
  asio::io_context io_;
};

TEST_F(HttpClientTest, GetAndPostOverPlainHttp) {
  HttpClient client(io_.get_executor());
  HttpRequest list;
  list.method = "GET";
  list.url = fakes().plain.base_url() + "/v1/models";
  const auto models = send(client, list);
  EXPECT_EQ(models.status, 200);
  EXPECT_EQ(json::parse(models.body).at("object"), "list");
  EXPECT_EQ(models.header("content-type"), "application/json");

  const auto answer = send(client, chat_request(fakes().plain.base_url(), "hello over http"));
  EXPECT_EQ(answer.status, 200);
  EXPECT_NE(content_of(answer).find("echo: hello over http"), std::string::npos);
}

TEST_F(HttpClientTest, HttpsWorksWhenTheTestCaIsTrusted) {
  HttpClient client(io_.get_executor(), trusting());
  const auto answer = send(client, chat_request(fakes().tls.base_url(), "hello over https"));
  EXPECT_EQ(answer.status, 200);
  EXPECT_NE(content_of(answer).find("echo: hello over https"), std::string::npos);
}

TEST_F(HttpClientTest, HeaderLookupIsCaseInsensitiveAndEmptyWhenAbsent) {
  HttpClient client(io_.get_executor());
  const auto answer = send(client, chat_request(fakes().plain.base_url(), "headers"));
  EXPECT_EQ(answer.header("CONTENT-TYPE"), "application/json");
  EXPECT_EQ(answer.header("x-not-there"), "");
}

TEST_F(HttpClientTest, SequentialRequestsReuseOneConnection) {
  HttpClient client(io_.get_executor(), trusting());
  fakes().plain.reset();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(
        send(client, chat_request(fakes().plain.base_url(), "again " + std::to_string(i))).status,
        200);
  }
  HttpRequest stats;
  stats.method = "GET";
  stats.url = fakes().plain.base_url() + "/_stats";
  const auto server_view = json::parse(send(client, stats).body);
  EXPECT_EQ(server_view.at("connections").as_int64(), 1);  // the server saw one connection
  EXPECT_EQ(server_view.at("total").as_int64(), 5);
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(HttpClientTest, OneClientAlternatingBetweenServersReachesEachAndStillChecksUrls) {
  // The client keeps what it derived from the last URL: a different one must not reuse it.
  HttpClient client(io_.get_executor(), trusting());
  for (int i = 0; i < 3; ++i) {
    const auto plain =
        send(client, chat_request(fakes().plain.base_url(), "plain " + std::to_string(i)));
    EXPECT_NE(content_of(plain).find("echo: plain " + std::to_string(i)), std::string::npos);
    const auto tls = send(client, chat_request(fakes().tls.base_url(), "tls " + std::to_string(i)));
    EXPECT_NE(content_of(tls).find("echo: tls " + std::to_string(i)), std::string::npos);
    HttpRequest bad;
    bad.url = "ftp://" + fakes().plain.base_url().substr(7) + "/v1/chat/completions";
    EXPECT_THROW(send(client, bad), llm_caching::ConfigurationError);
  }
  EXPECT_EQ(client.connections_opened(), 2u);  // one per server, each reused
}

TEST_F(HttpClientTest, TlsConnectionsArePooledToo) {
  HttpClient client(io_.get_executor(), trusting());
  for (int i = 0; i < 3; ++i) send(client, chat_request(fakes().tls.base_url(), "tls again"));
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(HttpClientTest, ConcurrentRequestsEachGetAConnectionAndAllSucceed) {
  HttpClient client(io_.get_executor());
  int done = 0;
  for (int i = 0; i < 4; ++i) {
    asio::co_spawn(io_, client.send(chat_request(fakes().plain.base_url(), "parallel")),
                   [&](std::exception_ptr error, HttpResponse response) {
                     EXPECT_FALSE(error);
                     EXPECT_EQ(response.status, 200);
                     ++done;
                   });
  }
  // Not io_.run(): the pooled connections' idle timer keeps the loop busy for 30 s.
  while (done < 4) io_.run_one();
  EXPECT_EQ(done, 4);
  EXPECT_EQ(client.connections_opened(), 4u);
  send(client, chat_request(fakes().plain.base_url(), "after"));  // served by a pooled connection
  EXPECT_EQ(client.connections_opened(), 4u);
}

TEST_F(HttpClientTest, StalePooledConnectionIsRetriedOnAFreshOne) {
  const std::uint16_t port = llmc_test::free_tcp_port();
  HttpClient client(io_.get_executor());
  auto first = std::make_unique<FakeProvider>(llmc_test::FakeProviderOptions{.port = port});
  const std::string base = first->base_url();
  EXPECT_EQ(send(client, chat_request(base, "before restart")).status, 200);
  first.reset();  // the pooled connection's server is gone
  FakeProvider second({.port = port});
  const auto answer = send(client, chat_request(base, "after restart"));
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST_F(HttpClientTest, UntrustedCertificateFailsVerificationAndNamesTheHost) {
  HttpClient client(io_.get_executor());  // system store only: the test CA is unknown
  const auto error =
      transport_error_of([&] { send(client, chat_request(fakes().tls.base_url(), "x")); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind(), Kind::tls_verify);
  EXPECT_NE(std::string(error->what()).find("certificate verify failed"), std::string::npos);
  EXPECT_NE(std::string(error->what()).find(fakes().tls.host_port()), std::string::npos);
}

TEST_F(HttpClientTest, VerificationCanBeSwitchedOff) {
  HttpClientOptions options;
  options.verify_peer = false;
  HttpClient client(io_.get_executor(), options);
  EXPECT_EQ(send(client, chat_request(fakes().tls.base_url(), "unverified")).status, 200);
}

TEST_F(HttpClientTest, CertificateForAnotherHostIsRejected) {
  const auto other = llmc_test::make_test_certificates({"DNS:other.invalid"});
  FakeProvider server({.tls = &other});
  HttpClientOptions options;
  options.ca_file = other.ca_cert;  // trusted CA, wrong name
  HttpClient client(io_.get_executor(), options);
  const auto error =
      transport_error_of([&] { send(client, chat_request(server.base_url(), "x")); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind(), Kind::tls_verify);
  EXPECT_NE(std::string(error->what()).find("verif"), std::string::npos);
  EXPECT_NE(std::string(error->what()).find(server.host_port()), std::string::npos);
}

TEST_F(HttpClientTest, MissingCaFileIsAConfigurationError) {
  HttpClientOptions options;
  options.ca_file = "/nonexistent/ca.pem";
  EXPECT_THROW(HttpClient(io_.get_executor(), options), llm_caching::ConfigurationError);
}

TEST_F(HttpClientTest, BadUrlIsAConfigurationError) {
  HttpClient client(io_.get_executor());
  HttpRequest request;
  request.url = "ftp://127.0.0.1/x";
  EXPECT_THROW(send(client, request), llm_caching::ConfigurationError);
  request.url = "http://127.0.0.1:99999/x";
  EXPECT_THROW(send(client, request), llm_caching::ConfigurationError);
  request.url = "not a url";
  EXPECT_THROW(send(client, request), llm_caching::ConfigurationError);
}

TEST_F(HttpClientTest, ClosedPortFailsWithConnectErrorThatHidesHeaders) {
  HttpClient client(io_.get_executor());
  const std::string base = "http://127.0.0.1:" + std::to_string(llmc_test::free_tcp_port());
  const auto error = transport_error_of([&] { send(client, chat_request(base, "x")); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind(), Kind::connect);
  EXPECT_NE(std::string(error->what()).find(base.substr(7)), std::string::npos);
  EXPECT_EQ(std::string(error->what()).find(kSecret), std::string::npos);
}

TEST_F(HttpClientTest, ServerThatNeverHandshakesHitsTheConnectTimeout) {
  // A TCP server that accepts and then says nothing: the TLS handshake never completes, and the
  // connect timeout (which covers connect, proxy CONNECT and the handshake) must end the wait.
  tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto held = std::make_shared<std::optional<tcp::socket>>();
  acceptor.async_accept([held](boost::system::error_code ec, tcp::socket socket) {
    if (!ec) held->emplace(std::move(socket));
  });
  HttpClientOptions options = trusting();
  options.connect_timeout = 300ms;
  HttpClient client(io_.get_executor(), options);
  const std::string base = "https://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  const auto error = transport_error_of([&] { send(client, chat_request(base, "x")); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind(), Kind::timeout) << error->what();
  EXPECT_NE(std::string(error->what()).find("timed out after 300 ms"), std::string::npos)
      << error->what();
  EXPECT_EQ(std::string(error->what()).find(kSecret), std::string::npos);
  EXPECT_TRUE(held->has_value());  // the server did accept; only the handshake hung
}

TEST_F(HttpClientTest, SlowServerHitsTheReadTimeout) {
  HttpClientOptions options;
  options.read_timeout = 200ms;
  HttpClient client(io_.get_executor(), options);
  const auto error = transport_error_of(
      [&] { send(client, chat_request(fakes().plain.base_url(), "slow", "delay-2000")); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind(), Kind::timeout);
  EXPECT_NE(std::string(error->what()).find(fakes().plain.host_port()), std::string::npos);
}

TEST_F(HttpClientTest, ABodyLargerThanTheSocketTakesAtOnceIsSentWholeToASlowReader) {
  // The client writes what the socket takes at once and waits for room for the rest; a server
  // that starts reading late must still get every byte. 32 MB is above any loopback buffer.
  tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto serve = [&]() -> asio::awaitable<void> {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    asio::steady_timer pause(io_, 300ms);  // the client's send buffer fills meanwhile
    co_await pause.async_wait(asio::use_awaitable);
    std::string head;
    const std::size_t head_end = co_await asio::async_read_until(socket, asio::dynamic_buffer(head),
                                                                 "\r\n\r\n", asio::use_awaitable);
    const auto at = head.find("content-length: ") + 16;  // as the client writes it
    const std::size_t length = std::stoull(head.substr(at, head.find("\r\n", at) - at));
    std::size_t received = head.size() - head_end;
    std::array<char, 65536> chunk;
    while (received < length) {
      received += co_await socket.async_read_some(asio::buffer(chunk), asio::use_awaitable);
    }
    const std::string body = std::to_string(received);
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                              "\r\nConnection: close\r\n\r\n" + body;
    co_await asio::async_write(socket, asio::buffer(reply), asio::use_awaitable);
  };
  asio::co_spawn(io_, serve(), asio::detached);
  HttpClientOptions options;
  options.read_timeout = 10s;  // a lost remainder fails here instead of hanging
  HttpClient client(io_.get_executor(), options);
  HttpRequest request =
      chat_request("http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()), "big");
  request.body.assign(32u << 20, 'x');
  const HttpResponse response = send(client, std::move(request));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, std::to_string(32u << 20));
}

TEST_F(HttpClientTest, TruncatedBodyIsAProtocolError) {
  HttpClient client(io_.get_executor());
  const auto error = transport_error_of(
      [&] { send(client, chat_request(fakes().plain.base_url(), "cut", "truncated")); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind(), Kind::protocol);
}

TEST_F(HttpClientTest, TruncatedBodyOverTlsIsAProtocolError) {
  HttpClient client(io_.get_executor(), trusting());
  const auto error = transport_error_of(
      [&] { send(client, chat_request(fakes().tls.base_url(), "cut", "truncated")); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind(), Kind::protocol);
}

TEST_F(HttpClientTest, DroppedConnectionIsAResetError) {
  HttpClient client(io_.get_executor());
  const auto error = transport_error_of(
      [&] { send(client, chat_request(fakes().plain.base_url(), "bye", "drop")); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind(), Kind::reset);
  EXPECT_NE(std::string(error->what()).find(fakes().plain.host_port()), std::string::npos);
}

TEST_F(HttpClientTest, ResponseAboveTheLimitIsTooLarge) {
  HttpClientOptions options;
  options.max_response_bytes = 64;
  HttpClient client(io_.get_executor(), options);
  const auto error = transport_error_of(
      [&] { send(client, chat_request(fakes().plain.base_url(), "big answer")); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind(), Kind::too_large);
}

TEST_F(HttpClientTest, StreamingDeliversSseChunksAndLeavesTheBodyEmpty) {
  HttpClient client(io_.get_executor());
  auto request = chat_request(fakes().plain.base_url(), "stream me");
  request.body =
      R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"s"}]})";
  std::string streamed;
  const auto response = run_sync(
      io_, client.send_streaming(request, [&](std::string_view chunk) { streamed += chunk; }));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-type"), "text/event-stream");
  EXPECT_TRUE(response.body.empty());
  EXPECT_EQ(streamed.rfind("data: {", 0), 0u);
  EXPECT_TRUE(streamed.ends_with("data: [DONE]\n\n"));
  send(client, chat_request(fakes().plain.base_url(), "after the stream"));
  EXPECT_EQ(client.connections_opened(), 1u);  // the chunked stream ended cleanly
}

TEST_F(HttpClientTest, StreamingErrorBodyIsReturnedWhole) {
  HttpClient client(io_.get_executor());
  auto request = chat_request(fakes().plain.base_url(), "no key");
  request.headers.clear();  // no Authorization: 401
  bool called = false;
  const auto response =
      run_sync(io_, client.send_streaming(request, [&](std::string_view) { called = true; }));
  EXPECT_EQ(response.status, 401);
  EXPECT_FALSE(called);
  EXPECT_EQ(json::parse(response.body).at("error").at("code"), "invalid_api_key");
}

/// A minimal HTTP proxy on loopback: CONNECT tunnels, absolute-URI requests are forwarded in
/// origin form. It records each request line it saw.
class TestProxy {
 public:
  explicit TestProxy(asio::io_context& io)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  std::vector<std::string> request_lines;
  std::vector<std::string> heads;

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto client =
          std::make_shared<tcp::socket>(co_await acceptor_.async_accept(asio::use_awaitable));
      asio::co_spawn(acceptor_.get_executor(), handle(client), asio::detached);
    }
  }
  static asio::awaitable<void> pump(std::shared_ptr<tcp::socket> from,
                                    std::shared_ptr<tcp::socket> to) {
    char data[8192];
    for (;;) {
      const std::size_t n = co_await from->async_read_some(asio::buffer(data), asio::use_awaitable);
      co_await asio::async_write(*to, asio::buffer(data, n), asio::use_awaitable);
    }
  }
  asio::awaitable<void> handle(std::shared_ptr<tcp::socket> client) {
    std::string head;
    co_await asio::async_read_until(*client, asio::dynamic_buffer(head), "\r\n\r\n",
                                    asio::use_awaitable);
    const std::string line = head.substr(0, head.find("\r\n"));
    request_lines.push_back(line);
    heads.push_back(head.substr(0, head.find("\r\n\r\n")));
    const std::string method = line.substr(0, line.find(' '));
    std::string target = line.substr(method.size() + 1, line.rfind(' ') - method.size() - 1);
    auto upstream = std::make_shared<tcp::socket>(acceptor_.get_executor());
    std::string authority = target;
    if (method != "CONNECT") {  // "http://host:port/path" -> "/path"
      authority = target.substr(7, target.find('/', 7) - 7);
      head.replace(method.size() + 1, target.size(), target.substr(target.find('/', 7)));
    }
    const auto colon = authority.rfind(':');
    co_await upstream->async_connect(
        tcp::endpoint(asio::ip::make_address(authority.substr(0, colon)),
                      static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1)))),
        asio::use_awaitable);
    if (method == "CONNECT") {
      const std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
      co_await asio::async_write(*client, asio::buffer(established), asio::use_awaitable);
    } else {
      co_await asio::async_write(*upstream, asio::buffer(head), asio::use_awaitable);
    }
    asio::co_spawn(acceptor_.get_executor(), pump(upstream, client), asio::detached);
    co_await pump(client, upstream);
  }

  tcp::acceptor acceptor_;
};

TEST_F(HttpClientTest, HttpsGoesThroughTheProxyWithConnect) {
  TestProxy proxy(io_);
  llmc_test::ScopedEnv via_proxy("HTTPS_PROXY", proxy.url());
  HttpClient client(io_.get_executor(), trusting());
  const auto answer = send(client, chat_request(fakes().tls.base_url(), "through the tunnel"));
  EXPECT_EQ(answer.status, 200);
  EXPECT_NE(content_of(answer).find("through the tunnel"), std::string::npos);
  ASSERT_EQ(proxy.request_lines.size(), 1u);
  EXPECT_EQ(proxy.request_lines[0], "CONNECT " + fakes().tls.host_port() + " HTTP/1.1");
  EXPECT_EQ(proxy.heads[0].find(kSecret), std::string::npos);  // the key stays inside TLS
}

TEST_F(HttpClientTest, PlainHttpGoesThroughTheProxyWithAbsoluteUri) {
  TestProxy proxy(io_);
  llmc_test::ScopedEnv via_proxy("http_proxy", "http://user:pw@" + proxy.url().substr(7));
  HttpClient client(io_.get_executor());
  HttpRequest list;
  list.method = "GET";
  list.url = fakes().plain.base_url() + "/v1/models?limit=2";
  const auto models = send(client, list);
  EXPECT_EQ(models.status, 200);
  ASSERT_EQ(proxy.request_lines.size(), 1u);
  EXPECT_EQ(proxy.request_lines[0],
            "GET " + fakes().plain.base_url() + "/v1/models?limit=2 HTTP/1.1");
  EXPECT_NE(proxy.heads[0].find("Proxy-Authorization: Basic dXNlcjpwdw=="), std::string::npos);
}

TEST_F(HttpClientTest, NoProxyBypassesTheProxy) {
  const std::string dead_proxy = "http://127.0.0.1:" + std::to_string(llmc_test::free_tcp_port());
  llmc_test::ScopedEnv via_proxy("HTTPS_PROXY", dead_proxy);
  {
    HttpClient client(io_.get_executor(), trusting());
    const auto error =
        transport_error_of([&] { send(client, chat_request(fakes().tls.base_url(), "via dead")); });
    ASSERT_TRUE(error);
    EXPECT_EQ(error->kind(), Kind::connect);
    EXPECT_NE(std::string(error->what()).find("proxy"), std::string::npos);
  }
  llmc_test::ScopedEnv bypass("NO_PROXY", "example.com, 127.0.0.1");
  HttpClient client(io_.get_executor(), trusting());
  EXPECT_EQ(send(client, chat_request(fakes().tls.base_url(), "direct")).status, 200);
}

}  // namespace

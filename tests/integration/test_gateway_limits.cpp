// The limits a public-facing gateway needs (issue 25, docs/SECURITY-MODEL.md): request line
// length, head size, a head that trickles in (slowloris), upstream answers over the size limit,
// upstream connections left idle by a burst of misses.
// Each over real sockets against `llm-caching serve` and the fake provider: the status the client
// sees, the connection closed, the refusal counted in llmc_gateway_refused_total{reason}.
// (--max-connections and --max-header-fields: test_gateway_security.cpp.)
#include <gtest/gtest.h>

#include "integration/gateway_harness.hpp"
#include "support/sockets.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <thread>
#include <vector>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::int64_t refusals(const GatewayProcess& gateway, const std::string& reason) {
  return metric_sample(gateway.base_url(), "llmc_gateway_refused_total{reason=\"" + reason + "\"}");
}

/// Writes `bytes` and reads until the server closes the connection; write errors (the server
/// may close first) end the writing, not the test.
std::string exchange_until_closed(std::uint16_t port, const std::string& bytes) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  boost::system::error_code ec;
  asio::write(socket, asio::buffer(bytes), ec);
  std::string out;
  char buffer[8192];
  for (;;) {
    const std::size_t n = socket.read_some(asio::buffer(buffer), ec);
    if (ec) break;
    out.append(buffer, n);
  }
  return out;
}

TEST(GatewayLimits, ARequestLineOverTheLimitIs414AndCloses) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--max-request-line", "256", "--max-header-bytes", "2048"});
  // Over --max-request-line, within the head's limit: the head is read, then refused.
  const std::string long_query(300, 'q');
  const std::string over = exchange_until_closed(
      gateway.port(), "GET /v1/models?x=" + long_query + " HTTP/1.1\r\nhost: x\r\n\r\n");
  EXPECT_TRUE(over.starts_with("HTTP/1.1 414")) << over;
  EXPECT_NE(over.find("request line too long"), std::string::npos) << over;
  EXPECT_EQ(over.find(long_query), std::string::npos) << "the query is never echoed";
  // Longer than the whole head may be: refused while the line is still being read.
  const std::string beyond = exchange_until_closed(
      gateway.port(),
      "POST /v1/chat/completions?x=" + std::string(4000, 'q') + " HTTP/1.1\r\nhost: x\r\n\r\n");
  EXPECT_TRUE(beyond.starts_with("HTTP/1.1 414")) << beyond;
  // A request line within the limit is served.
  const HttpResponse ok = send(post(gateway.base_url() + "/v1/chat/completions?x=short",
                                    openai_body("short line"), {{"authorization", "Bearer k"}}));
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(refusals(gateway, "request_line_too_long"), 2);
  EXPECT_EQ(upstream_calls(fake), 1);
}

TEST(GatewayLimits, AHeadOverItsByteLimitIs431InTheRoutesFormat) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--max-header-bytes", "2048"});
  const std::string r = exchange_until_closed(
      gateway.port(), "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-padding: " +
                          std::string(3000, 'p') + "\r\ncontent-length: 2\r\n\r\n{}");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 431")) << r;
  EXPECT_NE(r.find(R"("type":"error")"), std::string::npos) << r;  // Anthropic's format
  EXPECT_NE(r.find("limit 2048 bytes"), std::string::npos) << r;
  EXPECT_EQ(refusals(gateway, "header_too_large"), 1);
  EXPECT_EQ(upstream_calls(fake), 0);
}

TEST(GatewayLimits, AHeadThatTricklesInGets408AndTheConnectionCloses) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--header-timeout-ms", "300"});
  // A slowloris client: the head begun, never finished. The server's timer ends it; the read
  // below returns when the gateway closes the connection.
  const std::string r = exchange_until_closed(
      gateway.port(), "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: 1\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 408")) << r;
  EXPECT_NE(r.find("request head not complete within 300 ms"), std::string::npos) << r;
  EXPECT_NE(r.find("connection: close"), std::string::npos) << r;
  EXPECT_EQ(refusals(gateway, "header_timeout"), 1);
  EXPECT_EQ(upstream_calls(fake), 0);
}

TEST(GatewayLimits, AnIdleKeepAliveConnectionIsNotAHeadTimeout) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--header-timeout-ms", "200"});
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), gateway.port()});
  // Idle for longer than the head timeout: the idle wait is --request-timeout-ms (60 s).
  std::this_thread::sleep_for(600ms);
  const std::string body = openai_body("after a pause");
  const std::string request =
      "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
      "authorization: Bearer k\r\nconnection: close\r\n"
      "content-type: application/json\r\ncontent-length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  asio::write(socket, asio::buffer(request));
  std::string out;
  boost::system::error_code ec;
  asio::read(socket, asio::dynamic_buffer(out), ec);
  EXPECT_TRUE(out.starts_with("HTTP/1.1 200")) << out;
  EXPECT_EQ(refusals(gateway, "header_timeout"), 0);
}

TEST(GatewayLimits, AnUpstreamAnswerOverTheLimitIs502NotRetriedNotCached) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--max-upstream-response-bytes", "64"});
  const auto ask = [&] {
    return send(post(gateway.base_url() + "/v1/chat/completions", openai_body("large answer"),
                     {{"authorization", "Bearer k"}}));
  };
  const HttpResponse r = ask();
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(r.body.find("larger than this gateway accepts"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("127.0.0.1"), std::string::npos) << r.body;
  EXPECT_EQ(upstream_calls(fake), 1) << "the same answer would be as large again: no retry";
  EXPECT_EQ(ask().status, 502);  // nothing was cached
  EXPECT_EQ(upstream_calls(fake), 2);
  // An uncached pass-through answer is held to the same limit.
  HttpRequest models;
  models.method = "GET";
  models.url = gateway.base_url() + "/v1/models";
  EXPECT_EQ(send(models).status, 502);
  EXPECT_EQ(refusals(gateway, "upstream_too_large"), 3);
}

TEST(GatewayLimits, AStreamedAnswerOverTheLimitIsCutAndCounted) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--max-upstream-response-bytes", "300"});
  const std::string body =
      openai_body("a streamed answer long enough to pass three hundred bytes", true);
  // Either refused before the first byte was relayed (502), or cut part way: never complete.
  const std::string r = exchange_until_closed(
      gateway.port(),
      "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "
      "k\r\nconnection: close\r\ncontent-type: application/json\r\n"
      "content-length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 502") || r.find("[DONE]") == std::string::npos) << r;
  EXPECT_EQ(r.find("0\r\n\r\n"), std::string::npos) << "a cut stream must not end cleanly: " << r;
  EXPECT_EQ(refusals(gateway, "upstream_too_large"), 1);
}

TEST(GatewayLimits, UpstreamConnectionsABurstLeftIdleCloseAfterTheIdleTimeout) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--upstream-idle-timeout-ms", "300"});
  // Slow misses at once: each holds an upstream connection of its own while it waits.
  std::vector<std::thread> callers;
  std::vector<int> statuses(6, 0);
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    callers.emplace_back([&, i] {
      statuses[i] = send(post(gateway.base_url() + "/v1/chat/completions",
                              openai_body("burst " + std::to_string(i)),
                              {{"authorization", "Bearer k"}, {"x-fake-behavior", "delay-500"}}))
                        .status;
    });
  }
  for (auto& caller : callers) caller.join();
  for (const int status : statuses) EXPECT_EQ(status, 200);
  // Kept for reuse, then closed once idle for 300 ms: wait for it (bounded).
  const auto held = [&] { return llmc_test::open_sockets_to(gateway.pid(), fake.port()); };
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (held() > 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(held(), 0u);
  // The next miss opens a fresh connection.
  EXPECT_EQ(send(post(gateway.base_url() + "/v1/chat/completions", openai_body("after the burst"),
                      {{"authorization", "Bearer k"}}))
                .status,
            200);
  EXPECT_EQ(upstream_calls(fake), 7);
}

TEST(GatewayLimits, AnIdleUpstreamConnectionDoesNotHoldUpTheShutdown) {
  FakeProvider fake;
  GatewayProcess gateway(fake);  // the default idle timeout: 30 s
  EXPECT_EQ(send(post(gateway.base_url() + "/v1/chat/completions", openai_body("one miss"),
                      {{"authorization", "Bearer k"}}))
                .status,
            200);
  EXPECT_EQ(llmc_test::open_sockets_to(gateway.pid(), fake.port()), 1u);  // kept for reuse
  // SIGTERM: the worker closes it and ends now (stop() kills after 5 s: exit code 137).
  EXPECT_EQ(gateway.stop(), 0);
}

}  // namespace

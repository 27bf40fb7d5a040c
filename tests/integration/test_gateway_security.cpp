// `llm-caching serve` against an attacker (issue 31): each test replays one attack that once
// worked, on loopback against the real gateway and the fake provider, and checks it does no harm
// now. docs/SECURITY-MODEL.md lists what the gateway defends against.
#include <gtest/gtest.h>

#include "integration/gateway_harness.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>

namespace {

using namespace gateway_test;
using llmc_test::FakeProvider;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// The gateway's resident memory, from /proc.
std::int64_t rss_bytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

/// A counter of the gateway's /metrics, by its full name with labels.
std::int64_t metric(const GatewayProcess& gateway, const std::string& series) {
  return metric_sample(gateway.base_url(), series);
}

std::string chat_body(const std::string& text) {
  return openai_body(text);
}

/// The number of responses in raw bytes read from a connection.
int response_count(const std::string& raw) {
  int count = 0;
  for (auto at = raw.find("HTTP/1.1 "); at != std::string::npos; at = raw.find("HTTP/1.1 ", at + 1))
    ++count;
  return count;
}

// Finding 1: the Azure-style `api-key` header is forwarded upstream, so it must choose the
// partition: AZ-B once got AZ-A's answer as a HIT with no upstream call.
TEST(GatewaySecurity, ForwardedApiKeyHeadersNeverShareAnAnswer) {
  FakeProvider fake;
  setenv("LLMC_TEST_UPSTREAM_KEY", "sk-gateway", 1);  // the fake wants a bearer token
  GatewayProcess gateway(fake, {"--upstream-key-env", "openai=LLMC_TEST_UPSTREAM_KEY"});
  const std::string url = gateway.base_url() + "/v1/chat/completions";
  const std::string body = chat_body("azure tenants");
  auto ask = [&](std::vector<std::pair<std::string, std::string>> headers) {
    return send(post(url, body, std::move(headers))).header("x-llm-cache");
  };
  EXPECT_EQ(ask({{"api-key", "AZ-A"}}), "MISS");
  EXPECT_EQ(ask({{"api-key", "AZ-B"}}), "MISS");
  EXPECT_EQ(ask({}), "MISS");  // keyless callers have their own partition
  EXPECT_EQ(ask({{"api-key", "AZ-A"}}), "HIT");
  EXPECT_EQ(ask({}), "HIT");
  EXPECT_EQ(upstream_calls(fake), 3);
}

TEST(GatewaySecurity, RequireKeyRefusesKeylessCallersInTheirRoutesFormat) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--require-key"});
  const HttpResponse keyless =
      send(post(gateway.base_url() + "/v1/messages", anthropic_body("no key")));
  EXPECT_EQ(keyless.status, 401) << keyless.body;
  EXPECT_EQ(json::parse(keyless.body).at("type"), "error");
  const HttpResponse keyed = send(post(gateway.base_url() + "/v1/messages",
                                       anthropic_body("no key"), {{"x-api-key", "sk-ant"}}));
  EXPECT_EQ(keyed.status, 200) << keyed.body;
  EXPECT_EQ(upstream_calls(fake), 1);
  EXPECT_EQ(metric(gateway, R"(llmc_gateway_refused_total{reason="no_key"})"), 1);
}

// Finding 2: 20 keyless connections that each send most of a body and never finish once took
// the gateway from 44 to 644 MB. The bodies in flight share one budget (128 MiB by default):
// 30 such connections now add about that much (RSS 15 -> 144 MB, measured), the rest get 503.
TEST(GatewaySecurity, UnfinishedBodiesStayWithinTheSharedBudget) {
  FakeProvider fake;
  GatewayProcess gateway(fake);
  const std::int64_t before = rss_bytes(gateway.pid());
  ASSERT_GT(before, 0);
  constexpr std::size_t kBody = 8'000'000;  // within the 8 MiB default body limit
  const std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
      "content-type: application/json\r\ncontent-length: " +
      std::to_string(kBody) + "\r\n\r\n";
  const std::string most(kBody - 100'000, ' ');
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::socket>> sockets;
  for (int i = 0; i < 30; ++i) {  // 30 x 7.9 MB: twice the budget
    auto socket = std::make_unique<tcp::socket>(io);
    socket->connect({asio::ip::make_address("127.0.0.1"), gateway.port()});
    boost::system::error_code ec;  // a refused connection may be closed under our write
    asio::write(*socket, asio::buffer(head), ec);
    asio::write(*socket, asio::buffer(most), ec);
    sockets.push_back(std::move(socket));
  }
  std::this_thread::sleep_for(300ms);
  const std::int64_t during = rss_bytes(gateway.pid());
  // The stated bound: the budget plus 32 MiB for everything else.
  EXPECT_LT(during - before, (128 + 32) << 20) << "RSS went from " << before << " to " << during;
  std::printf("RSS %lld -> %lld bytes\n", static_cast<long long>(before),
              static_cast<long long>(during));
  EXPECT_GE(metric(gateway, R"(llmc_gateway_refused_total{reason="body_budget"})"), 4);
  sockets.clear();
  // The gateway still serves, and the budget came back.
  const HttpResponse after =
      send(post(gateway.base_url() + "/v1/chat/completions", chat_body("after the flood"),
                {{"authorization", "Bearer k"}}));
  EXPECT_EQ(after.status, 200) << after.body;
}

TEST(GatewaySecurity, ChunkedBodiesCountAgainstTheBudgetAsTheyGrow) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--max-body-bytes-in-flight", "4000000"});
  const std::string head =
      "POST /v1/messages HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
      "content-type: application/json\r\n\r\n";
  const std::string chunk = "100000\r\n" + std::string(0x100000, ' ') + "\r\n";
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::socket>> sockets;
  for (int i = 0; i < 3; ++i) {  // 3 x 2 MiB > 4,000,000
    auto socket = std::make_unique<tcp::socket>(io);
    socket->connect({asio::ip::make_address("127.0.0.1"), gateway.port()});
    boost::system::error_code ec;
    asio::write(*socket, asio::buffer(head), ec);
    asio::write(*socket, asio::buffer(chunk), ec);
    asio::write(*socket, asio::buffer(chunk), ec);
    sockets.push_back(std::move(socket));
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_GE(metric(gateway, R"(llmc_gateway_refused_total{reason="body_budget"})"), 1);
}

TEST(GatewaySecurity, ConnectionsPastTheLimitGet503InTheirRoutesFormat) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--max-connections", "3"});
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::socket>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(std::make_unique<tcp::socket>(io));
    idle.back()->connect({asio::ip::make_address("127.0.0.1"), gateway.port()});
  }
  std::this_thread::sleep_for(100ms);
  const std::string body = anthropic_body("over the limit");
  const std::string refused =
      raw_exchange(gateway.port(),
                   "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\n"
                   "content-type: application/json\r\ncontent-length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_TRUE(refused.starts_with("HTTP/1.1 503")) << refused;
  EXPECT_NE(refused.find("retry-after: 1"), std::string::npos) << refused;
  EXPECT_NE(refused.find(R"("type":"error")"), std::string::npos) << refused;  // Anthropic's
  idle.clear();
  std::this_thread::sleep_for(400ms);
  const HttpResponse served =
      send(post(gateway.base_url() + "/v1/messages", body, {{"x-api-key", "k"}}));
  EXPECT_EQ(served.status, 200) << served.body;
  EXPECT_GE(metric(gateway, R"(llmc_gateway_refused_total{reason="connections"})"), 1);
}

// Finding 3: trailer fields were obeyed as controls, chose the tenant and were forwarded.
TEST(GatewaySecurity, TrailerFieldsAreNeverHeaders) {
  FakeProvider fake;
  GatewayProcess gateway(fake);
  const std::string body = chat_body("trailers");
  auto chunked = [&](const std::string& headers, const std::string& trailers) {
    std::ostringstream hex;
    hex << std::hex << body.size();
    return "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
           "transfer-encoding: chunked\r\nconnection: close\r\n" +
           headers + "\r\n" + hex.str() + "\r\n" + body + "\r\n0\r\n" + trailers + "\r\n";
  };
  // A trailer that says only-if-cached is not obeyed: a miss goes upstream (else 504).
  const std::string first = raw_exchange(
      gateway.port(), chunked("authorization: Bearer A\r\n", "x-llm-cache: only-if-cached\r\n"));
  EXPECT_TRUE(first.starts_with("HTTP/1.1 200")) << first;
  EXPECT_NE(first.find("x-llm-cache: MISS"), std::string::npos) << first;
  // A trailer Authorization does not choose the tenant: the header's key (A) does.
  const std::string second = raw_exchange(
      gateway.port(), chunked("authorization: Bearer A\r\n", "authorization: Bearer B\r\n"));
  EXPECT_NE(second.find("x-llm-cache: HIT"), std::string::npos) << second;
  const HttpResponse as_b = send(
      post(gateway.base_url() + "/v1/chat/completions", body, {{"authorization", "Bearer B"}}));
  EXPECT_EQ(as_b.header("x-llm-cache"), "MISS");
  EXPECT_EQ(upstream_calls(fake), 2);
}

// Finding 4: `Transfer-Encoding: xchunked` with a Content-Length was framed by the length, and
// a request smuggled after the body ran too.
TEST(GatewaySecurity, TransferEncodingsThatCannotBeFramedAreRefusedAndClose) {
  FakeProvider fake;
  GatewayProcess gateway(fake);
  const std::string body = chat_body("smuggled");
  const std::string smuggled = "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
  auto attempt = [&](const std::string& framing) {
    return raw_exchange(gateway.port(),
                        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                        "authorization: Bearer k\r\ncontent-type: application/json\r\n" +
                            framing + "content-length: " + std::to_string(body.size()) +
                            "\r\n\r\n" + body + smuggled);
  };
  const std::string xchunked = attempt("transfer-encoding: xchunked\r\n");
  EXPECT_TRUE(xchunked.starts_with("HTTP/1.1 400")) << xchunked;
  EXPECT_EQ(response_count(xchunked), 1) << xchunked;
  const std::string with_length = attempt("transfer-encoding: chunked\r\n");
  EXPECT_EQ(response_count(with_length), 1) << with_length;
  EXPECT_TRUE(with_length.starts_with("HTTP/1.1 400")) << with_length;
  const std::string gzip = raw_exchange(gateway.port(),
                                        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                                        "transfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n" +
                                            smuggled);
  EXPECT_TRUE(gzip.starts_with("HTTP/1.1 501")) << gzip;
  EXPECT_EQ(response_count(gzip), 1) << gzip;
  EXPECT_EQ(upstream_calls(fake), 0);
  EXPECT_EQ(metric(gateway, R"(llmc_gateway_refused_total{reason="framing"})"), 3);
}

// Finding 5: {"messages": A, "messages": B} keyed as B while the upstream could answer A.
TEST(GatewaySecurity, ARepeatedKeyInTheBodyIs400NamingIt) {
  FakeProvider fake;
  GatewayProcess gateway(fake);
  const std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"A"}],)"
                           R"("messages":[{"role":"user","content":"B"}]})";
  const HttpResponse r = send(
      post(gateway.base_url() + "/v1/chat/completions", body, {{"authorization", "Bearer k"}}));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(json::parse(r.body).at("error").at("message").as_string().find("\"messages\""),
            json::string::npos)
      << r.body;
  EXPECT_EQ(upstream_calls(fake), 0);
}

// Finding 6: one header's value could spell another header in the key material.
TEST(GatewaySecurity, AHeaderValueCannotPassForAnotherHeader) {
  FakeProvider fake;
  GatewayProcess gateway(fake);
  const std::string body = anthropic_body("shaping headers");
  auto ask = [&](std::vector<std::pair<std::string, std::string>> headers) {
    headers.emplace_back("x-api-key", "sk-ant");
    return send(post(gateway.base_url() + "/v1/messages", body, std::move(headers)))
        .header("x-llm-cache");
  };
  EXPECT_EQ(ask({{"anthropic-beta", "a;anthropic-version=2024-01-01"}}), "MISS");
  EXPECT_EQ(ask({{"anthropic-beta", "a"}, {"anthropic-version", "2024-01-01"}}), "MISS");
  EXPECT_EQ(upstream_calls(fake), 2);
}

// Finding 7: a caller asked for an hour of retries, which went on after it hung up.
TEST(GatewaySecurity, ACallerCannotAskForMoreRetriesThanTheCap) {
  FakeProvider fake;
  GatewayProcess gateway(fake, {"--max-wait-cap-ms", "400"});
  const auto started = std::chrono::steady_clock::now();
  const HttpResponse r =
      send(post(gateway.base_url() + "/v1/chat/completions",
                openai_body("capped", false, "gpt-4o-mini+429ms-100000"),
                {{"authorization", "Bearer k"}, {"x-llm-max-wait-ms", "3600000"}}));
  EXPECT_EQ(r.status, 429) << r.body;
  // 50 ms apart over a 400 ms budget: about 9 calls, never the hour's worth.
  EXPECT_LE(upstream_calls(fake), 12);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST(GatewaySecurity, RetriesStopWhenTheCallerHangsUp) {
  FakeProvider fake;
  GatewayProcess gateway(fake);  // the default cap: 120 s
  const std::string body = openai_body("abandoned", false, "gpt-4o-mini+429ms-100000");
  {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), gateway.port()});
    asio::write(socket, asio::buffer("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                                     "authorization: Bearer k\r\nx-llm-max-wait-ms: 60000\r\n"
                                     "content-type: application/json\r\ncontent-length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body));
    std::this_thread::sleep_for(300ms);
  }  // the client hangs up
  std::this_thread::sleep_for(300ms);
  const std::int64_t after_hangup = upstream_calls(fake);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(upstream_calls(fake), after_hangup);  // no call after the caller left
  EXPECT_GE(after_hangup, 2);
  EXPECT_LE(after_hangup, 20);
}

// Finding 8: thousands of header fields were accepted and forwarded; 431s and 400s came in
// OpenAI's shape on every route; 502s named the upstream's address.
TEST(GatewaySecurity, TooManyHeaderFieldsIs431InTheRoutesFormat) {
  FakeProvider fake;
  GatewayProcess gateway(fake);
  std::string fields;
  for (int i = 0; i < 150; ++i) fields += "x-f" + std::to_string(i) + ": v\r\n";
  const std::string r = raw_exchange(gateway.port(), "POST /v1/messages HTTP/1.1\r\nhost: x\r\n" +
                                                         fields + "content-length: 2\r\n\r\n{}");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 431")) << r;
  EXPECT_NE(r.find(R"("type":"error")"), std::string::npos) << r;
  const std::string gemini =
      raw_exchange(gateway.port(),
                   "POST /v1beta/models/gemini-2.0-flash:generateContent HTTP/1.1\r\n"
                   "host: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n");
  EXPECT_TRUE(gemini.starts_with("HTTP/1.1 400")) << gemini;
  EXPECT_NE(gemini.find(R"("status":"INVALID_ARGUMENT")"), std::string::npos) << gemini;
  EXPECT_EQ(upstream_calls(fake), 0);
}

TEST(GatewaySecurity, ErrorsNeverNameTheUpstreamsAddress) {
  FakeProvider fake;
  const std::string port = std::to_string(llmc_test::free_tcp_port());
  GatewayProcess gateway(fake, {}, "http://127.0.0.1:" + port);
  const HttpResponse r =
      send(post(gateway.base_url() + "/v1/chat/completions", chat_body("nowhere"),
                {{"authorization", "Bearer k"}, {"x-llm-max-wait-ms", "0"}}));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(r.body.find("127.0.0.1"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find(port), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("could not connect to the upstream"), std::string::npos) << r.body;
  HttpRequest models;
  models.method = "GET";
  models.url = gateway.base_url() + "/v1/models";
  const HttpResponse listed = send(models);
  EXPECT_EQ(listed.status, 502);
  EXPECT_EQ(listed.body.find(port), std::string::npos) << listed.body;
}

}  // namespace

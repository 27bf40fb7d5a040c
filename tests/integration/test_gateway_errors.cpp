// `llm-caching serve` when things go wrong: every error status, broken and abandoned streams,
// pipelining, garbage on the wire, a graceful shutdown with a request in flight, model names
// that callers make up, and how connections are spread over the worker threads.
#include <gtest/gtest.h>

#include "gateway/gateway.hpp"
#include "integration/gateway_harness.hpp"
#include "providers/codec.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <sched.h>

#include <future>
#include <regex>
#include <sstream>
#include <thread>

namespace {

using namespace gateway_test;
using llm_caching::Provider;
using llmc_test::FakeProvider;
using namespace std::chrono_literals;

class GatewayErrors : public ::testing::Test {
 protected:
  FakeProvider fake;
  GatewayProcess gateway{fake, {"--body-limit", "4096", "--upstream-timeout-ms", "400"}};
  std::string url(const std::string& path) const { return gateway.base_url() + path; }
};

TEST_F(GatewayErrors, MalformedJsonIs400InEachProvidersFormat) {
  const HttpResponse openai =
      send(post(url("/v1/chat/completions"), "{not json", {{"authorization", "Bearer k"}}));
  EXPECT_EQ(openai.status, 400);
  EXPECT_EQ(json::parse(openai.body).at("error").at("type"), "invalid_request_error");

  const HttpResponse anthropic = send(post(url("/v1/messages"), "[1, 2]", {{"x-api-key", "k"}}));
  EXPECT_EQ(anthropic.status, 400);
  EXPECT_EQ(json::parse(anthropic.body).at("type"), "error");

  const HttpResponse gemini =
      send(post(url("/v1beta/models/gemini-2.0-flash:generateContent"), "", {}));
  EXPECT_EQ(gemini.status, 400);
  EXPECT_EQ(json::parse(gemini.body).at("error").at("status"), "INVALID_ARGUMENT");

  const HttpResponse no_model = send(post(url("/v1/chat/completions"), R"({"messages": []})"));
  EXPECT_EQ(no_model.status, 400);
  EXPECT_EQ(upstream_calls(fake), 0);
}

TEST_F(GatewayErrors, UnknownRouteIs404AndWrongMethodIs405) {
  const HttpResponse missing = send(post(url("/v2/completions?key=SECRET"), "{}"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body.find("SECRET"), std::string::npos);  // queries are never echoed
  HttpRequest get;
  get.method = "GET";
  get.url = url("/v1/chat/completions");
  EXPECT_EQ(send(get).status, 405);
}

TEST_F(GatewayErrors, BodyTooLargeIs413WithOrWithoutContentLength) {
  const std::string big = openai_body(std::string(8000, 'x'));
  const HttpResponse declared =
      send(post(url("/v1/chat/completions"), big, {{"authorization", "Bearer k"}}));
  EXPECT_EQ(declared.status, 413);
  EXPECT_EQ(json::parse(declared.body).at("error").at("type"), "invalid_request_error");

  const CurlResult chunked =
      curl("-H 'Transfer-Encoding: chunked' -H 'x-api-key: k' --data-binary " + quoted(big) + " " +
           url("/v1/messages"));
  EXPECT_EQ(chunked.status, 413) << chunked.body;
  EXPECT_EQ(json::parse(chunked.body).at("error").at("type"), "request_too_large");
  EXPECT_EQ(upstream_calls(fake), 0);
}

TEST_F(GatewayErrors, UpstreamTimeoutIs504) {
  const HttpResponse r = send(post(url("/v1/chat/completions"), openai_body("slow"),
                                   {{"authorization", "Bearer k"},
                                    {"x-fake-behavior", "delay-3000"},
                                    {"x-llm-max-wait-ms", "0"}}));
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(json::parse(r.body).at("error").at("type"), "timeout");
}

TEST(GatewayUnreachable, UpstreamUnreachableIs502) {
  FakeProvider fake;  // only for the harness; the upstream is a closed port
  GatewayProcess gateway(fake, {},
                         "http://127.0.0.1:" + std::to_string(llmc_test::free_tcp_port()));
  const HttpResponse r = send(post(gateway.base_url() + "/v1/messages", anthropic_body("hello"),
                                   {{"x-api-key", "sk-secret-value"}, {"x-llm-max-wait-ms", "0"}}));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(json::parse(r.body).at("error").at("type"), "api_error");
  EXPECT_EQ(r.body.find("sk-secret-value"), std::string::npos);
}

TEST_F(GatewayErrors, Upstream4xxAndExhaustedRetriesArePassedThrough) {
  // No key: the fake answers 401 in OpenAI's format; the gateway relays it unchanged.
  const std::string body = openai_body("no key");
  const HttpResponse direct = send(post(fake.base_url() + "/v1/chat/completions", body));
  const HttpResponse relayed = send(post(url("/v1/chat/completions"), body));
  EXPECT_EQ(relayed.status, 401);
  EXPECT_EQ(relayed.body, direct.body);

  const HttpResponse server_error =
      send(post(url("/v1/messages"), anthropic_body("boom"),
                {{"x-api-key", "k"}, {"x-fake-behavior", "500"}, {"x-llm-max-wait-ms", "0"}}));
  EXPECT_EQ(server_error.status, 500);
  EXPECT_EQ(json::parse(server_error.body).at("error").at("type"), "api_error");
}

TEST_F(GatewayErrors, GarbageFromUpstreamIs502AndIsNotCached) {
  const std::string body = openai_body("garbage");
  const HttpResponse bad =
      send(post(url("/v1/chat/completions"), body,
                {{"authorization", "Bearer k"}, {"x-fake-behavior", "invalid-json"}}));
  EXPECT_EQ(bad.status, 502);
  const HttpResponse good =
      send(post(url("/v1/chat/completions"), body, {{"authorization", "Bearer k"}}));
  EXPECT_EQ(good.status, 200);
  EXPECT_EQ(good.header("x-llm-cache"), "MISS");
  EXPECT_EQ(upstream_calls(fake), 2);
}

TEST_F(GatewayErrors, AStreamThatBreaksIsTruncatedForTheClientAndNotStored) {
  const std::string body = openai_body("broken stream", true);
  const CurlResult broken =
      curl("-N -H 'authorization: Bearer k' -H 'x-fake-behavior: invalid-json' --data-binary " +
           quoted(body) + " " + url("/v1/chat/completions"));
  EXPECT_EQ(broken.status, 200);   // the head went out before the stream broke
  EXPECT_NE(broken.exit_code, 0);  // curl saw the connection close before the last chunk

  const HttpResponse next =
      send(post(url("/v1/chat/completions"), body, {{"authorization", "Bearer k"}}));
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.header("x-llm-cache"), "MISS");
  EXPECT_NE(next.body.find("data: [DONE]"), std::string::npos);
}

TEST_F(GatewayErrors, AClientThatLeavesMidStreamDoesNotPoisonTheCache) {
  const std::string body = openai_body("abandoned", true);
  const std::string request =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
      "Authorization: Bearer k\r\nx-fake-behavior: delay-300\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), gateway.port()});
    boost::asio::write(socket, boost::asio::buffer(request));
    // Wait until the call reached the provider, then hang up before any answer byte.
    while (upstream_calls(fake) < 1) std::this_thread::sleep_for(10ms);
  }
  const HttpResponse again =
      send(post(url("/v1/chat/completions"), body, {{"authorization", "Bearer k"}}));
  ASSERT_EQ(again.status, 200);
  const std::string assembled =
      llm_caching::providers::sse_to_response(Provider::openai, again.body);
  EXPECT_EQ(llm_caching::providers::parse_response(Provider::openai, assembled, false)
                .text.rfind("echo: abandoned", 0),
            0u);
  // The answer the provider was paid for was kept (or shared), not thrown away or truncated.
  EXPECT_EQ(upstream_calls(fake), 1);
}

TEST_F(GatewayErrors, PipelinedRequestsOnOneConnectionAreAnsweredInOrder) {
  auto request = [](const std::string& text, bool close) {
    const std::string body = openai_body(text);
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
           "Content-Type: application/json\r\n" +
           std::string(close ? "Connection: close\r\n" : "") +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  const std::string answer =
      raw_exchange(gateway.port(), request("first", false) + request("second", true));
  const auto first = answer.find("echo: first");
  const auto second = answer.find("echo: second");
  ASSERT_NE(first, std::string::npos) << answer;
  ASSERT_NE(second, std::string::npos) << answer;
  EXPECT_LT(first, second);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_NE(answer.find("HTTP/1.1 200", 1), std::string::npos);
  EXPECT_EQ(fake.stats().at("connections").as_int64(), 2);  // one upstream connection + stats
}

TEST_F(GatewayErrors, ABodyThatArrivesAfterItsHeadInPiecesIsReadWhole) {
  // The server parses a body that came with its head without waiting; one that comes later, in
  // pieces, or chunked, must still be read whole.
  const std::string body = openai_body("late body");
  const std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
      "Content-Type: application/json\r\nConnection: close\r\n";
  const std::size_t half = body.size() / 2;
  const std::string sized =
      raw_exchange_in_pieces(gateway.port(),
                             {head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n",
                              body.substr(0, half), body.substr(half)},
                             30ms);
  EXPECT_EQ(sized.rfind("HTTP/1.1 200", 0), 0u) << sized;
  EXPECT_NE(sized.find("echo: late body"), std::string::npos) << sized;

  const auto chunk = [](std::string_view data) {
    std::ostringstream hex;
    hex << std::hex << data.size();
    return hex.str() + "\r\n" + std::string(data) + "\r\n";
  };
  const std::string chunked = raw_exchange_in_pieces(
      gateway.port(),
      {head + "Transfer-Encoding: chunked\r\n\r\n" + chunk(body.substr(0, half)),
       chunk(body.substr(half)), "0\r\n\r\n"},
      30ms);
  EXPECT_EQ(chunked.rfind("HTTP/1.1 200", 0), 0u) << chunked;
  EXPECT_NE(chunked.find("echo: late body"), std::string::npos) << chunked;
  EXPECT_NE(chunked.find("x-llm-cache: HIT"), std::string::npos) << chunked;  // the same request
}

TEST_F(GatewayErrors, GarbageOnTheWireGets400AndTheServerCarriesOn) {
  const std::string reply = raw_exchange(gateway.port(), "THIS IS NOT HTTP\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  const std::string huge_header =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100000, 'a') + "\r\n\r\n";
  EXPECT_EQ(raw_exchange(gateway.port(), huge_header).rfind("HTTP/1.1 431", 0), 0u);
  const std::string health =
      raw_exchange(gateway.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(health.rfind("HTTP/1.1 200", 0), 0u);
}

TEST(GatewayShutdown, SigtermFinishesTheRequestInFlightThenExits) {
  FakeProvider fake;
  GatewayProcess gateway(fake);
  auto in_flight = std::async(std::launch::async, [&] {
    return send(post(gateway.base_url() + "/v1/chat/completions", openai_body("last words"),
                     {{"authorization", "Bearer k"}, {"x-fake-behavior", "delay-700"}}));
  });
  while (upstream_calls(fake) < 1) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(gateway.stop(), 0);  // SIGTERM, then wait for the exit
  const HttpResponse answer = in_flight.get();
  EXPECT_EQ(answer.status, 200);
  EXPECT_NE(answer.body.find("echo: last words"), std::string::npos);
  EXPECT_EQ(answer.header("connection"), "close");
}

/// A keep-alive client connection that asks for one GET at a time.
class KeepAliveConnection {
 public:
  explicit KeepAliveConnection(std::uint16_t port) : socket_(io_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  }
  /// The body of GET `path` (its status must be 200).
  std::string get(const std::string& path) {
    boost::asio::write(socket_,
                       boost::asio::buffer("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    const std::size_t head_end =
        boost::asio::read_until(socket_, boost::asio::dynamic_buffer(buffer_), "\r\n\r\n");
    const std::string head = buffer_.substr(0, head_end);
    buffer_.erase(0, head_end);
    EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
    std::smatch length;
    if (!std::regex_search(head, length,
                           std::regex("content-length: ([0-9]+)", std::regex::icase))) {
      ADD_FAILURE() << "no content-length in " << head;
      return {};
    }
    const std::size_t size = std::stoul(length[1]);
    if (buffer_.size() < size) {
      boost::asio::read(socket_, boost::asio::dynamic_buffer(buffer_),
                        boost::asio::transfer_exactly(size - buffer_.size()));
    }
    std::string body = buffer_.substr(0, size);
    buffer_.erase(0, size);
    return body;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  std::string buffer_;
};

/// The llmc_gateway_open_connections gauges, worker by worker.
std::vector<int> open_connections(const std::string& metrics) {
  std::vector<int> out;
  const std::regex gauge(R"re(llmc_gateway_open_connections\{worker="([0-9]+)"\} ([0-9]+))re");
  for (auto it = std::sregex_iterator(metrics.begin(), metrics.end(), gauge);
       it != std::sregex_iterator(); ++it) {
    EXPECT_EQ(std::stoul((*it)[1]), out.size());
    out.push_back(std::stoi((*it)[2]));
  }
  return out;
}

/// Runs the calling thread on one CPU while it lives, then where it ran before.
class OnCpu {
 public:
  explicit OnCpu(int cpu) {
    sched_getaffinity(0, sizeof before_, &before_);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    EXPECT_EQ(sched_setaffinity(0, sizeof set, &set), 0) << "cannot run on CPU " << cpu;
  }
  ~OnCpu() { sched_setaffinity(0, sizeof before_, &before_); }
  OnCpu(const OnCpu&) = delete;
  OnCpu& operator=(const OnCpu&) = delete;

 private:
  cpu_set_t before_{};
};

// Connections that come in on one CPU share a worker, so a client thread's connections do
// (docs/GATEWAY.md, "Server"), until that worker has more than twice the connections of the
// least busy one plus 8: then the least busy one gets them.
TEST(GatewayWorkers, ConnectionsFromOneCpuShareAWorkerUpToALimit) {
  ASSERT_GE(std::thread::hardware_concurrency(), 2u) << "this test needs 2 CPUs (CI has 2)";
  FakeProvider fake;
  GatewayProcess gateway(fake);  // --threads 2
  std::vector<std::unique_ptr<KeepAliveConnection>> clients;
  const auto connect = [&](int cpu, int count) {
    const OnCpu pinned(cpu);  // on loopback, the CPU that sends is the CPU the packets come in on
    for (int i = 0; i < count; ++i) {
      clients.push_back(std::make_unique<KeepAliveConnection>(gateway.port()));
      EXPECT_EQ(clients.back()->get("/healthz"), R"({"status":"ok"})");
    }
  };
  connect(0, 4);
  EXPECT_EQ(open_connections(clients[0]->get("/metrics")), (std::vector<int>{4, 0}));
  connect(1, 4);
  EXPECT_EQ(open_connections(clients[0]->get("/metrics")), (std::vector<int>{4, 4}));
  // 30 more from CPU 0: worker 0 takes them up to 2 * 4 + 8 = 16, then for each one worker 1
  // takes, worker 0 may take two more: 28 and 10.
  connect(0, 30);
  EXPECT_EQ(open_connections(clients[0]->get("/metrics")), (std::vector<int>{28, 10}));
}

// The gateway warns once per model missing from the price table. The names are the callers'
// (control characters are refused with 400 before): a long one must not flood the log, and
// endless new ones must grow neither the gateway nor its log.
TEST(GatewayUnpricedModels, EachIsNamedOnceAndPrintablyAndPastALimitTheNamesStop) {
  FakeProvider fake;
  GatewayProcess gateway{fake, {}, {}, GatewayStderr::captured};
  const auto call = [&](const std::string& model) {
    const json::object body{
        {"model", model},
        {"messages", json::array{json::object{{"role", "user"}, {"content", "hi"}}}}};
    return send(post(gateway.base_url() + "/v1/chat/completions", json::serialize(body),
                     {{"authorization", "Bearer k"}}))
        .status;
  };
  const std::size_t limit = llm_caching::gateway::kUnpricedModelsNamed;
  ASSERT_EQ(call("mod\u00e8le-" + std::string(5000, 'x')), 200);
  for (std::size_t i = 1; i < limit + 20; ++i) {
    ASSERT_EQ(call("made-up-model-" + std::to_string(i)), 200) << i;
  }
  ASSERT_EQ(call("made-up-model-1"), 200);  // named already
  gateway.stop();

  const std::string log = gateway.log();
  std::istringstream lines(log);
  std::size_t named = 0;
  std::size_t stopped = 0;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LT(line.size(), 1000U);
    if (line.find("no price for model '") != std::string::npos) ++named;
    if (line.find("the next ones are not named") != std::string::npos) ++stopped;
  }
  EXPECT_EQ(named, limit);
  EXPECT_EQ(stopped, 1U);
  // Bytes that are not printable ASCII show as '?'; past 200 bytes the name is cut.
  EXPECT_NE(log.find("no price for model 'mod??le-" + std::string(192, 'x') + "...'"),
            std::string::npos);
  EXPECT_EQ(log.find("made-up-model-" + std::to_string(limit) + "'"), std::string::npos);
}

}  // namespace

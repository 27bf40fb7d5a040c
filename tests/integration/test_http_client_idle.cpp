// HttpClient's idle connections against the fake provider over real loopback sockets: at most
// max_idle_per_host kept after a burst, each closed after idle_timeout (by the timer, or found
// expired by the next request), all closed by close_idle(). The sockets are counted in /proc.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>

#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "providers/http_client.hpp"
#include "support/fake_provider.hpp"
#include "support/sockets.hpp"
#include "support/test_env.hpp"

namespace {

namespace asio = boost::asio;
using llm_caching::providers::HttpClient;
using llm_caching::providers::HttpClientOptions;
using llm_caching::providers::HttpRequest;
using llm_caching::providers::HttpResponse;
using llmc_test::FakeProvider;
using llmc_test::run_sync;
using namespace std::chrono_literals;

HttpRequest chat(const FakeProvider& fake, const std::string& text, const std::string& behavior) {
  HttpRequest request;
  request.url = fake.base_url() + "/v1/chat/completions";
  request.headers = {{"Authorization", "Bearer sk-test"}, {"Content-Type", "application/json"}};
  if (!behavior.empty()) request.headers.emplace_back("x-fake-behavior", behavior);
  request.body =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":")" + text + R"("}]})";
  return request;
}

class HttpClientIdle : public ::testing::Test {
 protected:
  /// Sends `count` slow requests at once (each on its own connection: none is free before the
  /// last has started) and runs the loop until every answer is in.
  void burst(HttpClient& client, int count) {
    int answered = 0;
    for (int i = 0; i < count; ++i) {
      asio::co_spawn(io_, client.send(chat(fake_, "burst " + std::to_string(i), "delay-200")),
                     [&](std::exception_ptr error, HttpResponse response) {
                       EXPECT_FALSE(error);
                       EXPECT_EQ(response.status, 200);
                       ++answered;
                     });
    }
    io_.restart();
    while (answered < count) io_.run_one();
  }
  /// The sockets this process holds to the fake provider.
  std::size_t sockets() const { return llmc_test::open_sockets_to(getpid(), fake_.port()); }

  llmc_test::ScopedEnv no_http_proxy_{"HTTP_PROXY", std::nullopt};
  llmc_test::ScopedEnv no_http_proxy_lower_{"http_proxy", std::nullopt};
  FakeProvider fake_;
  asio::io_context io_;
};

TEST_F(HttpClientIdle, ABurstLeavesAtMostTheCapIdleAndOpen) {
  HttpClient client(io_.get_executor(), {.max_idle_per_host = 2, .idle_timeout = 1h});
  burst(client, 5);
  EXPECT_EQ(client.connections_opened(), 5u);
  EXPECT_EQ(client.idle_connections(), 2u);
  EXPECT_EQ(sockets(), 2u);  // the other three closed as their answers came
  // The two kept are reused.
  EXPECT_EQ(run_sync(io_, client.send(chat(fake_, "after", ""))).status, 200);
  EXPECT_EQ(client.connections_opened(), 5u);
}

TEST_F(HttpClientIdle, IdleConnectionsCloseOnceIdleForTheTimeout) {
  HttpClient client(io_.get_executor(), {.max_idle_per_host = 8, .idle_timeout = 100ms});
  burst(client, 3);
  EXPECT_EQ(client.connections_opened(), 3u);
  // The timer closes them: run the loop until it has (bounded, in case it never does).
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (client.idle_connections() > 0 && std::chrono::steady_clock::now() < give_up) {
    io_.restart();
    io_.run_for(50ms);
  }
  EXPECT_EQ(client.idle_connections(), 0u);
  EXPECT_EQ(sockets(), 0u);
  // Nothing is left armed: the loop ends by itself.
  io_.restart();
  io_.run();
  // The next request opens a fresh connection.
  EXPECT_EQ(run_sync(io_, client.send(chat(fake_, "later", ""))).status, 200);
  EXPECT_EQ(client.connections_opened(), 4u);
  EXPECT_EQ(client.idle_connections(), 1u);
}

TEST_F(HttpClientIdle, AnExpiredConnectionFoundByTheNextRequestIsClosedNotReused) {
  HttpClient client(io_.get_executor(), {.idle_timeout = 50ms});
  EXPECT_EQ(run_sync(io_, client.send(chat(fake_, "first", ""))).status, 200);
  EXPECT_EQ(client.idle_connections(), 1u);
  // The loop does not run meanwhile, so no timer closes it: the next request finds it expired.
  std::this_thread::sleep_for(120ms);
  EXPECT_EQ(run_sync(io_, client.send(chat(fake_, "second", ""))).status, 200);
  EXPECT_EQ(client.connections_opened(), 2u);
  EXPECT_EQ(client.idle_connections(), 1u);
  EXPECT_EQ(sockets(), 1u);
}

TEST_F(HttpClientIdle, CloseIdleClosesThemAllAndParksNoneAfter) {
  HttpClient client(io_.get_executor(), {.idle_timeout = 1h});
  burst(client, 2);
  EXPECT_EQ(client.idle_connections(), 2u);
  client.close_idle();
  EXPECT_EQ(client.idle_connections(), 0u);
  EXPECT_EQ(sockets(), 0u);
  // The timer is cancelled: the loop ends now, not in an hour.
  io_.restart();
  io_.run();
  EXPECT_EQ(run_sync(io_, client.send(chat(fake_, "after close", ""))).status, 200);
  EXPECT_EQ(client.idle_connections(), 0u);
  EXPECT_EQ(sockets(), 0u);
}

}  // namespace

// The Redis backend against real redis-server processes started by the test: plain, ACL users,
// wrong credentials, TLS (server verification, client certificates, untrusted servers), Redis
// killed in the middle of 1,000 cached calls, the CLI on a redis:// URL, and the per-io_context
// connections ("lanes") that long-lived callers get: pipelining, a dead idle connection, command
// timeouts, and the client or the io_context going away first.
#include "agent/runtime_impl.hpp"
#include "cache/cache_url.hpp"
#include "cache/redis_backend.hpp"
#include "cache/redis_client.hpp"
#include "cache/run_blocking.hpp"
#include "cache/tiered_cache.hpp"
#include "llm_caching/agent.hpp"
#include "llm_caching/errors.hpp"

#include "support/redis_server.hpp"
#include "support/scripted_model.hpp"
#include "support/test_env.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <functional>
#include <sstream>
#include <thread>

namespace llmc_test {
namespace {

using namespace llm_caching;
using namespace llm_caching::cache;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

RedisOptions redis_options(const std::string& url) {
  return std::get<RedisOptions>(parse_cache_url(url));
}

/// Connections the server has from clients named llm-caching (CLIENT SETNAME).
int our_connections(const RedisServer& server) {
  const std::string list = server.cli({"CLIENT", "LIST"});
  int count = 0;
  for (std::size_t at = list.find("name=llm-caching "); at != std::string::npos;
       at = list.find("name=llm-caching ", at + 1)) {
    ++count;
  }
  return count;
}

/// The id of our newest connection (the highest CLIENT LIST id named llm-caching).
std::string newest_connection_id(const RedisServer& server) {
  std::istringstream lines(server.cli({"CLIENT", "LIST"}));
  std::string line;
  long long newest = -1;
  while (std::getline(lines, line)) {
    if (line.find("name=llm-caching ") == std::string::npos) continue;
    newest = std::max(newest, std::stoll(line.substr(line.find("id=") + 3)));
  }
  return std::to_string(newest);
}

/// Polls `condition` every 50 ms; fails the test with `what` after 20 s. Waits for the server's
/// own asynchronous steps (closing a socket), never times the client.
void wait_until(const std::function<bool()>& condition, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) FAIL() << "timed out waiting for " << what;
    std::this_thread::sleep_for(50ms);
  }
}

std::string cache_error_of(Backend& backend) {
  try {
    run_blocking(backend.get("llm-caching:v1:test:k"));
  } catch (const CacheError& e) {
    return e.what();
  }
  return "no CacheError";
}

TEST(RedisBackend, PlainServerStoresWithTtlInTheChosenDatabase) {
  RedisServer server;
  RedisBackend backend(redis_options(server.url() + "/3?client_name=llmc-plain-test"));
  EXPECT_EQ(run_blocking(backend.get("llm-caching:v1:t:a")), std::nullopt);
  run_blocking(backend.put("llm-caching:v1:t:a", std::string("value\0with nul", 14), 60s));
  run_blocking(backend.put("llm-caching:v1:t:b", "forever", 0ms));
  run_blocking(backend.put("llm-caching:v1:other:c", "x", 0ms));
  EXPECT_EQ(run_blocking(backend.get("llm-caching:v1:t:a")), std::string("value\0with nul", 14));

  // Seen from another client: database 3, a PX expiry, no expiry for ttl 0, our client name.
  EXPECT_EQ(server.cli({"-n", "3", "EXISTS", "llm-caching:v1:t:a"}), "1");
  EXPECT_EQ(server.cli({"-n", "0", "EXISTS", "llm-caching:v1:t:a"}), "0");
  const int pttl = std::stoi(server.cli({"-n", "3", "PTTL", "llm-caching:v1:t:a"}));
  EXPECT_GT(pttl, 50'000);
  EXPECT_LE(pttl, 60'000);
  EXPECT_EQ(server.cli({"-n", "3", "PTTL", "llm-caching:v1:t:b"}), "-1");
  EXPECT_THAT(server.cli({"CLIENT", "LIST"}), HasSubstr("name=llmc-plain-test"));

  EXPECT_TRUE(run_blocking(backend.erase("llm-caching:v1:t:b")));
  EXPECT_FALSE(run_blocking(backend.erase("llm-caching:v1:t:b")));
  EXPECT_EQ(run_blocking(backend.clear("llm-caching:v1:t:")), 1u);
  EXPECT_EQ(run_blocking(backend.get("llm-caching:v1:t:a")), std::nullopt);
  EXPECT_EQ(run_blocking(backend.get("llm-caching:v1:other:c")), "x");
  const BackendStats stats = run_blocking(backend.stats());
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_GT(stats.bytes, 0u);
  EXPECT_EQ(stats.writes, 3u);
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.misses, 2u);
}

TEST(RedisBackend, ListKeysWalksThePrefixWithScanAPageAtATime) {
  RedisServer server;
  RedisBackend backend(redis_options(server.url() + "/2"));
  std::vector<std::string> stored;
  for (int i = 0; i < 25; ++i) {
    stored.push_back("llm-caching:v1:t:" + std::to_string(100 + i));
    run_blocking(backend.put(stored.back(), "v", 0ms));
  }
  run_blocking(backend.put("llm-caching:v1:other:1", "v", 0ms));
  EXPECT_TRUE(run_blocking(backend.try_lock("llm-caching:lock:llm-caching:v1:t:100", "tok", 60s)));
  std::vector<std::string> listed;
  std::string cursor;
  int pages = 0;
  do {
    Backend::KeyPage page = run_blocking(backend.list_keys("llm-caching:v1:t:", cursor, 5));
    listed.insert(listed.end(), page.keys.begin(), page.keys.end());
    cursor = page.cursor;
    ++pages;
  } while (!cursor.empty() && pages < 1000);
  std::sort(listed.begin(), listed.end());
  listed.erase(std::unique(listed.begin(), listed.end()), listed.end());
  EXPECT_EQ(listed, stored);
  EXPECT_GT(pages, 1);
}

TEST(RedisBackend, ConcurrentCallersFromManyThreadsArePipelined) {
  RedisServer server;
  RedisBackend backend(redis_options(server.url() + "?max_connections=2"));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string key = "llm-caching:v1:p:" + std::to_string(t) + "-" + std::to_string(i);
        run_blocking(backend.put(key, key + "-value", 0ms));
        if (run_blocking(backend.get(key)) != key + "-value") ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(server.cli({"DBSIZE"}), "800");
}

TEST(RedisLanes, ALongLivedIoContextPipelinesItsCoroutinesOverOneConnectionOfItsOwn) {
  RedisServer server;
  RedisBackend backend(redis_options(server.url() + "?max_connections=1"));
  boost::asio::io_context io;
  for (int i = 0; i < 40; ++i) {
    const std::string key = "llm-caching:v1:lane:" + std::to_string(i);
    run_to_completion(io, backend.put(key, "value " + std::to_string(i), 0ms));
    EXPECT_EQ(run_to_completion(io, backend.get(key)), "value " + std::to_string(i));
  }
  EXPECT_EQ(our_connections(server), 2);  // the client's own one, and this io_context's

  // 64 coroutines at once on that io_context: every answer reaches the right caller.
  std::atomic<int> mismatches{0};
  io.restart();
  for (int c = 0; c < 64; ++c) {
    boost::asio::co_spawn(
        io,
        [&, c]() -> boost::asio::awaitable<void> {
          for (int i = 0; i < 10; ++i) {
            const std::string key = "llm-caching:v1:lane:" + std::to_string((c * 10 + i) % 40);
            if (co_await backend.get(key) != "value " + std::to_string((c * 10 + i) % 40))
              ++mismatches;
          }
        },
        boost::asio::detached);
  }
  io.run();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(our_connections(server), 2);
  EXPECT_EQ(run_blocking(backend.stats()).errors, 0u);
}

TEST(RedisLanes, AnIoContextRunByTwoThreadsSharesOneLaneAndEveryAnswerReachesItsCaller) {
  RedisServer server;
  RedisBackend backend(redis_options(server.url() + "?max_connections=1"));
  for (int i = 0; i < 40; ++i) {
    run_blocking(backend.put("llm-caching:v1:mt:" + std::to_string(i), std::to_string(i), 0ms));
  }
  boost::asio::io_context io;
  std::atomic<int> mismatches{0};
  for (int c = 0; c < 32; ++c) {
    boost::asio::co_spawn(
        io,
        [&, c]() -> boost::asio::awaitable<void> {
          for (int i = 0; i < 50; ++i) {
            const int k = (c * 50 + i) % 40;
            if (co_await backend.get("llm-caching:v1:mt:" + std::to_string(k)) != std::to_string(k))
              ++mismatches;
          }
        },
        boost::asio::detached);
  }
  std::thread second([&] { io.run(); });
  io.run();
  second.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(our_connections(server), 2);  // the pool's one and the io_context's lane
}

TEST(RedisLanes, AnIdleConnectionClosedByTheServerIsReplacedAndTheCommandSentAgain) {
  RedisServer server;
  RedisBackend backend(redis_options(server.url() + "?max_connections=1"));
  boost::asio::io_context io;
  for (int i = 0; i < 20; ++i)
    run_to_completion(io, backend.put("llm-caching:v1:idle:k", "v", 0ms));
  ASSERT_EQ(our_connections(server), 2);
  server.cli({"CLIENT", "KILL", "ID", newest_connection_id(server)});  // the lane's
  wait_until([&] { return our_connections(server) == 1; }, "the server to close the lane");

  EXPECT_EQ(run_to_completion(io, backend.get("llm-caching:v1:idle:k")),
            "v");  // no error reaches us
  EXPECT_EQ(run_to_completion(io, backend.get("llm-caching:v1:idle:k")), "v");
  EXPECT_EQ(our_connections(server), 2);  // a new lane
  EXPECT_EQ(run_blocking(backend.stats()).errors, 0u);
}

TEST(RedisLanes, ALateReplyOnALaneIsACacheErrorAndTheLaneRecovers) {
  RedisServer server;
  const std::string port = std::to_string(server.port());
  RedisBackend backend(redis_options(server.url() + "?socket_timeout=0.3"));
  boost::asio::io_context io;
  for (int i = 0; i < 20; ++i)
    run_to_completion(io, backend.put("llm-caching:v1:late:k", "v", 0ms));
  // A pool of 4 (it fills in the background), and the lane the GET below goes over.
  wait_until([&] { return our_connections(server) == 5; }, "a pool of 4 and the lane");
  server.cli({"CLIENT", "PAUSE", "1500", "ALL"});  // the server holds every reply back
  try {
    run_to_completion(io, backend.get("llm-caching:v1:late:k"));
    ADD_FAILURE() << "expected CacheError";
  } catch (const CacheError& e) {
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + port + " did not answer within 300 ms"));
  }
  server.cli({"CLIENT", "UNPAUSE"});
  EXPECT_EQ(run_to_completion(io, backend.get("llm-caching:v1:late:k")), "v");
}

TEST(RedisLanes, TheClientOrTheIoContextMayGoFirst) {
  RedisServer server;
  {  // the client first: its lane's socket is closed when the io_context next runs
    auto io = std::make_unique<boost::asio::io_context>();
    auto backend = std::make_unique<RedisBackend>(redis_options(server.url()));
    for (int i = 0; i < 20; ++i)
      run_to_completion(*io, backend->put("llm-caching:v1:gone:k", "v", 0ms));
    // A pool of 4 and the lane; the pool fills, and the lane connects, in the background.
    wait_until([&] { return our_connections(server) == 5; }, "a pool of 4 and the lane");
    backend.reset();
    io->restart();
    io->run();
    wait_until([&] { return our_connections(server) == 0; }, "every connection to close");
  }
  {  // the io_context first: the client goes on from another one
    RedisBackend backend(redis_options(server.url()));
    auto io = std::make_unique<boost::asio::io_context>();
    for (int i = 0; i < 20; ++i)
      run_to_completion(*io, backend.put("llm-caching:v1:gone:k", "w", 0ms));
    io.reset();
    boost::asio::io_context other;
    for (int i = 0; i < 20; ++i)
      EXPECT_EQ(run_to_completion(other, backend.get("llm-caching:v1:gone:k")), "w");
  }
}

TEST(RedisBackend, AclUserWithPasswordAuthenticatesAsThatUser) {
  RedisServer server(
      RedisServerOptions{.acl_users = {{"cacheuser", "s3cret-acl"}}, .requirepass = "default-pw"});
  const std::string url = "redis://cacheuser:s3cret-acl@127.0.0.1:" + std::to_string(server.port());
  RedisClient client(redis_options(url));
  RedisCommand whoami{"ACL", "WHOAMI"};
  EXPECT_EQ(run_blocking(client.command(whoami)).text, "cacheuser");

  RedisBackend backend(redis_options(url));
  run_blocking(backend.put("llm-caching:v1:acl:k", "v", 0ms));
  EXPECT_EQ(run_blocking(backend.get("llm-caching:v1:acl:k")), "v");

  // The default user with only a password: redis://:password@host
  RedisBackend default_user(
      redis_options("redis://:default-pw@127.0.0.1:" + std::to_string(server.port())));
  EXPECT_EQ(run_blocking(default_user.get("llm-caching:v1:acl:k")), "v");
}

TEST(RedisBackend, WrongPasswordIsAClearCacheErrorWithoutThePassword) {
  RedisServer server(RedisServerOptions{.acl_users = {{"cacheuser", "right-one"}}});
  const std::string port = std::to_string(server.port());
  RedisBackend backend(redis_options("redis://cacheuser:wrong-hunter2@127.0.0.1:" + port));
  const std::string message = cache_error_of(backend);
  EXPECT_THAT(message, HasSubstr("refused the credentials of user 'cacheuser'"));
  EXPECT_THAT(message, HasSubstr("WRONGPASS"));
  EXPECT_THAT(message, HasSubstr("127.0.0.1:" + port));
  EXPECT_THAT(message, Not(HasSubstr("wrong-hunter2")));

  // Strict tiers raise it; default tiers carry on as on a miss and count the failure.
  auto shared = std::make_shared<RedisBackend>(
      redis_options("redis://cacheuser:wrong-hunter2@127.0.0.1:" + port));
  TieredCache strict(shared, 0, true);
  EXPECT_THROW(run_blocking(strict.get("llm-caching:v1:t:k", 0)), CacheError);
  TieredCache lenient(shared, 0, false);
  EXPECT_EQ(run_blocking(lenient.get("llm-caching:v1:t:k", 0)), nullptr);
  EXPECT_GE(run_blocking(lenient.stats()).backend_errors, 1u);
}

TEST(RedisBackend, UnreachableServerFailsPromptlyAndNamesHostAndPort) {
  const std::uint16_t port = free_tcp_port();  // nothing listens there
  RedisBackend backend(redis_options("redis://:pw-not-shown@127.0.0.1:" + std::to_string(port)));
  for (int i = 0; i < 3; ++i) {
    const std::string message = cache_error_of(backend);
    EXPECT_THAT(message, HasSubstr("127.0.0.1:" + std::to_string(port)));
    EXPECT_THAT(message, Not(HasSubstr("pw-not-shown")));
  }
}

/// A client certificate signed by the test CA (for tls-auth-clients yes).
struct ClientCertificate {
  std::string cert;
  std::string key;
};

ClientCertificate make_client_certificate(const TestCertificates& certs) {
  const TempDir& dir = certs.dir;
  run_command({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes", "-subj", "/CN=llm-caching test client", "-keyout", dir.file("client.key"),
               "-out", dir.file("client.csr")});
  run_command({"openssl", "x509", "-req", "-in", dir.file("client.csr"), "-CA", certs.ca_cert,
               "-CAkey", dir.file("ca.key"), "-set_serial", "7", "-days", "2", "-out",
               dir.file("client.pem")});
  return {dir.file("client.pem"), dir.file("client.key")};
}

std::string tls_url(const RedisServer& server, const std::string& query) {
  return "rediss://127.0.0.1:" + std::to_string(server.port()) + "/0?" + query;
}

TEST(RedisTls, VerifiesTheServerAgainstTheGivenCa) {
  const TestCertificates certs = make_test_certificates();
  RedisServer server(RedisServerOptions{
      .tls = RedisTls{certs.ca_cert, certs.server_cert, certs.server_key, false}});
  RedisBackend backend(redis_options(tls_url(server, "ssl_ca_certs=" + certs.ca_cert)));
  run_blocking(backend.put("llm-caching:v1:tls:k", "over TLS", 0ms));
  EXPECT_EQ(run_blocking(backend.get("llm-caching:v1:tls:k")), "over TLS");
  boost::asio::io_context io;  // long-lived: its own TLS connection (lane) after a few commands
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(run_to_completion(io, backend.get("llm-caching:v1:tls:k")), "over TLS");
  }
}

TEST(RedisTls, ClientCertificateAuthentication) {
  const TestCertificates certs = make_test_certificates();
  const ClientCertificate client = make_client_certificate(certs);
  RedisServer server(RedisServerOptions{
      .tls = RedisTls{certs.ca_cert, certs.server_cert, certs.server_key, true}});
  RedisBackend with_cert(redis_options(
      tls_url(server, "ssl_ca_certs=" + certs.ca_cert + "&ssl_certfile=" + client.cert +
                          "&ssl_keyfile=" + client.key + "&ssl_cert_reqs=required")));
  run_blocking(with_cert.put("llm-caching:v1:mtls:k", "v", 0ms));
  EXPECT_EQ(run_blocking(with_cert.get("llm-caching:v1:mtls:k")), "v");

  RedisBackend without_cert(redis_options(tls_url(server, "ssl_ca_certs=" + certs.ca_cert)));
  EXPECT_THAT(cache_error_of(without_cert), HasSubstr(std::to_string(server.port())));
}

TEST(RedisTls, UntrustedServerCertificateIsRefusedUnlessVerificationIsOff) {
  const TestCertificates server_certs = make_test_certificates();
  const TestCertificates other_ca = make_test_certificates();
  RedisServer server(
      RedisServerOptions{.tls = RedisTls{server_certs.ca_cert, server_certs.server_cert,
                                         server_certs.server_key, false}});
  RedisBackend untrusted(redis_options(tls_url(server, "ssl_ca_certs=" + other_ca.ca_cert)));
  const std::string message = cache_error_of(untrusted);
  EXPECT_THAT(message, HasSubstr("TLS handshake"));
  EXPECT_THAT(message, HasSubstr("certificate verify failed"));

  RedisBackend unverified(redis_options(tls_url(server, "ssl_cert_reqs=none")));
  run_blocking(unverified.put("llm-caching:v1:tls:none", "v", 0ms));
  EXPECT_EQ(run_blocking(unverified.get("llm-caching:v1:tls:none")), "v");
}

TEST(RedisTls, MissingCaFileIsAConfigurationError) {
  EXPECT_THROW(RedisBackend(redis_options("rediss://127.0.0.1:6379?ssl_ca_certs=/nonexistent.pem")),
               ConfigurationError);
}

TEST(RedisOutage, KilledDuringAThousandCallsAllReturnAndCachingResumes) {
  RedisServer server;
  auto model = std::make_shared<llm_caching::testing::ScriptedModel>();
  const Agent agent{.model = "openai:my-custom-model"};
  RunOptions options;
  options.redis_url = server.url() + "?socket_timeout=0.5";
  options.namespace_ = "outage";
  options.model_client = model;
  options.custom_costs["my-custom-model"] = ModelCosts{1.0, 2.0, 0.5, 0.1};

  std::string last_key;
  for (int i = 0; i < 1000; ++i) {
    if (i == 300) server.kill();
    if (i == 600) {
      server.start();
      // Longer than the client's longest reconnect backoff (1 s): the pool is back by now.
      std::this_thread::sleep_for(1500ms);
    }
    const std::string prompt = "question " + std::to_string(i);
    const RunResult result = cached_agent_run_sync(agent, prompt, "outage", options);
    ASSERT_EQ(result.output, llm_caching::testing::ScriptedModel::answer_text(prompt)) << i;
    last_key = result.cache_key;
  }
  EXPECT_EQ(model->calls(), 1000);
  // Entries written after the restart are in Redis (the kill lost the earlier ones).
  EXPECT_EQ(server.cli({"EXISTS", last_key}), "1");
  // The entries (beside them: the counters every process adds to, llm-caching:{meta}:*).
  EXPECT_EQ(server.cli({"EVAL", "return #redis.call('keys', 'llm-caching:v1:*')", "0"}), "400");
  CacheOptions cache_options{.url = options.redis_url};
  EXPECT_GT(run_blocking(Runtime::default_runtime().impl().caches.open(cache_options)->stats())
                .backend_errors,
            0u);
}

TEST(RedisCli, CacheCommandsWorkOnARedisUrl) {
  RedisServer server;
  const std::string a = "llm-caching:v1:cli:" + std::string(64, 'a');
  const std::string b = "llm-caching:v1:cli:" + std::string(64, 'b');
  server.cli({"SET", a, "x"});
  server.cli({"SET", b, "y"});
  const std::string url = server.url() + "/0";
  EXPECT_THAT(run_command({LLMC_CLI_PATH, "--cache-url", url, "cache", "stats"}),
              HasSubstr("redis://127.0.0.1:" + std::to_string(server.port())));
  run_command({LLMC_CLI_PATH, "--cache-url", url, "cache", "rm", a});
  EXPECT_EQ(server.cli({"EXISTS", a}), "0");
  EXPECT_EQ(server.cli({"EXISTS", b}), "1");
  run_command({LLMC_CLI_PATH, "--cache-url", url, "cache", "clear"});
  EXPECT_EQ(server.cli({"EVAL", "return #redis.call('keys', 'llm-caching:v1:*')", "0"}), "0");
  // What tells running processes to drop their memory tier (docs/REDIS.md).
  EXPECT_EQ(server.cli({"EXISTS", "llm-caching:{meta}:cleared"}), "1");
}

}  // namespace
}  // namespace llmc_test

// redis+sentinel:// against a real master, replica and three sentinels started by the test:
// entries written before a forced failover are read after it, and writes go on to the new
// master through the same backend object (no restart, no new client), both from run-to-completion
// calls and from one long-lived io_context (which has a connection of its own, a "lane").
#include "cache/cache_url.hpp"
#include "cache/redis_backend.hpp"
#include "cache/run_blocking.hpp"
#include "cache/tiered_cache.hpp"
#include "llm_caching/errors.hpp"

#include "support/redis_server.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

namespace llmc_test {
namespace {

using namespace llm_caching;
using namespace llm_caching::cache;
using namespace std::chrono_literals;

/// Polls `condition` every 100 ms; fails the test with `what` after `limit`. Used to wait for
/// Redis' own asynchronous steps (replication, sentinel discovery, failover), not to time us: the
/// limit is a hang guard, generous for a sanitizer build on a loaded machine.
void wait_until(const std::function<bool()>& condition, const std::string& what,
                std::chrono::seconds limit = 90s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) FAIL() << "timed out waiting for " << what;
    std::this_thread::sleep_for(100ms);
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// redis-cli's answer for a poll, or "" when redis-cli failed: a Sentinel that reconfigures a
/// server (REPLICAOF during the failover) closes that server's client connections, a poll's
/// included ("Server closed the connection"). The poll's next round asks again.
template <class Server>
std::string poll_cli(const Server& server, const std::vector<std::string>& args) {
  try {
    return server.cli(args);
  } catch (const std::runtime_error&) {
    return "";
  }
}

TEST(RedisSentinel, FollowsAForcedFailoverWithoutRestartingTheClient) {
  RedisServer master;
  RedisServer replica(RedisServerOptions{.replica_of_port = master.port()});
  std::vector<RedisSentinel> sentinels;
  for (int i = 0; i < 3; ++i) sentinels.emplace_back("mymaster", master.port());

  std::string url = "redis+sentinel://";
  for (std::size_t i = 0; i < sentinels.size(); ++i) {
    url += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(sentinels[i].port());
  }
  url += "/mymaster/0?socket_timeout=2";
  auto backend = std::make_shared<RedisBackend>(std::get<RedisOptions>(parse_cache_url(url)));
  TieredCache strict(backend, 0, true);  // strict: any failure below fails the test

  boost::asio::io_context loop;  // long-lived: it has its own connection after a few commands
  for (int i = 0; i < 20; ++i) {
    run_to_completion(loop, backend->put("llm-caching:v1:s:before-" + std::to_string(i),
                                         "v" + std::to_string(i), 0ms));
  }
  EXPECT_EQ(master.cli({"DBSIZE"}), "20");
  wait_until([&] { return poll_cli(replica, {"DBSIZE"}) == "20"; }, "the replica to sync");
  wait_until(
      [&] {
        const std::string known = poll_cli(sentinels[0], {"SENTINEL", "sentinels", "mymaster"});
        return contains(poll_cli(sentinels[0], {"SENTINEL", "replicas", "mymaster"}),
                        std::to_string(replica.port())) &&
               std::count(known.begin(), known.end(), '\n') >= 2 * 1;
      },
      "the sentinels to discover the replica and each other");

  // Asked again while the sentinel finds no replica fit to promote yet (NOGOODSLAVE: it has not
  // refreshed the replica's state); "already in progress" means an earlier ask was taken.
  wait_until(
      [&] {
        const std::string answer = poll_cli(sentinels[0], {"SENTINEL", "FAILOVER", "mymaster"});
        return answer == "OK" || contains(answer, "INPROG");
      },
      "the sentinel to start the failover");
  wait_until(
      [&] {
        return contains(poll_cli(sentinels[1], {"SENTINEL", "get-master-addr-by-name", "mymaster"}),
                        std::to_string(replica.port())) &&
               contains(poll_cli(replica, {"ROLE"}), "master") &&
               contains(poll_cli(master, {"ROLE"}), "slave");
      },
      "the failover to promote the replica");

  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(run_blocking(backend->get("llm-caching:v1:s:before-" + std::to_string(i))),
              "v" + std::to_string(i));
  }
  for (int i = 0; i < 20; ++i) {
    run_blocking(backend->put("llm-caching:v1:s:after-" + std::to_string(i), "w", 0ms));
  }
  for (int i = 0; i < 20; ++i) {
    const std::string key = "llm-caching:v1:s:before-" + std::to_string(i);
    EXPECT_EQ(run_to_completion(loop, backend->get(key)), "v" + std::to_string(i));
    run_to_completion(loop, backend->put("llm-caching:v1:s:lane-" + std::to_string(i), "x", 0ms));
  }
  EXPECT_EQ(replica.cli({"DBSIZE"}), "60");  // the new master has every write
  EXPECT_EQ(replica.cli({"GET", "llm-caching:v1:s:after-19"}), "w");
  EXPECT_EQ(run_blocking(strict.stats()).backend_errors, 0u);
}

TEST(RedisSentinel, UnknownMasterNameIsACacheErrorNamingIt) {
  RedisServer master;
  RedisSentinel sentinel("mymaster", master.port());
  RedisBackend backend(std::get<RedisOptions>(parse_cache_url(
      "redis+sentinel://127.0.0.1:" + std::to_string(sentinel.port()) + "/othermaster")));
  try {
    run_blocking(backend.get("llm-caching:v1:s:k"));
    FAIL() << "expected CacheError";
  } catch (const CacheError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("othermaster"));
  }
}

}  // namespace
}  // namespace llmc_test

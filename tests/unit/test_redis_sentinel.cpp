// Sentinel discovery (cache/redis_sentinel.hpp): what a sentinel is asked, and how its answer
// becomes the master's address or a problem naming the sentinel. Pure: no server.
#include "cache/redis_sentinel.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace llm_caching::cache {
namespace {

using ::testing::ElementsAre;

RedisReply text(RedisReply::Kind kind, std::string value) {
  return RedisReply{.kind = kind, .text = std::move(value)};
}

RedisReply address(std::string host, std::string port) {
  RedisReply reply{.kind = RedisReply::Kind::array};
  reply.elements.push_back(text(RedisReply::Kind::string, std::move(host)));
  reply.elements.push_back(text(RedisReply::Kind::string, std::move(port)));
  return reply;
}

RedisOptions sentinel_options() {
  RedisOptions options;
  options.endpoints = {{"s1", 26379}, {"s2", 26380}};
  options.sentinel_master = "mymaster";
  return options;
}

const RedisEndpoint kSentinel{"s1", 26379};

std::string problem(const std::variant<RedisEndpoint, std::string>& answer) {
  const auto* text = std::get_if<std::string>(&answer);
  return text != nullptr ? *text : "an address";
}

TEST(RedisSentinel, AsksForTheMasterByName) {
  const auto query = sentinel_query(sentinel_options());
  ASSERT_EQ(query.size(), 1u);
  EXPECT_THAT(query[0], ElementsAre("SENTINEL", "get-master-addr-by-name", "mymaster"));
}

TEST(RedisSentinel, AuthenticatesFirstWithTheSentinelCredentials) {
  RedisOptions options = sentinel_options();
  options.sentinel_username = "watcher";
  options.sentinel_password = "pw";
  const auto query = sentinel_query(options);
  ASSERT_EQ(query.size(), 2u);
  EXPECT_THAT(query[0], ElementsAre("AUTH", "watcher", "pw"));
}

TEST(RedisSentinel, ReadsTheMastersAddress) {
  const auto answer =
      read_sentinel_answer({address("10.0.0.5", "6380")}, kSentinel, sentinel_options());
  const auto* master = std::get_if<RedisEndpoint>(&answer);
  ASSERT_NE(master, nullptr) << problem(answer);
  EXPECT_EQ(master->host, "10.0.0.5");
  EXPECT_EQ(master->port, 6380);
}

TEST(RedisSentinel, AnUnknownMasterIsAProblemNamingTheSentinel) {
  const auto answer = read_sentinel_answer({RedisReply{}}, kSentinel, sentinel_options());
  EXPECT_EQ(problem(answer), "sentinel s1:26379 does not know a master named 'mymaster'");
}

TEST(RedisSentinel, APortOutOfRangeIsNoAddress) {
  for (const char* port : {"0", "65536", "x"}) {
    const auto answer = read_sentinel_answer({address("h", port)}, kSentinel, sentinel_options());
    EXPECT_EQ(problem(answer), "sentinel s1:26379 does not know a master named 'mymaster'") << port;
  }
}

TEST(RedisSentinel, AnErrorReplyIsQuoted) {
  const auto answer = read_sentinel_answer({text(RedisReply::Kind::error, "ERR unknown command")},
                                           kSentinel, sentinel_options());
  EXPECT_EQ(problem(answer), "sentinel s1:26379 answered: ERR unknown command");
}

TEST(RedisSentinel, RefusedCredentialsAreReportedBeforeTheAddress) {
  RedisOptions options = sentinel_options();
  options.sentinel_password = "pw";
  const auto answer = read_sentinel_answer(
      {text(RedisReply::Kind::error, "WRONGPASS no"), address("h", "6379")}, kSentinel, options);
  EXPECT_EQ(problem(answer), "sentinel s1:26379 refused the credentials: WRONGPASS no");
}

TEST(RedisSentinel, AnIpv6SentinelIsBracketed) {
  const auto answer = read_sentinel_answer({RedisReply{}}, {"::1", 26379}, sentinel_options());
  EXPECT_EQ(problem(answer), "sentinel [::1]:26379 does not know a master named 'mymaster'");
}

}  // namespace
}  // namespace llm_caching::cache

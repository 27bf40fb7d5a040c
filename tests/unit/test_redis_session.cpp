// The session of a Redis master connection (cache/redis_session.hpp): the setup commands a
// connection sends when it opens, and how their replies are judged. Pure: no server.
#include "cache/redis_session.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace llm_caching::cache {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

RedisReply status(std::string text) {
  return RedisReply{.kind = RedisReply::Kind::status, .text = std::move(text)};
}

RedisReply error(std::string text) {
  return RedisReply{.kind = RedisReply::Kind::error, .text = std::move(text)};
}

RedisReply role(std::string name) {
  RedisReply reply{.kind = RedisReply::Kind::array};
  reply.elements.push_back(RedisReply{.kind = RedisReply::Kind::string, .text = std::move(name)});
  return reply;
}

TEST(RedisSession, DefaultsSendOnlyTheClientName) {
  const SessionSetup setup = master_session_setup(RedisOptions{});
  EXPECT_THAT(setup.names, ElementsAre("CLIENT SETNAME"));
  ASSERT_EQ(setup.commands.size(), 1u);
  EXPECT_THAT(setup.commands[0], ElementsAre("CLIENT", "SETNAME", "llm-caching"));
}

TEST(RedisSession, SendsAuthNameSelectAndRoleInThatOrder) {
  RedisOptions options;
  options.username = "u";
  options.password = "p";
  options.db = 3;
  options.sentinel_master = "mymaster";
  const SessionSetup setup = master_session_setup(options);
  EXPECT_THAT(setup.names, ElementsAre("AUTH", "CLIENT SETNAME", "SELECT", "ROLE"));
  ASSERT_EQ(setup.commands.size(), 4u);
  EXPECT_THAT(setup.commands[0], ElementsAre("AUTH", "u", "p"));
  EXPECT_THAT(setup.commands[2], ElementsAre("SELECT", "3"));
  EXPECT_THAT(setup.commands[3], ElementsAre("ROLE"));
}

TEST(RedisSession, ThePasswordAloneAuthenticatesTheDefaultUser) {
  RedisOptions options;
  options.password = "p";
  options.client_name.clear();
  const SessionSetup setup = master_session_setup(options);
  EXPECT_THAT(setup.names, ElementsAre("AUTH"));
  EXPECT_THAT(setup.commands[0], ElementsAre("AUTH", "p"));
}

TEST(RedisSession, GoodRepliesMakeAUsableSession) {
  RedisOptions options;
  options.password = "p";
  options.sentinel_master = "mymaster";
  const SessionSetup setup = master_session_setup(options);
  const std::vector<RedisReply> replies = {status("OK"), status("OK"), role("master")};
  EXPECT_FALSE(judge_master_session(setup, replies, options, "h:1").has_value());
}

TEST(RedisSession, ARefusedPasswordNamesThePeerAndTheUserNeverThePassword) {
  RedisOptions options;
  options.username = "alice";
  options.password = "s3cret";
  const SessionSetup setup = master_session_setup(options);
  const std::vector<RedisReply> replies = {error("WRONGPASS invalid username-password pair"),
                                           status("OK")};
  const auto refusal = judge_master_session(setup, replies, options, "cache.local:6379");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->drop_reason, "setup failed");
  EXPECT_THAT(refusal->message, HasSubstr("Redis at cache.local:6379 refused the credentials of "
                                          "user 'alice': WRONGPASS"));
  EXPECT_THAT(refusal->message, Not(HasSubstr("s3cret")));
}

TEST(RedisSession, ARejectedCommandIsNamed) {
  RedisOptions options;
  options.db = 99;
  const SessionSetup setup = master_session_setup(options);
  const std::vector<RedisReply> replies = {status("OK"), error("ERR DB index is out of range")};
  const auto refusal = judge_master_session(setup, replies, options, "h:1");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->message, "Redis at h:1 rejected SELECT: ERR DB index is out of range");
}

TEST(RedisSession, AClusterReplicaReadFromSendsReadonlyLast) {
  RedisOptions options;
  options.password = "p";
  const SessionSetup setup = master_session_setup(options, NodeRole::replica);
  EXPECT_THAT(setup.names, ElementsAre("AUTH", "CLIENT SETNAME", "READONLY"));
  EXPECT_THAT(setup.commands[2], ElementsAre("READONLY"));
  // A node that refuses it (not a cluster node) is not used for reads.
  const auto refusal = judge_master_session(
      setup, {status("OK"), status("OK"), error("ERR This instance has cluster support disabled")},
      options, "h:1");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->message,
            "Redis at h:1 rejected READONLY: ERR This instance has cluster support disabled");
  EXPECT_THAT(master_session_setup(options).names, Not(::testing::Contains("READONLY")));
}

TEST(RedisSession, AReplicaIsNotTheMaster) {
  RedisOptions options;
  options.sentinel_master = "mymaster";
  options.client_name.clear();
  const SessionSetup setup = master_session_setup(options);
  const auto refusal = judge_master_session(setup, {role("slave")}, options, "h:1");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->drop_reason, "not the master");
  EXPECT_EQ(refusal->message, "Redis at h:1 is a slave, not the master 'mymaster'");
}

}  // namespace
}  // namespace llm_caching::cache

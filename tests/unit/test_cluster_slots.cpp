// Redis Cluster routing without a socket: CRC16 slots and hash tags (the values Redis's own
// CLUSTER KEYSLOT gives), the key names that keep an entry, its lock and its release signal in
// one slot, which argument is a command's key, MOVED/ASK replies, CLUSTER SLOTS, and what a
// replica's answer to a read means.
#include "cache/cluster_slots.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace llm_caching::cache {
namespace {

RedisReply text(std::string value) {
  return RedisReply{.kind = RedisReply::Kind::string, .text = std::move(value)};
}
RedisReply integer(long long value) {
  return RedisReply{.kind = RedisReply::Kind::integer, .integer = value};
}
RedisReply array(std::vector<RedisReply> elements) {
  return RedisReply{.kind = RedisReply::Kind::array, .elements = std::move(elements)};
}
RedisReply error(std::string value) {
  return RedisReply{.kind = RedisReply::Kind::error, .text = std::move(value)};
}
RedisReply node(std::string host, long long port, std::string id) {
  return array({text(std::move(host)), integer(port), text(std::move(id))});
}

TEST(KeySlot, MatchesRedisClusterKeyslot) {
  // redis-cli CLUSTER KEYSLOT <key> on Redis 7.0.
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("123456789"), 12739);  // CRC16/XMODEM check value 0x31C3
  EXPECT_EQ(key_slot(""), 0);
}

TEST(KeySlot, HashTagsFollowTheFirstNonEmptyBracePair) {
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("{user1000}.followers"), key_slot("user1000"));
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
  // An empty tag, or no closing brace: the whole key.
  EXPECT_EQ(key_slot("foo{}{bar}"), static_cast<std::uint16_t>(key_slot("foo{}{bar}")));
  EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));
  EXPECT_NE(key_slot("foo{bar"), key_slot("bar"));
}

TEST(ClusterKey, AnEntryItsLockItsSignalAndItsWaiterMarkShareASlot) {
  const std::string storage = "llm-caching:v1:team:" + std::string(64, 'a');
  const std::string entry = cluster_key(storage);
  EXPECT_EQ(entry, "llm-caching:v1:team:{" + std::string(64, 'a') + "}");
  const std::string lock = cluster_key("llm-caching:lock:" + storage);
  // What the backend derives from the lock's name: the same storage key behind another prefix.
  const std::string tagged_storage = lock.substr(std::string("llm-caching:lock:").size());
  const std::string signal = "llm-caching:released:" + tagged_storage;
  const std::string mark = "llm-caching:waited:" + tagged_storage;
  EXPECT_EQ(key_slot(lock), key_slot(entry));
  EXPECT_EQ(key_slot(signal), key_slot(entry));
  EXPECT_EQ(key_slot(mark), key_slot(entry));
  // Different entries spread over the slots.
  EXPECT_NE(key_slot(cluster_key("llm-caching:v1:team:" + std::string(64, 'b'))), key_slot(entry));
  // A namespace holding braces changes nothing: every name carries the same storage key.
  const std::string odd = "llm-caching:v1:a{b}c:" + std::string(64, 'c');
  EXPECT_EQ(key_slot(cluster_key("llm-caching:lock:" + odd)), key_slot(cluster_key(odd)));
}

TEST(ClusterKey, StorageKeyOfUndoesClusterKey) {
  for (const std::string key : {"llm-caching:v1:ns:abc", "plain", "a:", "x:{y}"}) {
    EXPECT_EQ(storage_key_of(cluster_key(key)), key) << key;
  }
  EXPECT_EQ(storage_key_of("llm-caching:v1:ns:abc"), "llm-caching:v1:ns:abc");
}

TEST(RoutingKey, NamesTheKeyArgument) {
  EXPECT_EQ(routing_key({"GET", "k"}), "k");
  EXPECT_EQ(routing_key({"set", "k", "v", "PX", "10"}), "k");
  EXPECT_EQ(routing_key({"BRPOPLPUSH", "s", "s", "1.000"}), "s");
  EXPECT_EQ(routing_key({"EVAL", "return 1", "2", "lock", "signal", "token"}), "lock");
  EXPECT_EQ(routing_key({"EVAL", "return 1", "0"}), std::nullopt);
  EXPECT_EQ(routing_key({"SCAN", "0", "MATCH", "x*"}), std::nullopt);
  EXPECT_EQ(routing_key({"DBSIZE"}), std::nullopt);
  EXPECT_EQ(routing_key({"INFO", "memory"}), std::nullopt);
}

TEST(ParseRedirect, MovedAndAskWithTheirTargets) {
  auto moved = parse_redirect(error("MOVED 3999 127.0.0.1:6381"), "10.0.0.9");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->kind, ClusterRedirect::Kind::moved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->to.host, "127.0.0.1");
  EXPECT_EQ(moved->to.port, 6381);
  auto ask = parse_redirect(error("ASK 12182 :7002"), "10.0.0.9");
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->kind, ClusterRedirect::Kind::ask);
  EXPECT_EQ(ask->to.host, "10.0.0.9");  // empty host: the node that answered
  auto v6 = parse_redirect(error("MOVED 1 ::1:7000"), "x");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->to.host, "::1");
  EXPECT_EQ(v6->to.port, 7000);
  EXPECT_FALSE(parse_redirect(error("ERR unknown command"), "x"));
  EXPECT_FALSE(parse_redirect(error("MOVED 16384 h:1"), "x"));
  EXPECT_FALSE(parse_redirect(error("MOVED 1 h:0"), "x"));
  EXPECT_FALSE(parse_redirect(error("MOVED x h:1"), "x"));
  EXPECT_FALSE(parse_redirect(text("MOVED 1 h:1"), "x"));
}

TEST(JudgeReplicaReply, OnlyAValueIsServedEverythingElseGoesToTheMaster) {
  EXPECT_EQ(judge_replica_reply(text("an entry")), ReplicaAnswer::served);
  EXPECT_EQ(judge_replica_reply(text("")), ReplicaAnswer::served);  // a value, if empty
  // Nil: maybe not replicated yet. The master decides whether it is a miss.
  EXPECT_EQ(judge_replica_reply(RedisReply{}), ReplicaAnswer::absent);
  EXPECT_EQ(judge_replica_reply(error("MOVED 3999 127.0.0.1:6381")), ReplicaAnswer::moved);
  EXPECT_EQ(judge_replica_reply(error("ASK 3999 127.0.0.1:6381")), ReplicaAnswer::moved);
  for (const char* reply :
       {"LOADING Redis is loading the dataset in memory",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        "CLUSTERDOWN The cluster is down", "TRYAGAIN Multiple keys request during rehashing",
        "ERR anything else"}) {
    EXPECT_EQ(judge_replica_reply(error(reply)), ReplicaAnswer::unavailable) << reply;
  }
}

TEST(ParseClusterSlots, ShardsWithMergedRangesAndReplicas) {
  const RedisReply reply = array({
      array(
          {integer(0), integer(5460), node("127.0.0.1", 7000, "a"), node("127.0.0.1", 7003, "d")}),
      array({integer(5461), integer(10922), node("", 7001, "b")}),
      array({integer(10923), integer(11999), node("127.0.0.1", 7002, "c")}),
      array({integer(12000), integer(12000), node("127.0.0.1", 7000, "a")}),  // a moved slot
      array({integer(12001), integer(16383), node("127.0.0.1", 7002, "c")}),
  });
  const auto shards = parse_cluster_slots(reply, "10.1.1.1");
  ASSERT_EQ(shards.size(), 3u);
  EXPECT_EQ(shards[0].master.port, 7000);
  ASSERT_EQ(shards[0].replicas.size(), 1u);
  EXPECT_EQ(shards[0].replicas[0].port, 7003);
  EXPECT_EQ(shards[0].ranges.size(), 2u);
  EXPECT_EQ(shards[1].master.host, "10.1.1.1");

  const SlotMap map(shards);
  EXPECT_TRUE(map.complete());
  EXPECT_EQ(map.master_of(0)->port, 7000);
  EXPECT_EQ(map.master_of(5461)->port, 7001);
  EXPECT_EQ(map.master_of(16383)->port, 7002);
  EXPECT_EQ(map.master_of(12000)->port, 7000);
  EXPECT_EQ(map.shard_of(12001), 2);
  ASSERT_EQ(map.masters().size(), 3u);
  EXPECT_EQ(map.masters()[0].host, "10.1.1.1");
}

TEST(ParseClusterSlots, RefusesOtherShapes) {
  EXPECT_THROW(parse_cluster_slots(text("x"), "h"), std::runtime_error);
  EXPECT_THROW(parse_cluster_slots(array({array({integer(0), integer(1)})}), "h"),
               std::runtime_error);
  EXPECT_THROW(
      parse_cluster_slots(array({array({integer(5), integer(1), node("h", 1, "a")})}), "h"),
      std::runtime_error);
  EXPECT_THROW(
      parse_cluster_slots(array({array({integer(0), integer(16384), node("h", 1, "a")})}), "h"),
      std::runtime_error);
  EXPECT_THROW(
      parse_cluster_slots(array({array({integer(0), integer(1), node("h", 0, "a")})}), "h"),
      std::runtime_error);
}

TEST(SlotMap, EmptyUntilToldAndMovedSlotsGoToTheirNewMaster) {
  SlotMap map;
  EXPECT_EQ(map.master_of(42), nullptr);
  EXPECT_EQ(map.shard_of(42), -1);
  EXPECT_FALSE(map.complete());
  map.move_slot(42, RedisEndpoint{"127.0.0.1", 7005});
  EXPECT_EQ(map.master_of(42)->port, 7005);
  map.move_slot(43, RedisEndpoint{"127.0.0.1", 7005});
  EXPECT_EQ(map.shards().size(), 1u);
  EXPECT_FALSE(map.complete());
}

}  // namespace
}  // namespace llm_caching::cache

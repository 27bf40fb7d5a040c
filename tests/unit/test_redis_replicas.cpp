// Which replica of a slot serves a read (cache/redis_replicas.hpp): turns, and the rest of a
// replica that failed. Pure: no client is used, no socket opened.
#include "cache/redis_replicas.hpp"

#include <gtest/gtest.h>

namespace llm_caching::cache {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::vector<std::shared_ptr<ReplicaNode>> three_replicas() {
  std::vector<std::shared_ptr<ReplicaNode>> out;
  for (int i = 0; i < 3; ++i) out.push_back(std::make_shared<ReplicaNode>(nullptr));
  return out;
}

TEST(PickReplica, TheReplicasOfASlotTakeTurns) {
  const auto replicas = three_replicas();
  const auto now = Clock::now();
  EXPECT_EQ(pick_replica(replicas, 0, now), replicas[0]);
  EXPECT_EQ(pick_replica(replicas, 1, now), replicas[1]);
  EXPECT_EQ(pick_replica(replicas, 2, now), replicas[2]);
  EXPECT_EQ(pick_replica(replicas, 3, now), replicas[0]);
  EXPECT_EQ(pick_replica({}, 7, now), nullptr);  // no replica: the master answers
}

TEST(PickReplica, AFailedReplicaRestsASecondAndItsTurnGoesToTheNext) {
  const auto replicas = three_replicas();
  const auto now = Clock::now();
  replicas[1]->failed(now);
  EXPECT_EQ(pick_replica(replicas, 1, now), replicas[2]);
  EXPECT_EQ(pick_replica(replicas, 1, now + 999ms), replicas[2]);
  EXPECT_EQ(pick_replica(replicas, 1, now + 1000ms), replicas[1]);
  replicas[0]->failed(now);
  replicas[2]->failed(now);
  EXPECT_EQ(pick_replica(replicas, 0, now + 500ms), nullptr);  // all rest: the master answers
}

TEST(PickReplica, FailuresInARowRestLongerUpToSixteenSecondsAndAnAnswerForgetsThem) {
  const auto replicas = three_replicas();
  const auto& replica = replicas[0];
  auto now = Clock::now();
  replica->failed(now);  // 1 s
  now += 1s;
  EXPECT_FALSE(replica->resting(now));
  replica->failed(now);  // 2 s
  EXPECT_TRUE(replica->resting(now + 1999ms));
  EXPECT_FALSE(replica->resting(now + 2s));
  for (int i = 0; i < 10; ++i) replica->failed(now);
  EXPECT_TRUE(replica->resting(now + 15s));
  EXPECT_FALSE(replica->resting(now + kLongestReplicaRest));
  replica->answered();
  replica->failed(now);
  EXPECT_FALSE(replica->resting(now + kReplicaRest));
}

}  // namespace
}  // namespace llm_caching::cache

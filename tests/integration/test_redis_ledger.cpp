// The Redis ledger's batches against a real redis-server (cache/redis_ledger.cpp): a named batch
// sent again (its reply lost, then replayed from the spill file) is stored once, in the stream
// and in the per-day counters alike; an unnamed one (from an old spill file) is stored each time.
#include "cache/cache_url.hpp"
#include "cache/redis_backend.hpp"
#include "cache/run_blocking.hpp"
#include "core/ledger_batch.hpp"
#include "support/ledger_records.hpp"
#include "support/redis_server.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace llmc_test {
namespace {

using namespace llm_caching;
using namespace llm_caching::cache;
using core::LedgerBatchId;

/// The calls the stream holds, and the day's counted calls.
struct Stored {
  std::size_t stream = 0;
  std::string day_calls;
};
Stored stored(RedisBackend& backend, const RedisServer& server) {
  return {run_blocking(backend.ledger_read(0, INT64_MAX)).size(),
          server.cli({"HGET", "llm-caching:{ledger}:day:" + core::utc_day(kDec1), "total::calls"})};
}

TEST(RedisLedger, ANamedBatchSentAgainIsStoredOnceAndAnUnnamedOneEachTime) {
  RedisServer server;
  RedisBackend backend(std::get<RedisOptions>(parse_cache_url(server.url())));
  const LedgerBatchId first{"00000000000000aa", 1};
  run_blocking(backend.ledger_append(misses(0, 3), first));
  EXPECT_EQ(stored(backend, server).stream, 3u);
  // Sent again (the reply of the first send was lost): skipped, counters untouched.
  run_blocking(backend.ledger_append(misses(0, 3), first));
  Stored now = stored(backend, server);
  EXPECT_EQ(now.stream, 3u);
  EXPECT_EQ(now.day_calls, "3");
  // The writer's next batch is stored; one before it, late, is not.
  run_blocking(backend.ledger_append(misses(3, 2), {"00000000000000aa", 2}));
  run_blocking(backend.ledger_append(misses(0, 3), first));
  // Another writer's first batch is its own.
  run_blocking(backend.ledger_append(misses(5, 1), {"00000000000000bb", 1}));
  now = stored(backend, server);
  EXPECT_EQ(now.stream, 6u);
  EXPECT_EQ(now.day_calls, "6");
  // Unnamed: stored every time it is sent.
  run_blocking(backend.ledger_append(misses(6, 1), {}));
  run_blocking(backend.ledger_append(misses(6, 1), {}));
  now = stored(backend, server);
  EXPECT_EQ(now.stream, 8u);
  EXPECT_EQ(now.day_calls, "8");
  // A writer's mark outlives any spill's wait, and then goes.
  EXPECT_EQ(server.cli({"GET", "llm-caching:{ledger}:writer:00000000000000aa"}), "2");
  const long ttl = std::stol(server.cli({"TTL", "llm-caching:{ledger}:writer:00000000000000aa"}));
  EXPECT_GT(ttl, 29L * 86'400);
  EXPECT_LE(ttl, 30L * 86'400);
}

}  // namespace
}  // namespace llmc_test

// The Redis backend's shared state beside the entries (redis_backend.hpp): the clear mark
// (backend.hpp, DESIGN §5) and the hit, miss and write counters that `cache stats` reports for
// every process sharing the store. Both live under the hash tag {meta}, so one script reads the
// mark and adds the counters on a cluster too.
#include "cache/redis_backend.hpp"

#include "llm_caching/errors.hpp"

#include <algorithm>
#include <charconv>

namespace llm_caching::cache {
namespace {

constexpr const char* kClearMarkKey = "llm-caching:{meta}:cleared";
constexpr const char* kCountersKey = "llm-caching:{meta}:counters";

/// Adds ARGV[1..3] to the fields hits, misses, writes of the hash KEYS[2] (skipping zeros) and
/// returns the clear mark KEYS[1]: one round trip, atomic.
constexpr const char* kAddCountersAndReadMark =
    "local fields = {'hits', 'misses', 'writes'} "
    "for i = 1, 3 do local n = tonumber(ARGV[i]) "
    "if n > 0 then redis.call('hincrby', KEYS[2], fields[i], n) end end "
    "return redis.call('get', KEYS[1])";

std::uint64_t number_of(const RedisReply& reply) {
  std::uint64_t value = 0;
  if (reply.kind == RedisReply::Kind::integer) return static_cast<std::uint64_t>(reply.integer);
  if (reply.kind == RedisReply::Kind::string) {
    std::from_chars(reply.text.data(), reply.text.data() + reply.text.size(), value);
  }
  return value;
}

}  // namespace

asio::awaitable<std::uint64_t> RedisBackend::read_clear_mark() {
  // The counts since the last flush; only this (the tiers' watcher thread) moves flushed_.
  const std::uint64_t hits = hits_.load() - flushed_.hits.load();
  const std::uint64_t misses = misses_.load() - flushed_.misses.load();
  const std::uint64_t writes = writes_.load() - flushed_.writes.load();
  if (hits == 0 && misses == 0 && writes == 0) {
    RedisCommand get{"GET", kClearMarkKey};
    co_return number_of(co_await run(std::move(get)));
  }
  RedisCommand script{"EVAL",
                      kAddCountersAndReadMark,
                      "2",
                      kClearMarkKey,
                      kCountersKey,
                      std::to_string(hits),
                      std::to_string(misses),
                      std::to_string(writes)};
  const RedisReply reply = co_await run(std::move(script));
  flushed_.hits += hits;
  flushed_.misses += misses;
  flushed_.writes += writes;
  co_return number_of(reply);
}

asio::awaitable<void> RedisBackend::write_clear_mark() {
  RedisCommand set{"SET", kClearMarkKey, std::to_string(new_clear_mark())};
  co_await run(std::move(set));
}

asio::awaitable<void> RedisBackend::add_stored_counters(BackendStats& stats) {
  RedisCommand read{"HMGET", kCountersKey, "hits", "misses", "writes"};
  const RedisReply reply = co_await run(std::move(read));
  if (reply.kind != RedisReply::Kind::array || reply.elements.size() != 3) {
    throw CacheError("Redis HMGET of the counters gave an unexpected reply on " + describe());
  }
  // DBSIZE counted these two keys as entries.
  RedisCommand exists{"EXISTS", kClearMarkKey, kCountersKey};
  const std::uint64_t ours = number_of(co_await run(std::move(exists)));
  stats.entries -= std::min(stats.entries, ours);
  // What every process stored, plus what this one counted since its last flush.
  stats.hits = number_of(reply.elements[0]) + hits_.load() - flushed_.hits.load();
  stats.misses = number_of(reply.elements[1]) + misses_.load() - flushed_.misses.load();
  stats.writes = number_of(reply.elements[2]) + writes_.load() - flushed_.writes.load();
}

}  // namespace llm_caching::cache

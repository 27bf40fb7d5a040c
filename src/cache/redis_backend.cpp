#include "cache/redis_backend.hpp"

#include "llm_caching/errors.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace llm_caching::cache {
namespace {

constexpr std::size_t kScanBatch = 1000;

/// Deletes KEYS[1] only while it holds ARGV[1]; atomic on the server.
constexpr const char* kCompareAndDelete =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end";

/// `prefix` as a literal inside a SCAN MATCH glob.
std::string glob_escape(std::string_view prefix) {
  std::string out;
  for (char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

/// A "name:value" line of INFO output as a number (0 when absent).
std::uint64_t info_field(std::string_view info, std::string_view name) {
  const std::string needle = fmt::format("\n{}:", name);
  std::size_t at = info.find(needle);
  if (at == std::string_view::npos) return 0;
  at += needle.size();
  std::uint64_t value = 0;
  std::from_chars(info.data() + at, info.data() + info.size(), value);
  return value;
}

}  // namespace

RedisBackend::RedisBackend(RedisOptions options) : client_(std::move(options)) {}

std::string RedisBackend::describe() const {
  return client_.options().masked_url;
}

asio::awaitable<RedisReply> RedisBackend::run(RedisCommand command) {
  const std::string name = command.front();
  RedisReply reply;
  try {
    reply = co_await client_.command(std::move(command));
  } catch (...) {
    ++errors_;
    throw;
  }
  if (reply.is_error()) {
    ++errors_;
    throw CacheError(fmt::format("Redis {} failed on {}: {}", name, describe(), reply.text));
  }
  co_return reply;
}

asio::awaitable<std::optional<std::string>> RedisBackend::get(std::string key) {
  RedisCommand command{"GET", std::move(key)};
  RedisReply reply = co_await run(std::move(command));
  if (reply.kind != RedisReply::Kind::string) {
    ++misses_;
    co_return std::nullopt;
  }
  ++hits_;
  co_return std::move(reply.text);
}

asio::awaitable<void> RedisBackend::put(std::string key, std::string value,
                                        std::chrono::milliseconds ttl) {
  if (ttl.count() < 0) co_return;
  RedisCommand command{"SET", std::move(key), std::move(value)};
  if (ttl.count() > 0) {
    command.push_back("PX");
    command.push_back(std::to_string(ttl.count()));
  }
  co_await run(std::move(command));
  ++writes_;
}

asio::awaitable<bool> RedisBackend::erase(std::string key) {
  RedisCommand command{"DEL", std::move(key)};
  const RedisReply reply = co_await run(std::move(command));
  co_return reply.integer > 0;
}

asio::awaitable<std::uint64_t> RedisBackend::clear(std::string prefix) {
  const std::string pattern = glob_escape(prefix) + "*";
  std::string cursor = "0";
  std::uint64_t removed = 0;
  do {
    RedisCommand scan{"SCAN", cursor, "MATCH", pattern, "COUNT", std::to_string(kScanBatch)};
    RedisReply page = co_await run(std::move(scan));
    if (page.kind != RedisReply::Kind::array || page.elements.size() != 2) {
      throw CacheError(fmt::format("Redis SCAN on {} gave an unexpected reply", describe()));
    }
    cursor = page.elements[0].text;
    RedisCommand unlink{"UNLINK"};
    for (auto& key : page.elements[1].elements) unlink.push_back(std::move(key.text));
    if (unlink.size() > 1) removed += (co_await run(std::move(unlink))).integer;
  } while (cursor != "0");
  co_return removed;
}

asio::awaitable<std::uint64_t> RedisBackend::prune() {
  co_return 0;
}

asio::awaitable<BackendStats> RedisBackend::stats() {
  BackendStats stats;
  RedisCommand dbsize{"DBSIZE"};
  stats.entries = static_cast<std::uint64_t>((co_await run(std::move(dbsize))).integer);
  RedisCommand info_memory{"INFO", "memory"};
  const std::string memory = (co_await run(std::move(info_memory))).text;
  RedisCommand info_stats{"INFO", "stats"};
  const std::string counters = (co_await run(std::move(info_stats))).text;
  stats.bytes = info_field(memory, "used_memory");
  stats.expired = info_field(counters, "expired_keys");
  stats.evictions = info_field(counters, "evicted_keys");
  stats.hits = hits_.load();
  stats.misses = misses_.load();
  stats.writes = writes_.load();
  stats.errors = errors_.load();
  co_return stats;
}

asio::awaitable<bool> RedisBackend::try_lock(std::string lock_key, std::string token,
                                             std::chrono::milliseconds ttl) {
  // At least 1 ms: PX 0 is an error reply.
  RedisCommand command{"SET",
                       std::move(lock_key),
                       std::move(token),
                       "NX",
                       "PX",
                       std::to_string(std::max<std::int64_t>(ttl.count(), 1))};
  const RedisReply reply = co_await run(std::move(command));
  co_return reply.kind == RedisReply::Kind::status;  // "OK"; nil when another token holds it
}

asio::awaitable<void> RedisBackend::unlock(std::string lock_key, std::string token) {
  RedisCommand command{"EVAL", kCompareAndDelete, "1", std::move(lock_key), std::move(token)};
  co_await run(std::move(command));
}

}  // namespace llm_caching::cache

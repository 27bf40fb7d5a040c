#include "cache/redis_backend.hpp"

#include "cache/cluster_slots.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace llm_caching::cache {
namespace {

constexpr std::size_t kScanBatch = 1000;

/// Takes the lock KEYS[1] for ARGV[1] (PX ARGV[2]) unless it is held, and then deletes the
/// previous holder's release signal KEYS[2], so that this holder's waiters block; atomic.
constexpr const char* kLockAndClearSignal =
    "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
    "redis.call('del', KEYS[2]) return 1 else return 0 end";

/// Deletes KEYS[1] only while it holds ARGV[1]; when a waiter registered (KEYS[3]), it then
/// leaves the release signal KEYS[2] (one element, expiring after ARGV[2] ms) that wakes the
/// waiters. Atomic on the server, so a registered waiter never misses the release.
constexpr const char* kUnlockAndSignal =
    "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) "
    "if redis.call('del', KEYS[3]) == 1 then redis.call('del', KEYS[2]) "
    "redis.call('rpush', KEYS[2], '1') redis.call('pexpire', KEYS[2], ARGV[2]) end "
    "return 1 else return 0 end";

/// Registers a waiter for the release of the lock KEYS[1] (the mark KEYS[2] lives as long as the
/// lock); 0 when the lock is already gone (nothing to wait for).
constexpr const char* kRegisterWaiter =
    "local ttl = redis.call('pttl', KEYS[1]) if ttl == -2 then return 0 end "
    "if ttl < 0 then ttl = 60000 end redis.call('set', KEYS[2], '1', 'PX', ttl) return 1";

/// How long a release signal stays: it only needs to outlast the waiters' last poll of the lock
/// (a new holder deletes it at once).
constexpr std::chrono::milliseconds kSignalLifetime{2000};
/// A blocking wait may take this much longer than its own timeout before the connection is
/// given up as dead.
constexpr std::chrono::milliseconds kBlockingMargin{1000};

/// llm-caching:<kind>:<storage key> for the lock llm-caching:lock:<storage key>.
std::string beside_lock(std::string_view kind, std::string_view lock_key) {
  constexpr std::string_view kLockPrefix = "llm-caching:lock:";
  if (lock_key.starts_with(kLockPrefix)) lock_key.remove_prefix(kLockPrefix.size());
  return fmt::format("llm-caching:{}:{}", kind, lock_key);
}
std::string release_signal(std::string_view lock_key) {
  return beside_lock("released", lock_key);
}
std::string waiter_mark(std::string_view lock_key) {
  return beside_lock("waited", lock_key);
}

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

/// SCAN's reply as [cursor, keys]; anything else is a CacheError.
void check_scan_reply(const RedisReply& page, const std::string& where) {
  if (page.kind != RedisReply::Kind::array || page.elements.size() != 2) {
    throw CacheError(fmt::format("Redis SCAN on {} gave an unexpected reply", where));
  }
}

}  // namespace

RedisBackend::RedisBackend(RedisOptions options) {
  if (options.cluster) {
    cluster_ = std::make_unique<RedisClusterClient>(std::move(options));
  } else {
    single_ = std::make_unique<RedisClient>(std::move(options));
  }
}

const RedisOptions& RedisBackend::options() const noexcept {
  return cluster_ ? cluster_->options() : single_->options();
}

RedisClusterClient::Counters RedisBackend::cluster_counters() const noexcept {
  return cluster_ ? cluster_->counters() : RedisClusterClient::Counters{};
}

std::string RedisBackend::describe() const {
  return options().masked_url;
}

std::string RedisBackend::redis_key(std::string key) const {
  return cluster_ ? cluster_key(key) : std::move(key);
}

RedisReply RedisBackend::checked(RedisReply reply, const std::string& name) {
  if (reply.is_error()) {
    ++errors_;
    throw CacheError(fmt::format("Redis {} failed on {}: {}", name, describe(), reply.text));
  }
  return reply;
}

asio::awaitable<RedisReply> RedisBackend::run(RedisCommand command) {
  const std::string name = command.front();
  RedisReply reply;
  try {
    if (cluster_) {
      reply = co_await cluster_->command(std::move(command));
    } else {
      reply = co_await single_->command(std::move(command));
    }
  } catch (...) {
    ++errors_;
    throw;
  }
  co_return checked(std::move(reply), name);
}

asio::awaitable<RedisReply> RedisBackend::run_read(RedisCommand command) {
  RedisReply reply;
  try {
    reply = co_await cluster_->read(std::move(command));
  } catch (...) {
    ++errors_;
    throw;
  }
  co_return checked(std::move(reply), "GET");
}

asio::awaitable<RedisReply> RedisBackend::run_on(std::optional<RedisEndpoint> server,
                                                 RedisCommand command) {
  if (!server) co_return co_await run(std::move(command));
  const std::string name = command.front();
  RedisReply reply;
  try {
    reply = co_await cluster_->command_on(std::move(*server), std::move(command));
  } catch (...) {
    ++errors_;
    throw;
  }
  co_return checked(std::move(reply), name);
}

asio::awaitable<std::vector<std::optional<RedisEndpoint>>> RedisBackend::servers() {
  std::vector<std::optional<RedisEndpoint>> out;
  if (!cluster_) {
    out.emplace_back();
    co_return out;
  }
  std::vector<RedisEndpoint> masters;
  try {
    masters = co_await cluster_->masters();
  } catch (...) {
    ++errors_;
    throw;
  }
  for (auto& master : masters) out.emplace_back(std::move(master));
  co_return out;
}

asio::awaitable<std::optional<std::string>> RedisBackend::get(std::string key) {
  RedisCommand command{"GET", redis_key(std::move(key))};
  RedisReply reply;
  if (cluster_ && cluster_->options().read_from_replicas) {
    reply = co_await run_read(std::move(command));
  } else {
    reply = co_await run(std::move(command));
  }
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
  RedisCommand command{"SET", redis_key(std::move(key)), std::move(value)};
  if (ttl.count() > 0) {
    command.push_back("PX");
    command.push_back(std::to_string(ttl.count()));
  }
  co_await run(std::move(command));
  ++writes_;
}

asio::awaitable<bool> RedisBackend::erase(std::string key) {
  RedisCommand command{"DEL", redis_key(std::move(key))};
  const RedisReply reply = co_await run(std::move(command));
  co_return reply.integer > 0;
}

asio::awaitable<std::uint64_t> RedisBackend::clear(std::string prefix) {
  const std::string pattern = glob_escape(prefix) + "*";
  std::uint64_t removed = 0;
  const auto all = co_await servers();
  for (const auto& server : all) {
    std::string cursor = "0";
    do {
      RedisCommand scan{"SCAN", cursor, "MATCH", pattern, "COUNT", std::to_string(kScanBatch)};
      RedisReply page = co_await run_on(server, std::move(scan));
      check_scan_reply(page, describe());
      cursor = page.elements[0].text;
      if (cluster_) {
        // One slot per command on a cluster (keys of several slots: CROSSSLOT), and routed, so
        // that a key resharded since the SCAN is still found.
        for (auto& key : page.elements[1].elements) {
          RedisCommand unlink{"UNLINK", std::move(key.text)};
          removed += (co_await run(std::move(unlink))).integer;
        }
        continue;
      }
      RedisCommand unlink{"UNLINK"};
      for (auto& key : page.elements[1].elements) unlink.push_back(std::move(key.text));
      if (unlink.size() > 1) removed += (co_await run(std::move(unlink))).integer;
    } while (cursor != "0");
  }
  co_return removed;
}

asio::awaitable<Backend::KeyPage> RedisBackend::list_keys(std::string prefix, std::string cursor,
                                                          std::size_t limit) {
  // On a cluster the cursor is "<master index>:<SCAN cursor>" over the sorted masters.
  std::size_t index = 0;
  if (const std::size_t colon = cursor.find(':'); cluster_ && colon != std::string::npos) {
    std::from_chars(cursor.data(), cursor.data() + colon, index);
    cursor.erase(0, colon + 1);
  }
  const auto all = co_await servers();
  KeyPage page;
  if (index >= all.size()) co_return page;
  RedisCommand scan{"SCAN",  cursor.empty() ? std::string("0") : cursor,
                    "MATCH", glob_escape(prefix) + "*",
                    "COUNT", std::to_string(std::max<std::size_t>(limit, 1))};
  RedisReply reply = co_await run_on(all[index], std::move(scan));
  check_scan_reply(reply, describe());
  if (reply.elements[0].text != "0") {
    page.cursor = cluster_ ? fmt::format("{}:{}", index, reply.elements[0].text)
                           : std::move(reply.elements[0].text);
  } else if (index + 1 < all.size()) {
    page.cursor = fmt::format("{}:0", index + 1);
  }
  for (auto& key : reply.elements[1].elements) {
    page.keys.push_back(cluster_ ? storage_key_of(key.text) : std::move(key.text));
  }
  co_return page;
}

asio::awaitable<std::uint64_t> RedisBackend::prune() {
  co_return 0;
}

asio::awaitable<BackendStats> RedisBackend::stats() {
  BackendStats stats;
  const auto all = co_await servers();
  for (const auto& server : all) {
    RedisCommand dbsize{"DBSIZE"};
    stats.entries +=
        static_cast<std::uint64_t>((co_await run_on(server, std::move(dbsize))).integer);
    RedisCommand info_memory{"INFO", "memory"};
    const std::string memory = (co_await run_on(server, std::move(info_memory))).text;
    RedisCommand info_stats{"INFO", "stats"};
    const std::string counters = (co_await run_on(server, std::move(info_stats))).text;
    stats.bytes += info_field(memory, "used_memory");
    stats.expired += info_field(counters, "expired_keys");
    stats.evictions += info_field(counters, "evicted_keys");
  }
  co_await add_stored_counters(stats);
  stats.errors = errors_.load();
  co_return stats;
}

asio::awaitable<bool> RedisBackend::try_lock(std::string lock_key, std::string token,
                                             std::chrono::milliseconds ttl) {
  lock_key = redis_key(std::move(lock_key));
  std::string signal = release_signal(lock_key);
  // At least 1 ms: PX 0 is an error reply.
  RedisCommand command{"EVAL",
                       kLockAndClearSignal,
                       "2",
                       std::move(lock_key),
                       std::move(signal),
                       std::move(token),
                       std::to_string(std::max<std::int64_t>(ttl.count(), 1))};
  const RedisReply reply = co_await run(std::move(command));
  co_return reply.integer == 1;
}

asio::awaitable<void> RedisBackend::unlock(std::string lock_key, std::string token) {
  lock_key = redis_key(std::move(lock_key));
  std::string signal = release_signal(lock_key);
  std::string mark = waiter_mark(lock_key);
  RedisCommand command{"EVAL",
                       kUnlockAndSignal,
                       "3",
                       std::move(lock_key),
                       std::move(signal),
                       std::move(mark),
                       std::move(token),
                       std::to_string(kSignalLifetime.count())};
  co_await run(std::move(command));
}

asio::awaitable<void> RedisBackend::wait_for_unlock(std::string lock_key,
                                                    std::chrono::milliseconds at_most) {
  lock_key = redis_key(std::move(lock_key));
  const std::string signal = release_signal(lock_key);
  RedisCommand registration{"EVAL", kRegisterWaiter, "2", lock_key, waiter_mark(lock_key)};
  if ((co_await run(std::move(registration))).integer == 0) co_return;  // released already
  // Seconds with decimals (Redis >= 6); at least 1 ms: 0 would block for ever.
  const auto ms = std::max<std::int64_t>(at_most.count(), 1);
  RedisCommand command{"BRPOPLPUSH", signal, signal, fmt::format("{}.{:03}", ms / 1000, ms % 1000)};
  RedisReply reply;
  try {
    if (cluster_) {
      reply = co_await cluster_->blocking_command(std::move(command), at_most + kBlockingMargin);
    } else {
      reply = co_await single_->blocking_command(std::move(command), at_most + kBlockingMargin);
    }
  } catch (...) {
    ++errors_;
    throw;
  }
  if (reply.is_error()) {
    ++errors_;
    throw CacheError(fmt::format("Redis BRPOPLPUSH failed on {}: {}", describe(), reply.text));
  }
}

}  // namespace llm_caching::cache

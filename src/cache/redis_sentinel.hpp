// Sentinel discovery: what a sentinel is asked for the master's address, and how its answer is
// read. Pure (tests/unit/test_redis_sentinel.cpp); the asking itself is RedisHome's
// discover_master and check_master, in redis_sentinel.cpp.
#pragma once

#include "cache/redis_protocol.hpp"
#include "llm_caching/cache_options.hpp"

#include <string>
#include <variant>
#include <vector>

namespace llm_caching::cache {

/// AUTH (when the sentinel credentials have a password), then
/// SENTINEL get-master-addr-by-name <master>.
std::vector<RedisCommand> sentinel_query(const RedisOptions& options);

/// The master's address from one sentinel's replies to sentinel_query, or what was wrong (a
/// sentence naming the sentinel, for the error that lists every sentinel's problem).
std::variant<RedisEndpoint, std::string> read_sentinel_answer(
    const std::vector<RedisReply>& replies, const RedisEndpoint& sentinel,
    const RedisOptions& options);

}  // namespace llm_caching::cache

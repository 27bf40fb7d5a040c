// The Redis forms of a cache URL (docs/REDIS.md): redis://, rediss:// (TLS), redis+sentinel://
// and redis+cluster:// / rediss+cluster://, with redis-py's query parameters.
#pragma once

#include "llm_caching/cache_options.hpp"

#include <string_view>

namespace llm_caching::cache {

/// `scheme` is "redis", "rediss", "redis+sentinel", "redis+cluster" or "rediss+cluster"
/// (lowercase); `rest` what follows "://" up
/// to the query, `query` what follows '?'; `url` the whole URL, for messages. Throws
/// ConfigurationError (password masked).
RedisOptions parse_redis_url(std::string_view scheme, std::string_view rest, std::string_view query,
                             std::string_view url);

}  // namespace llm_caching::cache

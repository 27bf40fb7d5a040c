// Lanes: a client's connection on a caller's io_context, so that a command awaited there is
// written and its reply read on the caller's own thread (see the top of redis_client.cpp).
// Internal to the Redis client TUs.
#pragma once

#include "cache/redis_connection.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>

namespace llm_caching::cache {

struct RedisHome;
struct Lane;

/// The lane of `home` on the io_context behind `executor`; null when the executor is not an
/// io_context's, while that io_context has sent fewer than kCommandsBeforeLane commands (they
/// go home: a short-lived io_context costs no lane), or once home is closed.
std::shared_ptr<Lane> lane_of(const std::shared_ptr<RedisHome>& home,
                              const asio::any_io_executor& executor);

/// Sends `command` over `lane`, on the lane's strand (at once when already on it).
void submit_to_lane(const std::shared_ptr<Lane>& lane, PendingPtr command);

/// The client is being destroyed: each lane fails what it holds, closes its socket and leaves
/// its io_context's service, on that io_context's next run. Call with home.lanes_mutex held.
void close_lanes(RedisHome& home);

}  // namespace llm_caching::cache

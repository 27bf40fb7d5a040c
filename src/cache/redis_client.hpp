// A pooled, pipelined Redis client (RESP2) for one server or a Sentinel-managed master. Light
// header: the sockets, TLS and the I/O thread live in the TUs behind it (redis_client.cpp lists
// them: session, home (pool and reconnection), Sentinel, lanes, connection).
// Commands awaited on a long-lived io_context go over a connection on that io_context (no thread
// hand-off); the rest through the client's own I/O thread (see the top of redis_client.cpp).
#pragma once

#include "cache/redis_protocol.hpp"
#include "cache/redis_session.hpp"
#include "llm_caching/cache_options.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace llm_caching::cache {

class RedisClient {
 public:
  /// Starts the I/O thread and the first connection attempt; does not wait for it. Throws
  /// ConfigurationError when the TLS files cannot be loaded. `role`: a cluster replica's
  /// connections send READONLY (RedisClusterClient's replica reads).
  explicit RedisClient(RedisOptions options, NodeRole role = NodeRole::master);
  /// Fails whatever is still pending with CacheError and joins the I/O thread.
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  /// Sends one command and returns its reply (an error reply is a reply, not an exception).
  /// Callable from any executor and thread; it resumes on the caller's executor. Throws
  /// CacheError (naming host:port, never the password) when Redis cannot be reached, does not
  /// answer within the command timeout, or is known to be down (then at once, without waiting,
  /// until a background reconnect succeeds).
  /// `asking`: sent right after ASKING on the same connection (Redis Cluster's ASK redirect).
  boost::asio::awaitable<RedisReply> command(RedisCommand args, bool asking = false);
  /// Sends one blocking command (BRPOPLPUSH with a timeout) over a connection of its own, opened
  /// for it on the caller's executor and closed after the reply, so that no pooled or lane
  /// connection is held up. `reply_within`: the longest the server may take (the command's own
  /// timeout plus a margin). Throws CacheError like command(), and when no master is known yet.
  boost::asio::awaitable<RedisReply> blocking_command(RedisCommand args,
                                                      std::chrono::milliseconds reply_within,
                                                      bool asking = false);

  const RedisOptions& options() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace llm_caching::cache

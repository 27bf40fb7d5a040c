// The session of a Redis master connection: what is sent when it opens (AUTH, CLIENT SETNAME,
// SELECT, ROLE in Sentinel mode, READONLY on a cluster replica read from) and how the replies
// are judged. The building and judging
// are pure (tests/unit/test_redis_session.cpp); open_master_session does the I/O. Internal to the
// Redis client TUs, like redis_connection.hpp.
#pragma once

#include "cache/redis_protocol.hpp"
#include "llm_caching/cache_options.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::cache {

class RedisConnection;
struct PendingCommand;

/// What a client's connections are for: the master (every command), or a cluster replica that
/// serves entry reads (`read_from_replicas`; each connection sends READONLY, without which a
/// replica answers a read with MOVED to its master).
enum class NodeRole { master, replica };

/// Fails a command with CacheError(reason).
void fail_command(PendingCommand& command, const std::string& reason);

/// AUTH password, or AUTH user password for an ACL user.
RedisCommand auth_command(const std::string& user, const std::string& password);

/// The setup commands of a master session, in order, each with a name for messages.
struct SessionSetup {
  std::vector<RedisCommand> commands;
  std::vector<std::string> names;
};
SessionSetup master_session_setup(const RedisOptions& options, NodeRole role = NodeRole::master);

/// Why a master session cannot be used: the connection is dropped with `drop_reason`, and
/// CacheError(`message`) raised. The message names `peer`, never the password.
struct SessionRefusal {
  std::string drop_reason;
  std::string message;
};
/// Judges the setup's replies in order; nullopt when the session is usable.
std::optional<SessionRefusal> judge_master_session(const SessionSetup& setup,
                                                   const std::vector<RedisReply>& replies,
                                                   const RedisOptions& options,
                                                   std::string_view peer);

/// Opens `connection` to `endpoint` and sends the session setup, checking the replies. Throws
/// CacheError naming host:port, never the password.
boost::asio::awaitable<void> open_master_session(RedisConnection& connection,
                                                 const RedisOptions& options,
                                                 const RedisEndpoint& endpoint,
                                                 NodeRole role = NodeRole::master);

}  // namespace llm_caching::cache

#include "cache/redis_session.hpp"

#include "cache/redis_connection.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>

namespace llm_caching::cache {

void fail_command(PendingCommand& command, const std::string& reason) {
  // The exception copies the temporary CacheError, and with it shares the message's
  // reference-counted buffer (libstdc++'s runtime_error): the temporary dies here, before the
  // exception goes to the thread that reads its message. Dying after, it could be the one that
  // frees the buffer, ordered after that read only by a count kept inside libstdc++, which
  // ThreadSanitizer does not see. (HandlerCommand::complete moves the exception on, for the same.)
  std::exception_ptr error = std::make_exception_ptr(CacheError(reason));
  command.complete(std::move(error), {});
}

RedisCommand auth_command(const std::string& user, const std::string& password) {
  if (user.empty()) return {"AUTH", password};
  return {"AUTH", user, password};
}

SessionSetup master_session_setup(const RedisOptions& options, NodeRole role) {
  SessionSetup setup;
  if (!options.password.empty()) {
    setup.commands.push_back(auth_command(options.username, options.password));
    setup.names.push_back("AUTH");
  }
  if (!options.client_name.empty()) {
    setup.commands.push_back({"CLIENT", "SETNAME", options.client_name});
    setup.names.push_back("CLIENT SETNAME");
  }
  if (options.db != 0) {
    setup.commands.push_back({"SELECT", std::to_string(options.db)});
    setup.names.push_back("SELECT");
  }
  const bool sentinel_mode = !options.sentinel_master.empty();
  if (sentinel_mode) {
    setup.commands.push_back({"ROLE"});
    setup.names.push_back("ROLE");
  }
  if (role == NodeRole::replica) {
    setup.commands.push_back({"READONLY"});
    setup.names.push_back("READONLY");
  }
  return setup;
}

std::optional<SessionRefusal> judge_master_session(const SessionSetup& setup,
                                                   const std::vector<RedisReply>& replies,
                                                   const RedisOptions& options,
                                                   std::string_view peer) {
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const RedisReply& reply = replies[i];
    const std::string& name = setup.names[i];
    if (reply.is_error()) {
      if (name == "AUTH") {
        return SessionRefusal{
            "setup failed",
            fmt::format(
                "Redis at {} refused the credentials{}: {}", peer,
                options.username.empty() ? "" : fmt::format(" of user '{}'", options.username),
                reply.text)};
      }
      return SessionRefusal{"setup failed",
                            fmt::format("Redis at {} rejected {}: {}", peer, name, reply.text)};
    }
    if (name == "ROLE") {
      const std::string role = reply.elements.empty() ? "?" : reply.elements.front().text;
      if (role != "master") {
        return SessionRefusal{"not the master",
                              fmt::format("Redis at {} is a {}, not the master '{}'", peer, role,
                                          options.sentinel_master)};
      }
    }
  }
  return std::nullopt;
}

boost::asio::awaitable<void> open_master_session(RedisConnection& connection,
                                                 const RedisOptions& options,
                                                 const RedisEndpoint& endpoint, NodeRole role) {
  SessionSetup setup = master_session_setup(options, role);
  std::vector<RedisCommand> commands = std::move(setup.commands);
  setup.commands.clear();
  const std::vector<RedisReply> replies =
      co_await connection.open(endpoint, std::move(commands), options.connect_timeout);
  if (auto refusal = judge_master_session(setup, replies, options, connection.peer())) {
    connection.drop(refusal->drop_reason, false);
    throw CacheError(refusal->message);
  }
}

}  // namespace llm_caching::cache

#include "cache/redis_sentinel.hpp"

#include "cache/redis_home.hpp"
#include "cache/redis_session.hpp"
#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace llm_caching::cache {

std::vector<RedisCommand> sentinel_query(const RedisOptions& options) {
  std::vector<RedisCommand> setup;
  if (!options.sentinel_password.empty()) {
    setup.push_back(auth_command(options.sentinel_username, options.sentinel_password));
  }
  setup.push_back({"SENTINEL", "get-master-addr-by-name", options.sentinel_master});
  return setup;
}

std::variant<RedisEndpoint, std::string> read_sentinel_answer(
    const std::vector<RedisReply>& replies, const RedisEndpoint& sentinel,
    const RedisOptions& options) {
  const std::string where = describe_endpoint(sentinel);
  const bool auth = !options.sentinel_password.empty();
  if (auth && replies.front().is_error()) {
    return fmt::format("sentinel {} refused the credentials: {}", where, replies.front().text);
  }
  const RedisReply& address = replies.back();
  if (address.kind == RedisReply::Kind::array && address.elements.size() == 2) {
    const std::string& port = address.elements[1].text;
    const int port_number = std::atoi(port.c_str());
    if (port_number > 0 && port_number < 65536) {
      return RedisEndpoint{address.elements[0].text, static_cast<std::uint16_t>(port_number)};
    }
  }
  return address.is_error() ? fmt::format("sentinel {} answered: {}", where, address.text)
                            : fmt::format("sentinel {} does not know a master named '{}'", where,
                                          options.sentinel_master);
}

asio::awaitable<RedisEndpoint> RedisHome::discover_master() {
  std::vector<std::string> problems;
  for (const auto& sentinel : options.endpoints) {
    std::vector<RedisCommand> setup = sentinel_query(options);
    auto connection = new_connection(false);
    std::vector<RedisReply> replies;
    try {
      replies = co_await connection->open(sentinel, std::move(setup), options.connect_timeout);
    } catch (const std::exception& e) {
      problems.push_back(e.what());
    }
    opening.erase(connection);
    if (replies.empty()) continue;
    connection->drop("done", false);
    auto answer = read_sentinel_answer(replies, sentinel, options);
    if (auto* master_address = std::get_if<RedisEndpoint>(&answer)) co_return *master_address;
    problems.push_back(std::get<std::string>(std::move(answer)));
  }
  throw CacheError(fmt::format("no sentinel could name the Redis master '{}': {}",
                               options.sentinel_master, fmt::join(problems, "; ")));
}

asio::awaitable<void> RedisHome::check_master() {
  try {
    const RedisEndpoint current = co_await discover_master();
    if (master && !same_endpoint(current, *master) && !stopping) {
      drop_all(fmt::format("the sentinels moved master '{}' to {}", options.sentinel_master,
                           describe_endpoint(current)));
    }
  } catch (const std::exception& e) {
    spdlog::debug("Redis {}: sentinel check failed: {}", target(), e.what());
  }
}

}  // namespace llm_caching::cache

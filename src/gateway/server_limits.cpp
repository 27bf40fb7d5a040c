// What the server does when a limit refuses something, and the limits it takes from the system.
#include "core/log_throttle.hpp"
#include "gateway/limits.hpp"
#include "gateway/server.hpp"

#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <utility>

namespace llm_caching::gateway {

namespace {

/// One throttle per reason (a LogThrottle is neither copied nor moved: built in place).
template <std::size_t... I>
std::array<core::LogThrottle, sizeof...(I)> make_throttles(std::index_sequence<I...>) {
  return {((void)I, core::LogThrottle(std::chrono::seconds(10)))...};
}

}  // namespace

/// One warning per reason at most every 10 s: a flood of refusals must not flood the log.
void log_refusal(Refusal reason, std::string_view message) {
  static std::array<core::LogThrottle, kRefusalNames.size()> throttles =
      make_throttles(std::make_index_sequence<kRefusalNames.size()>());
  if (throttles[static_cast<std::size_t>(reason)].allow()) {
    spdlog::warn("gateway: refused: {} (llmc_gateway_refused_total{{reason=\"{}\"}} counts them)",
                 message, kRefusalNames[static_cast<std::size_t>(reason)]);
  }
}

std::uint64_t raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur;
}

std::size_t default_max_connections() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1000;
  // Each client connection may hold an upstream one; keep room for the cache's files and
  // sockets and the listeners.
  const std::uint64_t files = std::min<std::uint64_t>(limit.rlim_cur, 1'000'000);
  return static_cast<std::size_t>(std::clamp<std::uint64_t>(
      files > kReservedFiles ? (files - kReservedFiles) / 2 : 16, 16, kMostDefaultConnections));
}

}  // namespace llm_caching::gateway

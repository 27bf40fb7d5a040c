// Runs an awaitable to completion on an io_context of the caller's (or a private one): for tests,
// tools and the CLI, which have no event loop of their own. Never call it from inside a running
// coroutine.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace llm_caching::cache {

/// Runs `task` on `io` until `io` has no work left: the task's and whatever it started. `io` is
/// restarted first, so one io_context serves call after call, as a long-lived caller's does.
template <class T>
T run_blocking(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  io.restart();
  std::exception_ptr error;
  if constexpr (std::is_void_v<T>) {
    boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e) { error = e; });
    io.run();
    if (error) std::rethrow_exception(error);
  } else {
    std::optional<T> result;
    boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
      error = e;
      if (!e) result.emplace(std::move(value));
    });
    io.run();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
  }
}

template <class T>
T run_blocking(boost::asio::awaitable<T> task) {
  boost::asio::io_context io;
  return run_blocking(io, std::move(task));
}

}  // namespace llm_caching::cache

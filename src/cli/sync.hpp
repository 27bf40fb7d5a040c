// Runs one awaitable to completion on a private io_context (the CLI is not asynchronous).
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace llm_caching::cli {

template <class T>
T run_sync(boost::asio::awaitable<T> awaitable) {
  boost::asio::io_context context(1);
  auto future = boost::asio::co_spawn(context, std::move(awaitable), boost::asio::use_future);
  context.run();
  return future.get();
}

}  // namespace llm_caching::cli

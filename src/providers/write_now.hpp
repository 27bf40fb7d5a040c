// Writing to a plain TCP stream without a trip through the event loop when the socket can take
// the bytes at once, as it nearly always can for a request or an answer of a few kilobytes.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <cstddef>

namespace llm_caching::providers {

/// Writes all of `buffers` to `stream`. What the socket takes at once is written right away;
/// only a remainder (a full send buffer) waits, as an async_write under `timeout`. Why: a
/// coroutine's every completed async operation, even one that finished at once, is queued
/// behind whatever else the thread has to do; under load such a queue added up to milliseconds
/// to a miss (docs/perf-log/2026-11-journal.md, "Fewer trips through the event loop").
template <class ConstBufferSequence>
boost::asio::awaitable<void> write_now(boost::beast::tcp_stream& stream,
                                       const ConstBufferSequence& buffers,
                                       std::chrono::steady_clock::duration timeout,
                                       boost::system::error_code& ec) {
  auto& socket = stream.socket();
  // Only synchronous calls see this flag: they then fail with would_block instead of waiting.
  if (!socket.non_blocking()) socket.non_blocking(true, ec);
  boost::beast::buffers_suffix<ConstBufferSequence> rest(buffers);
  while (!ec && boost::asio::buffer_size(rest) > 0) {
    const std::size_t written = socket.write_some(rest, ec);
    rest.consume(written);
  }
  if (ec != boost::asio::error::would_block && ec != boost::asio::error::try_again) co_return;
  ec = {};
  stream.expires_after(timeout);
  co_await boost::asio::async_write(stream, rest,
                                    boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  stream.expires_never();
}

}  // namespace llm_caching::providers

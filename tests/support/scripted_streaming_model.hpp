// A StreamingModel that plays scripted replies: a streamed 2xx reply is handed over in `pieces`
// chunks, and a status 0 reply with a body relays that body first (a stream that broke off).
#pragma once

#include "exchange/exchange.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <deque>
#include <string_view>
#include <utility>

namespace llmc_test {

class ScriptedStreamingModel final : public llm_caching::exchange::StreamingModel {
 public:
  explicit ScriptedStreamingModel(std::size_t chunk_count = 2) : pieces(chunk_count) {}

  std::deque<llm_caching::NativeResponse> replies;
  std::size_t pieces;
  int calls = 0;
  int streamed_calls = 0;

  boost::asio::awaitable<llm_caching::NativeResponse> call(
      const llm_caching::NativeRequest&) override {
    co_return next();
  }
  boost::asio::awaitable<llm_caching::NativeResponse> call_streaming(
      const llm_caching::NativeRequest&, llm_caching::exchange::ChunkSink on_chunk) override {
    ++streamed_calls;
    llm_caching::NativeResponse reply = next();
    if (reply.status == 200) {
      const std::string_view body = reply.body;
      const std::size_t size = body.size() / pieces;
      for (std::size_t i = 0; i < pieces; ++i) {
        on_chunk(i + 1 < pieces ? body.substr(i * size, size) : body.substr(i * size));
      }
    } else if (reply.status == 0 && !reply.body.empty()) {
      on_chunk(reply.body);  // part of a stream, then the connection broke
      reply.body.clear();
    }
    co_return reply;
  }

 private:
  llm_caching::NativeResponse next() {
    ++calls;
    llm_caching::NativeResponse reply = std::move(replies.front());
    replies.pop_front();
    return reply;
  }
};

}  // namespace llmc_test

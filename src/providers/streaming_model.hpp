// A Model that can also hand a streamed answer over chunk by chunk: the gateway relays a streamed
// miss to its caller while it arrives.
#pragma once

#include "llm_caching/model.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <string_view>

namespace llm_caching::providers {

/// Receives the bytes of a streamed 2xx answer as they arrive from the provider.
using ChunkSink = std::function<void(std::string_view chunk)>;

/// call_streaming returns the whole body too (streamed = true), so the exchange can store it.
/// Chunks are only delivered for a 2xx answer; an error body comes back whole in the response.
class StreamingModel : public Model {
 public:
  virtual boost::asio::awaitable<NativeResponse> call_streaming(const NativeRequest& request,
                                                                ChunkSink on_chunk) = 0;
};

}  // namespace llm_caching::providers

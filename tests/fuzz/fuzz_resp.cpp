// The RESP reply reader (cache/redis_protocol.hpp) over bytes from a Redis server (or anything
// listening where Redis should be): replies or a protocol error, never a crash.
#include "cache/redis_protocol.hpp"

#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  llm_caching::cache::RedisReplyReader reader;
  try {
    // In two feeds, as bytes arrive from a socket.
    const std::size_t half = size / 2;
    reader.feed(reinterpret_cast<const char*>(data), half);
    while (reader.next()) {
    }
    reader.feed(reinterpret_cast<const char*>(data) + half, size - half);
    while (reader.next()) {
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}

// RESP (Redis protocol, version 2) values and codec: commands are formatted and replies parsed by
// hiredis' formatter and reader only; sockets are ours (redis_connection.cpp). No Asio here.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::cache {

/// One reply, owned (hiredis' reply object is converted and freed at once).
struct RedisReply {
  enum class Kind { nil, string, status, error, integer, array };
  Kind kind = Kind::nil;
  std::string text;  ///< string, status or error
  long long integer = 0;
  std::vector<RedisReply> elements;

  bool is_error() const noexcept { return kind == Kind::error; }
  bool is_nil() const noexcept { return kind == Kind::nil; }
  /// The first word of an error reply ("READONLY", "WRONGPASS", ...); empty otherwise.
  std::string_view error_code() const noexcept;
};

using RedisCommand = std::vector<std::string>;

/// Appends the RESP encoding of `args` (a multi-bulk request) to `out`.
void append_redis_command(std::string& out, const RedisCommand& args);

/// Incremental reply parser. Feed bytes as they arrive; take whole replies out.
class RedisReplyReader {
 public:
  RedisReplyReader();
  ~RedisReplyReader();
  RedisReplyReader(const RedisReplyReader&) = delete;
  RedisReplyReader& operator=(const RedisReplyReader&) = delete;

  /// Throws std::runtime_error on a protocol error (the stream is unusable afterwards).
  void feed(const char* data, std::size_t size);
  /// The next complete reply, or nullopt when more bytes are needed. Throws on a protocol error.
  std::optional<RedisReply> next();

 private:
  struct ReaderDeleter {
    void operator()(void* reader) const noexcept;
  };
  std::unique_ptr<void, ReaderDeleter> reader_;
};

}  // namespace llm_caching::cache

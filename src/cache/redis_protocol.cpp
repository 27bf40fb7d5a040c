#include "cache/redis_protocol.hpp"

#include <hiredis/hiredis.h>

#include <stdexcept>

namespace llm_caching::cache {
namespace {

RedisReply convert(const redisReply& raw) {
  RedisReply reply;
  switch (raw.type) {
    case REDIS_REPLY_STRING:
      reply.kind = RedisReply::Kind::string;
      reply.text.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_STATUS:
      reply.kind = RedisReply::Kind::status;
      reply.text.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_ERROR:
      reply.kind = RedisReply::Kind::error;
      reply.text.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_INTEGER:
      reply.kind = RedisReply::Kind::integer;
      reply.integer = raw.integer;
      break;
    case REDIS_REPLY_ARRAY:
      reply.kind = RedisReply::Kind::array;
      reply.elements.reserve(raw.elements);
      for (std::size_t i = 0; i < raw.elements; ++i)
        reply.elements.push_back(convert(*raw.element[i]));
      break;
    default:
      reply.kind = RedisReply::Kind::nil;
      break;
  }
  return reply;
}

redisReader* as_reader(void* p) {
  return static_cast<redisReader*>(p);
}

}  // namespace

std::string_view RedisReply::error_code() const noexcept {
  if (kind != Kind::error) return {};
  const std::string_view text_view(text);
  return text_view.substr(0, text_view.find(' '));
}

void append_redis_command(std::string& out, const RedisCommand& args) {
  // The RESP request form is simple enough that hiredis' formatter is only a convenience; it is
  // used so that the byte format has a single, tested source.
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* formatted = nullptr;
  const int length = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()), argv.data(),
                                            lengths.data());
  if (length < 0 || formatted == nullptr) throw std::bad_alloc();
  out.append(formatted, static_cast<std::size_t>(length));
  redisFreeCommand(formatted);
}

void RedisReplyReader::ReaderDeleter::operator()(void* reader) const noexcept {
  redisReaderFree(as_reader(reader));
}

RedisReplyReader::RedisReplyReader() : reader_(redisReaderCreate()) {
  if (!reader_) throw std::bad_alloc();
}

RedisReplyReader::~RedisReplyReader() = default;

void RedisReplyReader::feed(const char* data, std::size_t size) {
  if (redisReaderFeed(as_reader(reader_.get()), data, size) != REDIS_OK) {
    throw std::runtime_error(std::string("Redis protocol error: ") +
                             as_reader(reader_.get())->errstr);
  }
}

std::optional<RedisReply> RedisReplyReader::next() {
  void* raw = nullptr;
  if (redisReaderGetReply(as_reader(reader_.get()), &raw) != REDIS_OK) {
    throw std::runtime_error(std::string("Redis protocol error: ") +
                             as_reader(reader_.get())->errstr);
  }
  if (raw == nullptr) return std::nullopt;
  std::unique_ptr<redisReply, void (*)(void*)> owned(static_cast<redisReply*>(raw),
                                                     freeReplyObject);
  return convert(*owned);
}

}  // namespace llm_caching::cache

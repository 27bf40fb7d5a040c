#include "cache/redis_protocol.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <stdexcept>

namespace llm_caching::cache {
namespace {

// Replies are built directly as RedisReply trees through hiredis' reply-object hooks, so a value
// is copied once, from the reader's buffer into its std::string (not into a redisReply first).
// The hooks are called from C: they never throw (nullptr tells hiredis "out of memory").

/// Elements an array reply reserves before they arrive: its header's count is the server's
/// word, and "*2147483647" must not allocate for two billion replies (a fuzzer found that).
constexpr std::size_t kMostPreallocatedElements = 1024;

/// Puts `value` into its parent array (grown as its elements arrive, in order) or, for a
/// top-level reply, on the heap; hiredis hands the root back from redisReaderGetReply and frees
/// it with free_reply. Growing moves earlier elements, which is safe: hiredis fills an element
/// completely (children included) before it creates the next, and keeps no pointer to it.
void* place(const redisReadTask* task, RedisReply&& value) noexcept {
  try {
    if (task->parent != nullptr) {
      auto& elements = static_cast<RedisReply*>(task->parent->obj)->elements;
      const auto index = static_cast<std::size_t>(task->idx);
      if (index >= elements.size()) elements.resize(index + 1);
      auto& slot = elements[index];
      slot = std::move(value);
      return &slot;
    }
    return new RedisReply(std::move(value));
  } catch (...) {
    return nullptr;
  }
}

void* create_string(const redisReadTask* task, char* text, std::size_t length) {
  RedisReply reply;
  switch (task->type) {
    case REDIS_REPLY_STATUS:
      reply.kind = RedisReply::Kind::status;
      break;
    case REDIS_REPLY_ERROR:
      reply.kind = RedisReply::Kind::error;
      break;
    default:
      reply.kind = RedisReply::Kind::string;
      break;
  }
  try {
    reply.text.assign(text, length);
  } catch (...) {
    return nullptr;
  }
  return place(task, std::move(reply));
}

void* create_array(const redisReadTask* task, int elements) {
  RedisReply reply;
  reply.kind = RedisReply::Kind::array;
  try {
    reply.elements.reserve(
        std::min(static_cast<std::size_t>(std::max(elements, 0)), kMostPreallocatedElements));
  } catch (...) {
    return nullptr;
  }
  return place(task, std::move(reply));
}

void* create_integer(const redisReadTask* task, long long value) {
  RedisReply reply;
  reply.kind = RedisReply::Kind::integer;
  reply.integer = value;
  return place(task, std::move(reply));
}

void* create_nil(const redisReadTask* task) {
  return place(task, RedisReply{});
}

/// Called by hiredis for top-level replies only (children are members of their parent).
void free_reply(void* reply) {
  delete static_cast<RedisReply*>(reply);
}

redisReplyObjectFunctions reply_functions{create_string, create_array, create_integer, create_nil,
                                          free_reply};

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

RedisReplyReader::RedisReplyReader() : reader_(redisReaderCreateWithFunctions(&reply_functions)) {
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
  std::unique_ptr<RedisReply> owned(static_cast<RedisReply*>(raw));
  return std::move(*owned);
}

}  // namespace llm_caching::cache

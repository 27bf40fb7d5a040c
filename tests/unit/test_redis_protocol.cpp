// The RESP reply reader (cache/redis_protocol.hpp): replies built as they arrive, nested and
// pipelined, and what the fuzzer found (tests/fuzz/fuzz_resp.cpp): an array header's count is the
// server's word, so a reply claiming two billion elements must not allocate for them.
#include "cache/redis_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

namespace llm_caching::cache {
namespace {

std::optional<RedisReply> read_one(RedisReplyReader& reader, const std::string& bytes) {
  reader.feed(bytes.data(), bytes.size());
  return reader.next();
}

TEST(RedisReplyReader, NestedArraysArriveWholeWithEveryElementInPlace) {
  RedisReplyReader reader;
  const auto reply = read_one(reader, "*3\r\n*2\r\n+a\r\n:7\r\n$-1\r\n$5\r\nhello\r\n");
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->kind, RedisReply::Kind::array);
  ASSERT_EQ(reply->elements.size(), 3u);
  ASSERT_EQ(reply->elements[0].elements.size(), 2u);
  EXPECT_EQ(reply->elements[0].elements[0].text, "a");
  EXPECT_EQ(reply->elements[0].elements[1].integer, 7);
  EXPECT_TRUE(reply->elements[1].is_nil());
  EXPECT_EQ(reply->elements[2].text, "hello");
}

TEST(RedisReplyReader, AnArrayOfManyElementsFedInPiecesKeepsThemAll) {
  RedisReplyReader reader;
  const int count = 5000;  // past what an array reserves before its elements arrive
  std::string bytes = "*" + std::to_string(count) + "\r\n";
  for (int i = 0; i < count; ++i) bytes += ":" + std::to_string(i) + "\r\n";
  std::optional<RedisReply> reply;
  for (std::size_t at = 0; at < bytes.size(); at += 1000) {
    reader.feed(bytes.data() + at, std::min<std::size_t>(1000, bytes.size() - at));
    if (!reply) reply = reader.next();
  }
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->elements.size(), static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) ASSERT_EQ(reply->elements[i].integer, i);
}

// Found by fuzz_resp ("*388888888\r\n*"): the reader sized the vector from the header at once,
// 2.8 GB before a single element had come.
TEST(RedisReplyReader, AnArrayHeaderClaimingBillionsOfElementsAllocatesNothingForThem) {
  RedisReplyReader reader;
  EXPECT_EQ(read_one(reader, "*2147483647\r\n*"), std::nullopt);  // more bytes needed, no throw
  RedisReplyReader other;
  EXPECT_EQ(read_one(other, "*388888888\r\n*"), std::nullopt);
}

TEST(RedisReplyReader, PipelinedRepliesComeOutInOrderAndErrorsAreReplies) {
  RedisReplyReader reader;
  const std::string bytes = "+OK\r\n-WRONGPASS invalid password\r\n:42\r\n";
  reader.feed(bytes.data(), bytes.size());
  EXPECT_EQ(reader.next()->text, "OK");
  const auto error = reader.next();
  ASSERT_TRUE(error.has_value());
  EXPECT_TRUE(error->is_error());
  EXPECT_EQ(error->error_code(), "WRONGPASS");
  EXPECT_EQ(reader.next()->integer, 42);
  EXPECT_EQ(reader.next(), std::nullopt);
}

TEST(RedisReplyReader, AProtocolErrorThrows) {
  RedisReplyReader reader;
  const std::string bytes = "?what\r\n";
  reader.feed(bytes.data(), bytes.size());
  EXPECT_THROW(reader.next(), std::runtime_error);
}

}  // namespace
}  // namespace llm_caching::cache

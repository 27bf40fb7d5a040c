#include "llm_caching/errors.hpp"
#include "providers/sse.hpp"
#include "support/codec_fixtures.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <random>

using namespace llm_caching;
using namespace llm_caching::providers;

namespace {

using llmc_test::fixture;

std::vector<SseEvent> parse_whole(std::string_view body, bool* clean = nullptr) {
  SseParser parser;
  auto events = parser.feed(body);
  const bool ended_clean = parser.finish();
  if (clean) *clean = ended_clean;
  return events;
}

std::vector<SseEvent> parse_in_chunks(std::string_view body, const std::vector<std::size_t>& cuts) {
  SseParser parser;
  std::vector<SseEvent> events;
  std::size_t start = 0;
  for (std::size_t cut : cuts) {
    parser.feed(body.substr(start, cut - start), events);
    start = cut;
  }
  parser.feed(body.substr(start), events);
  parser.finish();
  return events;
}

// Exercises every line ending, comments, a BOM, multi-line data, ids and retry.
const std::string kTricky =
    "\xEF\xBB\xBF: a comment\r\n"
    "event: first\r\ndata: line one\r\ndata:line two\r\nid: 7\r\n\r\n"
    "data: cr only\rdata:  two spaces\r\r"
    "retry: 1500\nevent: ignored-no-data\n\n"
    "data\n\n"
    "unknown: field\ndata: {\"k\": \"v: w\"}\n\n";

}  // namespace

TEST(Sse, ParsesTheTrickyStreamPerWhatwg) {
  bool clean = false;
  SseParser parser;
  auto events = parser.feed(kTricky);
  clean = parser.finish();
  EXPECT_TRUE(clean);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0], (SseEvent{"first", "line one\nline two", "7"}));
  EXPECT_EQ(events[1], (SseEvent{"message", "cr only\n two spaces", "7"}));
  EXPECT_EQ(events[2], (SseEvent{"message", "", "7"}));  // "data" alone: one empty line
  EXPECT_EQ(events[3], (SseEvent{"message", "{\"k\": \"v: w\"}", "7"}));
  EXPECT_EQ(parser.retry_ms(), 1500);
}

TEST(Sse, ByteByByteEqualsWhole) {
  for (const std::string& body :
       {kTricky, fixture("openai_stream.sse"), fixture("anthropic_stream.sse"),
        fixture("gemini_stream.sse"), fixture("anthropic_stream_error.sse")}) {
    std::vector<std::size_t> every_byte;
    for (std::size_t i = 1; i < body.size(); ++i) every_byte.push_back(i);
    const auto whole = parse_whole(body);
    EXPECT_FALSE(whole.empty());
    EXPECT_EQ(parse_in_chunks(body, every_byte), whole);
  }
}

TEST(Sse, RandomChunkingEqualsWhole) {
  std::mt19937 rng(12345);
  const std::string body = kTricky + fixture("anthropic_stream.sse") + kTricky;
  const auto whole = parse_whole(body);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0;;) {
      at += 1 + rng() % 17;
      if (at >= body.size()) break;
      cuts.push_back(at);
    }
    ASSERT_EQ(parse_in_chunks(body, cuts), whole) << "round " << round;
  }
}

TEST(Sse, CrlfSplitAcrossFeedsIsOneLineBreak) {
  SseParser parser;
  std::vector<SseEvent> events;
  parser.feed("data: a\r", events);
  parser.feed("\n\r", events);
  EXPECT_EQ(events.size(), 1u);
  parser.feed("\ndata: b\n\n", events);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "a");
  EXPECT_EQ(events[1].data, "b");
}

TEST(Sse, WhatwgSpecExamples) {
  auto events = parse_whole("data: YHOO\ndata: +2\ndata: 10\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "YHOO\n+2\n10");

  bool clean = true;
  events = parse_whole("data\n\ndata\ndata\n\ndata:", &clean);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "");
  EXPECT_EQ(events[1].data, "\n");
  EXPECT_FALSE(clean);  // the trailing "data:" had no blank line: discarded

  events = parse_whole("data:test\n\ndata: test\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, events[1].data);
}

TEST(Sse, EventTypeResetsAfterDispatchAndEventsWithoutDataAreDropped) {
  const auto events = parse_whole("event: a\n\nevent: b\ndata: 1\n\ndata: 2\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event, "b");
  EXPECT_EQ(events[1].event, "message");
}

TEST(Sse, FinishReportsAPartialEvent) {
  bool clean = true;
  parse_whole("data: 1\n\ndata: 2\n", &clean);
  EXPECT_FALSE(clean);
  parse_whole("data: 1\n\n: trailing comment\n", &clean);
  EXPECT_TRUE(clean);
  parse_whole("data: 1\n\ndata: part", &clean);
  EXPECT_FALSE(clean);
}

TEST(Sse, InvalidRetryIsIgnored) {
  SseParser parser;
  parser.feed("retry: 12a\nretry: -5\n\n");
  EXPECT_FALSE(parser.retry_ms().has_value());
}

TEST(Sse, OverlongLineIsAProviderErrorNotUnboundedMemory) {
  SseParser parser(64);
  EXPECT_THROW(parser.feed("data: " + std::string(100, 'x')), ProviderError);
}

TEST(Sse, WriterOutputParsesBackToTheSameEvent) {
  const std::string wire = format_sse_event("one\ntwo\r\nthree\rfour", "delta");
  EXPECT_EQ(wire, "event: delta\ndata: one\ndata: two\ndata: three\ndata: four\n\n");
  const auto events = parse_whole(wire + format_sse_event("") + format_sse_event("[DONE]"));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0], (SseEvent{"delta", "one\ntwo\nthree\nfour", ""}));
  EXPECT_EQ(events[1].data, "");
  EXPECT_EQ(events[2], (SseEvent{"message", "[DONE]", ""}));
}

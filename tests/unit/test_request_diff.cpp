// "Why did this replay miss?": the field-by-field diff of canonical requests and the choice of the
// nearest recorded one (core/request_diff.hpp). Pure: no I/O.
#include "core/request_diff.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace llm_caching::core {
namespace {

using Lines = std::vector<std::string>;

constexpr std::string_view kRecorded =
    R"({"messages":[{"content":"You are terse.","role":"system"},{"content":"Hi","role":"user"},)"
    R"({"content":"Tell me a joke about cats","role":"user"}],"model":"gpt-4o","top_p":1})";

TEST(RequestDiff, NamesEachChangedAddedAndRemovedField) {
  const std::string live =
      R"({"messages":[{"content":"You are terse.","role":"system"},{"content":"Hi","role":"user"},)"
      R"({"content":"Tell me a joke about dogs","role":"user"}],"model":"gpt-4o-mini",)"
      R"("temperature":0.2})";
  const RequestDiff diff = diff_requests(kRecorded, live);
  EXPECT_EQ(diff.changes, 4u);
  EXPECT_EQ(
      diff.lines,
      (Lines{R"(messages[2].content: "Tell me a joke about cats" → "Tell me a joke about dogs")",
             R"(model: "gpt-4o" → "gpt-4o-mini")", "temperature: added 0.2", "top_p: removed 1"}));
}

TEST(RequestDiff, IdenticalRequestsHaveNoChange) {
  const RequestDiff diff = diff_requests(kRecorded, kRecorded, "gpt-4o", "gpt-4o");
  EXPECT_EQ(diff.changes, 0u);
  EXPECT_TRUE(diff.lines.empty());
}

TEST(RequestDiff, ALongStringIsShownAroundItsFirstDifference) {
  const std::string head(200, 'a');
  const std::string recorded = R"({"prompt":")" + head + R"(cats and more text after the change"})";
  const std::string live = R"({"prompt":")" + head + R"(dogs and more text after the change"})";
  const RequestDiff diff = diff_requests(recorded, live, {}, {}, {.excerpt_bytes = 30});
  ASSERT_EQ(diff.lines.size(), 1u);
  EXPECT_EQ(diff.lines[0],
            R"(prompt: "…aaaaaaaaaacats and more text a…" → "…aaaaaaaaaadogs and more text a…")");
}

TEST(RequestDiff, ExcerptsNeverCutAUtf8Character) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "é🚀";
  const std::string recorded = R"({"p":")" + text + R"(x"})";
  const std::string live = R"({"p":")" + text + R"(y"})";
  for (std::size_t limit = 5; limit < 40; ++limit) {
    const RequestDiff diff = diff_requests(recorded, live, {}, {}, {.excerpt_bytes = limit});
    ASSERT_EQ(diff.lines.size(), 1u);
    const std::string& line = diff.lines[0];
    // Every character of the line starts on a boundary: no lead byte without its continuation.
    for (std::size_t i = 0; i < line.size();) {
      const auto b = static_cast<unsigned char>(line[i]);
      const std::size_t n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
      ASSERT_NE(b & 0xC0, 0x80) << "a continuation byte at " << i << " of " << line;
      ASSERT_LE(i + n, line.size()) << line;
      i += n;
    }
  }
}

TEST(RequestDiff, ArraysAreComparedByPositionAndMembersWithOddNamesAreQuoted) {
  const RequestDiff diff =
      diff_requests(R"({"a-b":[1,2],"stop":["x"]})", R"({"a-b":[1,3,4],"stop":[]})");
  EXPECT_EQ(diff.lines,
            (Lines{R"(["a-b"][1]: 2 → 3)", R"(["a-b"][2]: added 4)", R"(stop[0]: removed "x")"}));
}

TEST(RequestDiff, ATypeChangeAndLongValuesAreExcerpted) {
  const std::string big = R"({"k":")" + std::string(100, 'z') + R"("})";
  const RequestDiff diff =
      diff_requests(R"({"tools":)" + big + "}", R"({"tools":null})", {}, {}, {.excerpt_bytes = 12});
  ASSERT_EQ(diff.lines.size(), 1u);
  EXPECT_EQ(diff.lines[0], R"(tools: {"k":"zzzzzz… → null)");
}

TEST(RequestDiff, LinesStopAtTheLimitAndCountTheRest) {
  const RequestDiff diff = diff_requests(R"({"a":1,"b":1,"c":1,"d":1})",
                                         R"({"a":2,"b":2,"c":2,"d":2})", {}, {}, {.max_lines = 2});
  EXPECT_EQ(diff.changes, 4u);
  EXPECT_EQ(diff.lines, (Lines{"a: 1 → 2", "b: 1 → 2", "… 2 more fields differ"}));
  const RequestDiff one =
      diff_requests(R"({"a":1,"b":1})", R"({"a":2,"b":2})", {}, {}, {.max_lines = 1});
  EXPECT_EQ(one.lines.back(), "… 1 more field differs");
}

TEST(RequestDiff, AModelOutsideTheBodyIsComparedToo) {
  // Gemini sends the model in the URL: the body has none.
  const std::string body = R"({"contents":[{"parts":[{"text":"Hi"}]}]})";
  const RequestDiff diff = diff_requests(body, body, "gemini-2.0-flash", "gemini-2.5-flash");
  EXPECT_EQ(diff.lines, (Lines{R"(model: "gemini-2.0-flash" → "gemini-2.5-flash")"}));
  // A body that names its model is compared as it is (the model is not counted twice).
  EXPECT_EQ(diff_requests(kRecorded, kRecorded, "gpt-4o", "other").changes, 0u);
}

TEST(RequestDiff, TextThatIsNotJsonIsComparedAsOneString) {
  const RequestDiff diff = diff_requests("not json", R"({"a":1})");
  EXPECT_EQ(diff.lines, (Lines{R"(request: "not json" → {"a":1})"}));
}

TEST(NearestRequest, PrefersTheSameModelThenTheFewestChanges) {
  const std::string live = R"({"model":"m1","a":1,"b":2,"c":3})";
  const std::vector<RecordedRequest> candidates{
      {"m2", R"({"model":"m2","a":1,"b":2,"c":3})"},  // one change, but another model
      {"m1", R"({"model":"m1","a":9,"b":9,"c":3})"},  // two changes
      {"m1", R"({"model":"m1","a":9,"b":2,"c":3})"},  // one change: the nearest
      {"m1", R"({"model":"m1","a":1,"b":2,"c":8})"},  // one change too, but later
  };
  const auto nearest = nearest_request("m1", live, candidates);
  ASSERT_TRUE(nearest);
  EXPECT_EQ(nearest->index, 2u);
  EXPECT_EQ(nearest->diff.lines, (Lines{"a: 9 → 1"}));
}

TEST(NearestRequest, BetweenEquallyManyChangesTheSmallerChangeWins) {
  const std::vector<RecordedRequest> candidates{
      {"m", R"({"messages":[{"content":"my token is [REDACTED], keep it"}]})"},
      {"m", R"({"messages":[{"content":"Tell me a joke about cats"}]})"},
  };
  const auto nearest =
      nearest_request("m", R"({"messages":[{"content":"Tell me a joke about dogs"}]})", candidates);
  ASSERT_TRUE(nearest);
  EXPECT_EQ(nearest->index, 1u);
  EXPECT_EQ(nearest->diff.changes, 1u);
  EXPECT_EQ(nearest->diff.weight, 3u) << "\"cat\" against \"dog\": the \"s\" is common";
}

TEST(NearestRequest, FallsBackToAnotherModelAndNamesIt) {
  const auto nearest = nearest_request(
      "gpt-4o-mini", R"({"model":"gpt-4o-mini","x":1})",
      {{"gpt-4o", R"({"model":"gpt-4o","x":2})"}, {"gpt-4o", R"({"model":"gpt-4o","x":1})"}});
  ASSERT_TRUE(nearest);
  EXPECT_EQ(nearest->index, 1u);
  EXPECT_EQ(nearest->diff.lines, (Lines{R"(model: "gpt-4o" → "gpt-4o-mini")"}));
  EXPECT_FALSE(nearest_request("m", "{}", {}));
}

}  // namespace
}  // namespace llm_caching::core

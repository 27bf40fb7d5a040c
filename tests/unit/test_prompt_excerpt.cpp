// core::prompt_excerpt: the prompt a gateway replay miss names, from each provider's request.
#include "core/prompt_excerpt.hpp"

#include <gtest/gtest.h>

namespace {

using llm_caching::core::prompt_excerpt;

TEST(PromptExcerpt, TheLastMessageOfEveryProvidersFormat) {
  // OpenAI chat, a system message first.
  EXPECT_EQ(
      prompt_excerpt(R"({"model":"m","messages":[{"role":"system","content":"be brief"},)"
                     R"({"role":"user","content":"first"},{"role":"assistant","content":"ok"},)"
                     R"({"role":"user","content":"the question"}]})"),
      "the question");
  // Content parts.
  EXPECT_EQ(prompt_excerpt(R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"},)"
                           R"({"type":"image_url","image_url":{"url":"http://x"}},)"
                           R"({"type":"text","text":"b"}]}]})"),
            "b");
  // Anthropic, its system prompt beside the messages.
  EXPECT_EQ(prompt_excerpt(R"({"messages":[{"role":"user","content":"hi claude"}],)"
                           R"("system":[{"type":"text","text":"you are terse"}]})"),
            "hi claude");
  // Gemini, its system instruction after the contents.
  EXPECT_EQ(prompt_excerpt(R"({"contents":[{"role":"user","parts":[{"text":"hi gemini"}]}],)"
                           R"("systemInstruction":{"parts":[{"text":"rules"}]}})"),
            "hi gemini");
  // Responses, embeddings, legacy completions; tools are not the prompt.
  EXPECT_EQ(
      prompt_excerpt(R"({"input":"what is 2+2","instructions":"x","tools":[{"description":"d"}]})"),
      "what is 2+2");
  EXPECT_EQ(prompt_excerpt(R"({"input":["one","two"]})"), "two");
  EXPECT_EQ(prompt_excerpt(R"({"prompt":"Once upon a time"})"), "Once upon a time");
}

TEST(PromptExcerpt, ShortPrintableAndEmptyWhenThereIsNone) {
  const std::string long_text(500, 'x');
  EXPECT_EQ(prompt_excerpt(R"({"input":")" + long_text + R"("})", 10), "xxxxxxxxxx...");
  EXPECT_EQ(prompt_excerpt(R"({"input":"line\nbreak"})"), "line?break");
  EXPECT_EQ(prompt_excerpt("not json"), "");
  EXPECT_EQ(prompt_excerpt(R"({"model":"m"})"), "");
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += R"({"content":)";
  deep += R"("deep")";
  for (int i = 0; i < 200; ++i) deep += "}";
  EXPECT_EQ(prompt_excerpt(deep), "") << "nested deeper than the parser reads: none";
}

}  // namespace

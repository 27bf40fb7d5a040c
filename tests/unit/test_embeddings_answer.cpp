// The embeddings answer as pieces (providers/embeddings_wire.hpp, answer_pieces): the embeddings
// are pointed at where they lie, never copied, and the pieces joined are the wire's answer.
#include "providers/embeddings_wire.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <string>
#include <vector>

namespace {

namespace json = boost::json;
using namespace llm_caching::providers::embeddings;

std::string joined(const std::vector<std::string_view>& pieces) {
  std::string out;
  for (std::string_view piece : pieces) out.append(piece);
  return out;
}

TEST(EmbeddingsAnswer, OpenAIPiecesPointIntoTheEmbeddingsAndJoinIntoTheAnswer) {
  const std::vector<std::string> stored = {"[0.5,-1]", R"("AAAAPw==")", "[2e-7]"};
  const std::vector<std::string_view> texts(stored.begin(), stored.end());
  std::string glue;
  const std::vector<std::string_view> pieces =
      answer_pieces(Wire::openai, texts, "text-embedding-3-small", 12, glue);
  ASSERT_EQ(pieces.size(), 2 * stored.size() + 1);
  for (std::size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(pieces[2 * i + 1].data(), stored[i].data()) << "embedding " << i << " was copied";
  }
  const json::value answer = json::parse(joined(pieces));
  EXPECT_EQ(answer.at("object"), "list");
  const json::array& data = answer.at("data").as_array();
  ASSERT_EQ(data.size(), 3u);
  for (std::size_t i = 0; i < data.size(); ++i) {
    EXPECT_EQ(data[i].at("index").as_int64(), static_cast<std::int64_t>(i));
    EXPECT_EQ(data[i].at("embedding"), json::parse(stored[i]));
  }
  EXPECT_EQ(answer.at("model"), "text-embedding-3-small");
  EXPECT_EQ(answer.at("usage").at("prompt_tokens").as_int64(), 12);
  EXPECT_EQ(answer_body(Wire::openai, texts, "text-embedding-3-small", 12), joined(pieces));
}

TEST(EmbeddingsAnswer, GeminiShapes) {
  const std::vector<std::string> stored = {R"({"values":[1,2]})", R"({"values":[3]})"};
  const std::vector<std::string_view> texts(stored.begin(), stored.end());
  std::string glue;
  const std::string batch = joined(answer_pieces(Wire::gemini_batch, texts, "m", 0, glue));
  EXPECT_EQ(batch, R"({"embeddings":[{"values":[1,2]},{"values":[3]}]})");
  const std::vector<std::string_view> one = {texts.front()};
  EXPECT_EQ(joined(answer_pieces(Wire::gemini_one, one, "m", 0, glue)),
            R"({"embedding":{"values":[1,2]}})");
}

}  // namespace

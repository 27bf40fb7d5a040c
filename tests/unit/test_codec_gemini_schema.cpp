// A JSON Schema rewritten into Gemini's OpenAPI 3.0 subset (providers/codec_gemini_schema.cpp),
// called directly; test_codec_gemini.cpp checks it inside a whole request.
#include "llm_caching/errors.hpp"
#include "providers/codec_detail.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <string>

namespace llm_caching::providers::detail::gemini {
namespace {

namespace json = boost::json;

json::value convert(const char* schema) {
  return to_gemini_schema(json::parse(schema).as_object());
}

TEST(GeminiSchema, SeveralTypesBecomeAnyOfAndNullBecomesNullable) {
  EXPECT_EQ(convert(R"({"type": ["string", "integer", "null"]})"), json::parse(R"({
    "nullable": true, "anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]})"));
}

TEST(GeminiSchema, OneOfWithSeveralOptionsStaysAnyOf) {
  EXPECT_EQ(
      convert(R"({"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]})"),
      json::parse(R"({"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}], "nullable": true})"));
}

TEST(GeminiSchema, APydanticAllOfWrapperIsExpandedFromDefinitions) {
  EXPECT_EQ(convert(R"({"allOf": [{"$ref": "#/definitions/Id"}], "description": "the id",
                        "definitions": {"Id": {"type": "string", "minLength": 3}}})"),
            json::parse(R"({"type": "STRING", "minLength": 3, "description": "the id"})"));
}

TEST(GeminiSchema, AGivenPropertyOrderingIsKept) {
  EXPECT_EQ(convert(R"({"type": "object", "propertyOrdering": ["b", "a"],
                        "properties": {"a": {"type": "string"}, "b": {"type": "string"}}})"),
            json::parse(R"({"type": "OBJECT", "propertyOrdering": ["b", "a"],
                            "properties": {"a": {"type": "STRING"}, "b": {"type": "STRING"}}})"));
}

TEST(GeminiSchema, KeywordsOutsideTheSubsetAreDropped) {
  EXPECT_EQ(convert(R"({"type": "integer", "minimum": 1, "exclusiveMaximum": 9,
                        "$comment": "x", "format": "int32"})"),
            json::parse(R"({"type": "INTEGER", "minimum": 1, "format": "int32"})"));
}

TEST(GeminiSchema, NestingDeeperThanGeminiAcceptsIsAConfigurationError) {
  // Built in place: Boost.JSON's parser refuses this depth itself.
  json::object deep{{"type", "string"}};
  for (int i = 0; i < 60; ++i) deep = json::object{{"type", "array"}, {"items", std::move(deep)}};
  EXPECT_THROW(to_gemini_schema(deep), ConfigurationError);
}

}  // namespace
}  // namespace llm_caching::providers::detail::gemini

// The pieces every cache URL form is parsed with (cache/cache_url_params.hpp): percent-decoding,
// query parameters and whole numbers, with ConfigurationErrors that mask the password.
#include "cache/cache_url_params.hpp"
#include "llm_caching/errors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

namespace llm_caching::cache::url {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kUrl = "redis://u:s3cret@h/0";

std::string error_of(const std::function<void()>& parse) {
  try {
    parse();
  } catch (const ConfigurationError& e) {
    return e.what();
  }
  return "no ConfigurationError";
}

TEST(CacheUrlParams, PercentDecodesEscapesInEitherCase) {
  EXPECT_EQ(percent_decode("p%40ss%2fw%2Fx", kUrl), "p@ss/w/x");
  EXPECT_EQ(percent_decode("plain", kUrl), "plain");
}

TEST(CacheUrlParams, AMalformedEscapeOrANulIsAnErrorThatMasksThePassword) {
  const std::string bad = error_of([] { percent_decode("a%4", kUrl); });
  EXPECT_THAT(bad, HasSubstr("invalid cache URL 'redis://u:***@h/0': a '%' must be followed by "
                             "two hex digits"));
  EXPECT_THAT(bad, Not(HasSubstr("s3cret")));
  EXPECT_THAT(error_of([] { percent_decode("%zz", kUrl); }), HasSubstr("two hex digits"));
  EXPECT_THAT(error_of([] { percent_decode("a%00", kUrl); }), HasSubstr("%00 is not allowed"));
}

TEST(CacheUrlParams, ParsesQueryParametersAndDecodesTheirValues) {
  const Params params = parse_query("a=1&&b=x%20y&c=%3D", kUrl);
  EXPECT_EQ(params, (Params{{"a", "1"}, {"b", "x y"}, {"c", "="}}));
  EXPECT_TRUE(parse_query("", kUrl).empty());
}

TEST(CacheUrlParams, ARepeatedOrValuelessParameterIsAnError) {
  EXPECT_THAT(error_of([] { parse_query("db=1&db=2", kUrl); }),
              HasSubstr("query parameter 'db' is given twice"));
  EXPECT_THAT(error_of([] { parse_query("db", kUrl); }),
              HasSubstr("query parameter 'db' needs a value (name=value)"));
  EXPECT_THAT(error_of([] { parse_query("db=", kUrl); }), HasSubstr("'db' needs a value"));
}

TEST(CacheUrlParams, UnknownParametersAreNamedWithTheAcceptedOnes) {
  const Params params{{"max_bytes", "1"}, {"colour", "red"}, {"size", "2"}};
  EXPECT_THAT(error_of([&] { reject_unknown_params(params, {"max_bytes"}, kUrl); }),
              HasSubstr("unknown query parameters colour, size; accepted here: max_bytes"));
  EXPECT_NO_THROW(reject_unknown_params({{"max_bytes", "1"}}, {"max_bytes"}, kUrl));
}

TEST(CacheUrlParams, WholeNumbers) {
  EXPECT_EQ(parse_unsigned("0", "n"), 0u);
  EXPECT_EQ(parse_unsigned("1234567890123456789", "n"), 1234567890123456789u);
  for (const char* bad : {"", "-1", "1.5", " 1", "12345678901234567890"}) {
    EXPECT_THAT(error_of([&] { parse_unsigned(bad, "port"); }),
                HasSubstr("port: '" + std::string(bad) + "' is not a non-negative whole number"))
        << bad;
  }
}

}  // namespace
}  // namespace llm_caching::cache::url

// RFC 8785 canonical JSON: the examples published in the RFC, the number forms Boost.JSON
// produces, string escaping, member order and the errors for values that have no canonical form.
#include "core/canonical_json.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace json = boost::json;
using llm_caching::canonical_json;
using llm_caching::ConfigurationError;

namespace {

std::string canonical_of_text(std::string_view text) {
  return canonical_json(llm_caching::parse_json_exact(text));
}

std::string number_form(double d) {
  std::string out;
  llm_caching::detail::append_canonical_number(out, d);
  return out;
}

// RFC 8785 Appendix B: IEEE 754 bit patterns and their required serialisation.
struct NumberSample {
  std::uint64_t bits;
  const char* expected;
};

TEST(CanonicalJsonNumbers, MatchRfc8785AppendixB) {
  const NumberSample samples[] = {
      {0x0000000000000000, "0"},
      {0x8000000000000000, "0"},
      {0x0000000000000001, "5e-324"},
      {0x8000000000000001, "-5e-324"},
      {0x7fefffffffffffff, "1.7976931348623157e+308"},
      {0xffefffffffffffff, "-1.7976931348623157e+308"},
      {0x4340000000000000, "9007199254740992"},
      {0xc340000000000000, "-9007199254740992"},
      {0x4430000000000000, "295147905179352830000"},
      {0x44b52d02c7e14af5, "9.999999999999997e+22"},
      {0x44b52d02c7e14af6, "1e+23"},
      {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
      {0x444b1ae4d6e2ef4e, "999999999999999700000"},
      {0x444b1ae4d6e2ef4f, "999999999999999900000"},
      {0x444b1ae4d6e2ef50, "1e+21"},
      {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
      {0x3eb0c6f7a0b5ed8d, "0.000001"},
      {0x41b3de4355555553, "333333333.3333332"},
      {0x41b3de4355555554, "333333333.33333325"},
      {0x41b3de4355555555, "333333333.3333333"},
      {0x41b3de4355555556, "333333333.3333334"},
      {0x41b3de4355555557, "333333333.33333343"},
      {0xbecbf647612f3696, "-0.0000033333333333333333"},
      {0x43143ff3c1cb0959, "1424953923781206.2"},
  };
  for (const auto& sample : samples) {
    EXPECT_EQ(number_form(std::bit_cast<double>(sample.bits)), sample.expected)
        << std::hex << sample.bits;
  }
}

TEST(CanonicalJsonNumbers, ParsedLiteralsUseEcmaScriptForm) {
  EXPECT_EQ(canonical_of_text("[1e+30, 1E30, 4.50, 2e-3, 0.000001, 1e-7, 1.5e-7, 1e21, 1e20]"),
            "[1e+30,1e+30,4.5,0.002,0.000001,1e-7,1.5e-7,1e+21,100000000000000000000]");
  EXPECT_EQ(canonical_of_text("[0.1, -1.25, 123.456e3, 0.0000012345, 9007199254740992]"),
            "[0.1,-1.25,123456,0.0000012345,9007199254740992]");
}

TEST(CanonicalJsonNumbers, EqualValuesInEveryBoostKindCanonicaliseIdentically) {
  // Boost.JSON parses these into int64 or double; the canonical text must not depend on that.
  for (const char* zero : {"0", "-0", "0.0", "-0.0", "0E0", "0e-5", "-0E+3"}) {
    EXPECT_EQ(canonical_of_text(zero), "0") << zero;
  }
  for (const char* hundred : {"100", "1e2", "1E2", "100.0", "1.00e+2", "10000e-2"}) {
    EXPECT_EQ(canonical_of_text(hundred), "100") << hundred;
  }
  EXPECT_EQ(canonical_json(json::value(std::uint64_t{7})), canonical_json(json::value(7.0)));
  // Above 2^53 too, as long as the double holds the integer exactly.
  EXPECT_EQ(canonical_of_text("100000000000000000"), canonical_of_text("1e17"));
}

TEST(CanonicalJsonNumbers, IntegersBeyond2Pow53AreWrittenExactly) {
  // Deliberate deviation from RFC 8785: rounding through a double would merge distinct seeds.
  EXPECT_EQ(canonical_of_text("9007199254740993"), "9007199254740993");
  EXPECT_NE(canonical_of_text("9007199254740993"), canonical_of_text("9007199254740992"));
  EXPECT_EQ(canonical_of_text("123456789012345678"), "123456789012345678");
  EXPECT_EQ(canonical_of_text("-9223372036854775808"), "-9223372036854775808");
  EXPECT_EQ(canonical_of_text("18446744073709551615"), "18446744073709551615");
}

TEST(CanonicalJsonNumbers, NanAndInfinityAreConfigurationErrors) {
  for (double d :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity()}) {
    EXPECT_THROW(canonical_json(json::value(d)), ConfigurationError);
    EXPECT_THROW(canonical_json(json::array{1, d}), ConfigurationError);
  }
}

TEST(CanonicalJson, Rfc8785MainExample) {
  // RFC 8785 §3.2.2 input and its published canonical output.
  const char* input = R"({
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  })";
  EXPECT_EQ(canonical_of_text(input),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
            "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

TEST(CanonicalJson, Rfc8785SortingExampleOrdersByUtf16CodeUnits) {
  // RFC 8785 §3.2.3: U+1F600 (a surrogate pair in UTF-16) sorts before U+FB33, unlike in UTF-8.
  const char* input = R"({
    "\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis"
  })";
  EXPECT_EQ(canonical_of_text(input),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
            "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
            "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
            "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

TEST(CanonicalJson, MixedKeysAreSortedAtEveryLevel) {
  EXPECT_EQ(
      canonical_of_text(R"({"b":{"z":1,"a":[3,{"y":2,"x":1}]},"a":null,"B":true,"aa":[],"":0})"),
      R"({"":0,"B":true,"a":null,"aa":[],"b":{"a":[3,{"x":1,"y":2}],"z":1}})");
}

TEST(CanonicalJson, LargeObjectsAreSortedToo) {
  std::vector<std::string> names;
  for (int i = 0; i < 40; ++i) names.push_back("key" + std::to_string(100 + i));
  std::vector<std::string> shuffled = names;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(42));
  json::object o;
  for (const auto& name : shuffled) o[name] = name.size();
  std::string expected = "{";
  for (const auto& name : names) expected += "\"" + name + "\":6,";
  expected.back() = '}';
  EXPECT_EQ(canonical_json(o), expected);
}

TEST(CanonicalJson, Utf16OrderPutsSupplementaryCharactersBeforePrivateUse) {
  using llm_caching::detail::utf16_less;
  EXPECT_TRUE(utf16_less("\xf0\x9f\x98\x80", "\xee\x80\x80"));  // U+1F600 < U+E000
  EXPECT_FALSE(utf16_less("\xee\x80\x80", "\xf0\x9f\x98\x80"));
  EXPECT_TRUE(utf16_less("\xed\x9f\xbf", "\xf0\x9f\x98\x80"));  // U+D7FF < U+1F600
  EXPECT_TRUE(utf16_less("\xc3\xa9", "\xe2\x82\xac"));          // U+00E9 < U+20AC
  EXPECT_TRUE(utf16_less("a", "ab"));
  EXPECT_FALSE(utf16_less("ab", "a"));
  EXPECT_FALSE(utf16_less("same", "same"));
}

TEST(CanonicalJsonStrings, EscapesOnlyWhatRfc8785Requires) {
  std::string all_controls;
  for (char c = 0; c < 0x20; ++c) all_controls.push_back(c);
  EXPECT_EQ(canonical_json(json::value(all_controls)),
            "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
            "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
            "\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"");
  // Slash, DEL, U+2028 and non-ASCII characters are written as they are.
  EXPECT_EQ(canonical_of_text(R"("a/b\u007f\u2028 caf\u00e9 \"q\" \\")"),
            "\"a/b\x7f\xe2\x80\xa8 caf\xc3\xa9 \\\"q\\\" \\\\\"");
  EXPECT_EQ(canonical_of_text(R"("\ud83d\ude00")"), "\"\xf0\x9f\x98\x80\"");
}

TEST(CanonicalJsonStrings, SpecialCharactersAreFoundAtEveryPositionOfLongStrings) {
  // Long ASCII runs are scanned 8 bytes at a time; what needs attention must never be skipped.
  const std::string padding(24, 'x');
  for (std::size_t at = 0; at <= padding.size(); ++at) {
    const std::string head = padding.substr(0, at);
    const std::string tail = padding.substr(at);
    EXPECT_EQ(canonical_json(json::value(head + "\"" + tail)), "\"" + head + "\\\"" + tail + "\"");
    EXPECT_EQ(canonical_json(json::value(head + "\\" + tail)), "\"" + head + "\\\\" + tail + "\"");
    EXPECT_EQ(canonical_json(json::value(head + "\x01" + tail)),
              "\"" + head + "\\u0001" + tail + "\"");
    EXPECT_EQ(canonical_json(json::value(head + "\xc3\xa9" + tail)),
              "\"" + head + "\xc3\xa9" + tail + "\"");
    EXPECT_THROW(canonical_json(json::value(head + "\xc3" + tail)), ConfigurationError) << at;
  }
}

TEST(CanonicalJsonStrings, InvalidUtf8IsAConfigurationErrorNotACrash) {
  // Boost.JSON's parser rejects these; values built in code can still hold them.
  for (const char* bad : {"\xff", "ok\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                          "\xf4\x90\x80\x80", "\xf0\x9f\x98", "\x80"}) {
    EXPECT_THROW(canonical_json(json::value(bad)), ConfigurationError) << bad;
    json::object with_bad_key;
    with_bad_key[bad] = 1;
    with_bad_key["other"] = 2;
    EXPECT_THROW(canonical_json(with_bad_key), ConfigurationError) << bad;
  }
  EXPECT_EQ(canonical_json(json::value("\xf4\x8f\xbf\xbf")), "\"\xf4\x8f\xbf\xbf\"");  // U+10FFFF
}

TEST(CanonicalJson, NestingBeyondTheLimitIsRejected) {
  const auto nested = [](int depth) {
    json::value v = json::array();
    for (int i = 1; i < depth; ++i) v = json::array{std::move(v)};
    return v;
  };
  const int limit = llm_caching::detail::max_canonical_depth;
  EXPECT_EQ(canonical_json(nested(limit)).size(), 2u * limit);
  EXPECT_THROW(canonical_json(nested(limit + 1)), ConfigurationError);
}

TEST(CanonicalJson, EditsOmitMembersAndReplaceStringsWithoutTouchingTheValue) {
  const json::value v = json::parse(R"({"keep":"a","drop":1,"inner":{"drop":2,"id":"x"}})");
  const json::object& root = v.get_object();
  const json::value* omitted[] = {root.if_contains("drop")};
  const std::pair<const json::value*, std::string> replaced[] = {
      {&root.at("inner").get_object().at("id"), "call_1"}};
  std::string out;
  llm_caching::detail::append_canonical_json(out, v, {omitted, replaced});
  EXPECT_EQ(out, R"({"inner":{"drop":2,"id":"call_1"},"keep":"a"})");
  EXPECT_EQ(canonical_json(v), R"({"drop":1,"inner":{"drop":2,"id":"x"},"keep":"a"})");
}

TEST(ParseJsonExact, DoublesAreCorrectlyRounded) {
  // Shortest round-trip forms, as Python's json and JavaScript write them, must read back as the
  // very same double (Boost.JSON 1.81's parser misses about one in seven of these).
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> uniform(0, 2);
  for (int i = 0; i < 20000; ++i) {
    const double d = uniform(rng) * std::pow(10.0, static_cast<double>(i % 40) - 20);
    std::array<char, 32> text;
    const auto end = std::to_chars(text.data(), text.data() + text.size(), d).ptr;
    const std::string_view literal(text.data(), static_cast<std::size_t>(end - text.data()));
    // to_chars may write an integer-valued double without exponent or point ("120000"),
    // which JSON reads as an integer of the same value.
    ASSERT_EQ(llm_caching::parse_json_exact(literal).to_number<double>(), d) << literal;
  }
  EXPECT_EQ(llm_caching::parse_json_exact("[0.9024298076890763]").at(0).get_double(),
            0.9024298076890763);
}

TEST(ParseJsonExact, KeepsIntegerKindsAndEverythingElse) {
  const json::value v =
      llm_caching::parse_json_exact(R"({"i":-5,"u":18446744073709551615,"d":-0.0,"s":"\u00e9",
                                       "a":[true,false,null,{}]})");
  EXPECT_EQ(v.at("i"), json::value(-5));
  EXPECT_TRUE(v.at("u").is_uint64());
  EXPECT_TRUE(v.at("d").is_double());
  EXPECT_TRUE(std::signbit(v.at("d").get_double()));
  EXPECT_EQ(v.at("s").get_string(), "\xc3\xa9");
  EXPECT_EQ(v.at("a"), json::parse("[true,false,null,{}]"));
}

TEST(ParseJsonExact, InvalidTextIsReportedNotCrashed) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\":1} x", "\"\xff\"", "01", "1e999999999999"}) {
    EXPECT_THROW(llm_caching::parse_json_exact(bad), ConfigurationError) << bad;
    json::error_code ec;
    EXPECT_TRUE(llm_caching::parse_json_exact(bad, ec).is_null());
    EXPECT_TRUE(ec.failed()) << bad;
  }
}

}  // namespace

namespace {

// A body that names a key twice is refused: one parser keeps the first value, another the last,
// so the cache key and the provider could read two different requests (issue 31, finding 5).
TEST(ParseJsonExact, ARepeatedKeyIsRefusedAndNamed) {
  boost::json::error_code ec;
  std::string duplicate;
  const auto top = llm_caching::parse_json_exact(
      R"({"model":"m","messages":[{"role":"user","content":"A"}],"messages":[]})", ec, &duplicate);
  EXPECT_EQ(ec, llm_caching::JsonError::duplicate_key);
  EXPECT_EQ(duplicate, "messages");
  EXPECT_TRUE(top.is_null());

  llm_caching::parse_json_exact(R"({"a":{"b":1,"c":{"d":2,"d":3}}})", ec, &duplicate);
  EXPECT_EQ(ec, llm_caching::JsonError::duplicate_key);
  EXPECT_EQ(duplicate, "d");

  try {
    llm_caching::parse_json_exact(R"({"temperature":1,"temperature":0})");
    FAIL() << "a repeated key must throw";
  } catch (const llm_caching::ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("\"temperature\" appears twice"), std::string::npos)
        << e.what();
  }
}

TEST(ParseJsonExact, EscapesThatSpellTheSameKeyAreARepeat) {
  boost::json::error_code ec;
  std::string duplicate;
  llm_caching::parse_json_exact(R"({"messages":1,"messa\u0067es":2})", ec, &duplicate);
  EXPECT_EQ(ec, llm_caching::JsonError::duplicate_key);
  EXPECT_EQ(duplicate, "messages");
}

TEST(ParseJsonExact, SameKeysInDifferentObjectsAreFine) {
  const auto v = llm_caching::parse_json_exact(
      R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}],)"
      R"("n":{"role":1},"role":2})");
  EXPECT_EQ(v.at("messages").as_array().size(), 2u);
  EXPECT_EQ(v.at("role").as_int64(), 2);
}

TEST(ParseJsonExact, LargeObjectsAreCheckedInLinearTime) {
  std::string text = "{";
  for (int i = 0; i < 20000; ++i)
    text += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  std::string unique = text;
  unique.back() = '}';
  EXPECT_EQ(llm_caching::parse_json_exact(unique).as_object().size(), 20000u);
  text += "\"k19999\":0}";
  boost::json::error_code ec;
  std::string duplicate;
  llm_caching::parse_json_exact(text, ec, &duplicate);
  EXPECT_EQ(ec, llm_caching::JsonError::duplicate_key);
  EXPECT_EQ(duplicate, "k19999");
}

}  // namespace

// Golden vectors for the canonical number form (RFC 8785 §3.2.2.3: ECMAScript Number::toString)
// and for the exact parser (issue 28). RFC 8785 Appendix B's samples are in
// test_canonical_json.cpp; here, thousands more whose form is known two independent ways:
// written by JavaScript itself (tests/data/ecmascript_numbers.txt, made by the .mjs beside it),
// and laid out here by the ECMAScript rules from std::to_chars' shortest round-trip digits.
#include "llm_caching/cache_key.hpp"

#include <gtest/gtest.h>
#include <boost/json/value.hpp>

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;
using llm_caching::canonical_json;
using llm_caching::parse_json_exact;

/// ECMAScript Number::toString(d) (ECMA-262 §6.1.6.1.20) for finite d, built from the shortest
/// round-trip digits of std::to_chars: the digits and decimal exponent are the same number the
/// spec's s, k and n describe (fewest digits, then closest to d), only the layout differs.
std::string ecmascript_form(double d) {
  if (d == 0) return "0";  // -0 too
  if (d < 0) return "-" + ecmascript_form(-d);
  std::array<char, 64> buffer;
  const auto end =
      std::to_chars(buffer.data(), buffer.data() + buffer.size(), d, std::chars_format::scientific)
          .ptr;
  const std::string text(buffer.data(), end);  // "d.ddde+XX" or "de-XX"
  const std::size_t e_at = text.find('e');
  std::string digits = text.substr(0, e_at);
  if (digits.size() > 1) digits.erase(1, 1);  // drop the point
  const int k = static_cast<int>(digits.size());
  const int n = std::stoi(text.substr(e_at + 1)) + 1;  // d = 0.digits * 10^n
  if (k <= n && n <= 21) return digits + std::string(static_cast<std::size_t>(n - k), '0');
  if (0 < n && n <= 21) return digits.substr(0, n) + "." + digits.substr(n);
  if (-6 < n && n <= 0) return "0." + std::string(static_cast<std::size_t>(-n), '0') + digits;
  const int exponent = n - 1;
  std::string out = digits.substr(0, 1);
  if (k > 1) out += "." + digits.substr(1);
  return out + "e" + (exponent < 0 ? "-" : "+") + std::to_string(std::abs(exponent));
}

/// `%.17g`: always enough digits to round-trip, and not the shortest (so the parser has work).
std::string seventeen_digits(double d) {
  std::array<char, 40> buffer;
  const int n = std::snprintf(buffer.data(), buffer.size(), "%.17g", d);
  return std::string(buffer.data(), static_cast<std::size_t>(n));
}

/// The double the exact parser reads from `text` (JSON integers too: "120000", "-0").
double parsed(const std::string& text) {
  return parse_json_exact(text).to_number<double>();
}

/// Doubles of every kind from a fixed seed: random bit patterns, full-precision fractions,
/// and the ranges around the layout switches (1e21, 1e-6) and 2^53.
std::vector<double> random_doubles(std::size_t per_group) {
  std::mt19937_64 rng(28);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<double> out;
  for (std::size_t i = 0; i < per_group; ++i) {
    double any = std::bit_cast<double>(rng());
    while (!std::isfinite(any)) any = std::bit_cast<double>(rng());
    out.push_back(any);
    out.push_back(unit(rng));
    out.push_back(-2 * unit(rng));
    out.push_back(std::pow(10.0, 17 + 5 * unit(rng)));
    out.push_back(std::pow(10.0, -9 + 4 * unit(rng)));
    out.push_back(std::ldexp(0.5 + 4 * unit(rng), 53));
    out.push_back(std::bit_cast<double>(rng() >> 12));  // subnormal
  }
  return out;
}

TEST(CanonicalNumbers, TheLayoutRulesReproduceRfc8785Samples) {
  // The oracle below must itself be right: a few RFC 8785 Appendix B samples, one per rule.
  EXPECT_EQ(ecmascript_form(std::bit_cast<double>(0x8000000000000000)), "0");
  EXPECT_EQ(ecmascript_form(std::bit_cast<double>(0x8000000000000001)), "-5e-324");
  EXPECT_EQ(ecmascript_form(std::bit_cast<double>(0x4430000000000000)), "295147905179352830000");
  EXPECT_EQ(ecmascript_form(std::bit_cast<double>(0x44b52d02c7e14af6)), "1e+23");
  EXPECT_EQ(ecmascript_form(std::bit_cast<double>(0x444b1ae4d6e2ef50)), "1e+21");
  EXPECT_EQ(ecmascript_form(std::bit_cast<double>(0x3eb0c6f7a0b5ed8c)), "9.999999999999997e-7");
  EXPECT_EQ(ecmascript_form(std::bit_cast<double>(0x3eb0c6f7a0b5ed8d)), "0.000001");
  EXPECT_EQ(ecmascript_form(std::bit_cast<double>(0xbecbf647612f3696)),
            "-0.0000033333333333333333");
  EXPECT_EQ(ecmascript_form(std::bit_cast<double>(0x43143ff3c1cb0959)), "1424953923781206.2");
}

TEST(CanonicalNumbers, RandomDoublesAreWrittenInEcmaScriptForm) {
  const std::vector<double> doubles = random_doubles(500);
  ASSERT_EQ(doubles.size(), 3500u);
  int failures = 0;
  for (const double d : doubles) {
    const std::string expected = ecmascript_form(d);
    const std::string written = canonical_json(json::value(d));
    if (written != expected && ++failures <= 10) {
      ADD_FAILURE() << seventeen_digits(d) << ": wrote " << written << ", ECMAScript writes "
                    << expected;
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(CanonicalNumbers, TheExactParserReadsBackEveryForm) {
  int failures = 0;
  for (const double d : random_doubles(500)) {
    // Full precision (what a client may send), shortest (Python, JavaScript) and canonical.
    std::array<char, 32> shortest;
    const auto end = std::to_chars(shortest.data(), shortest.data() + shortest.size(), d).ptr;
    for (const std::string& text :
         {seventeen_digits(d), std::string(shortest.data(), end), canonical_json(json::value(d))}) {
      if (parsed(text) != d && ++failures <= 10) {
        ADD_FAILURE() << text << " read back as " << seventeen_digits(parsed(text));
      }
    }
    // Canonical text is a fixed point: parsing and writing it again changes nothing.
    const std::string canonical = canonical_json(json::value(d));
    const std::string again = canonical_json(parse_json_exact(canonical));
    if (again != canonical && ++failures <= 10) {
      ADD_FAILURE() << canonical << " was written again as " << again;
    }
  }
  EXPECT_EQ(failures, 0);
}

struct Golden {
  double value;
  std::string text;
};

std::vector<Golden> javascript_golden() {
  std::ifstream in(LLMC_TEST_DATA_DIR "/ecmascript_numbers.txt");
  std::vector<Golden> out;
  std::string hex, text;
  while (in >> hex >> text)
    out.push_back({std::bit_cast<double>(std::stoull(hex, nullptr, 16)), text});
  return out;
}

TEST(CanonicalNumbers, MatchJavaScriptsOwnJsonStringify) {
  const std::vector<Golden> golden = javascript_golden();
  ASSERT_EQ(golden.size(), 3000u) << "tests/data/ecmascript_numbers.txt";
  int failures = 0;
  for (const Golden& g : golden) {
    const std::string written = canonical_json(json::value(g.value));
    const bool ok = written == g.text && parsed(g.text) == g.value &&
                    parsed(seventeen_digits(g.value)) == g.value &&
                    canonical_json(parse_json_exact(g.text)) == g.text;
    if (!ok && ++failures <= 10) {
      ADD_FAILURE() << "JavaScript writes " << g.text << ", we write " << written
                    << "; the exact parser reads " << seventeen_digits(parsed(g.text));
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(CanonicalNumbers, OneBodyOneKeyWhateverTheNumberSpelling) {
  // Issue 28's examples: a body keys the same whether its temperature is written with 17 digits
  // or the shortest form, by the library (a double in code) and from text.
  for (const double t : {0.9302195891146001, 0.012420173606334517, 503192121575750100000.0, 0.7}) {
    json::object built{{"model", "gpt-4o-mini"}, {"messages", json::array{}}, {"temperature", t}};
    const std::string from_code =
        llm_caching::derive_key(llm_caching::Provider::openai, "gpt-4o-mini", built).hex;
    for (const std::string& text : {seventeen_digits(t), ecmascript_form(t)}) {
      const json::value body =
          parse_json_exact(R"({"model":"gpt-4o-mini","messages":[],"temperature":)" + text + "}");
      EXPECT_EQ(llm_caching::derive_key(llm_caching::Provider::openai, "gpt-4o-mini", body).hex,
                from_code)
          << text;
    }
  }
}

}  // namespace

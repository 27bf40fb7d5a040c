// Typed output: schema generation, validated conversion from a model's JSON, and JSON output.
#include "llm_caching/typed_output.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>
#include <boost/describe.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace shop {

// The seed README's model.
struct UserProfile {
  std::string name;
  int age = 0;
  std::vector<std::string> interests;
  friend bool operator==(const UserProfile&, const UserProfile&) = default;
};
BOOST_DESCRIBE_STRUCT(UserProfile, (), (name, age, interests))

enum class Color { red, green, blue };
BOOST_DESCRIBE_ENUM(Color, red, green, blue)

struct Address {
  std::string city;
  std::optional<std::string> postcode;
  friend bool operator==(const Address&, const Address&) = default;
};
BOOST_DESCRIBE_STRUCT(Address, (), (city, postcode))

struct Item {
  std::string sku;
  std::uint32_t quantity = 0;
  double price = 0;
  friend bool operator==(const Item&, const Item&) = default;
};
BOOST_DESCRIBE_STRUCT(Item, (), (sku, quantity, price))

struct Order {
  UserProfile customer;
  Color color = Color::red;
  std::optional<Address> shipping;
  std::vector<Item> items;
  std::map<std::string, std::int64_t> counters;
  std::optional<int> priority;
  bool gift = false;
  float weight = 0;
  friend bool operator==(const Order&, const Order&) = default;
};
BOOST_DESCRIBE_STRUCT(Order, (),
                      (customer, color, shipping, items, counters, priority, gift, weight))

struct Widths {
  std::int8_t i8 = 0;
  std::uint8_t u8 = 0;
  std::int64_t i64 = 0;
  std::uint64_t u64 = 0;
  friend bool operator==(const Widths&, const Widths&) = default;
};
BOOST_DESCRIBE_STRUCT(Widths, (), (i8, u8, i64, u64))

struct Tags {
  std::unordered_map<std::string, std::vector<bool>> flags;
  friend bool operator==(const Tags&, const Tags&) = default;
};
BOOST_DESCRIBE_STRUCT(Tags, (), (flags))

struct Node {
  std::string label;
  std::vector<Node> children;
  friend bool operator==(const Node&, const Node&) = default;
};
BOOST_DESCRIBE_STRUCT(Node, (), (label, children))

struct Base {
  std::string id;
};
BOOST_DESCRIBE_STRUCT(Base, (), (id))
struct Derived : Base {
  bool active = false;
};
BOOST_DESCRIBE_STRUCT(Derived, (Base), (active))

template <class T>
struct Wrapper {
  T value{};
};
BOOST_DESCRIBE_STRUCT(Wrapper<int>, (), (value))

struct Renamed {
  int x = 0;
};
BOOST_DESCRIBE_STRUCT(Renamed, (), (x))

}  // namespace shop

template <>
struct llm_caching::schema_name<shop::Renamed> {
  static constexpr std::string_view name = "renamed answer/v2";
};

namespace {

using llm_caching::from_json_checked;
using llm_caching::json_schema_for;
using llm_caching::ProviderError;
using llm_caching::to_json_string;
using llm_caching::to_json_value;
using shop::Color;
using shop::Order;
using shop::UserProfile;

boost::json::value parse(std::string_view text) {
  return boost::json::parse(text);
}

// The message of the ProviderError that converting `text` into T throws ("" if none is thrown).
template <class T>
std::string error_of(std::string_view text) {
  try {
    from_json_checked<T>(parse(text));
  } catch (const ProviderError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ProviderError for " << text;
  return {};
}

std::string profile_error(std::string_view text) {
  return error_of<UserProfile>(text);
}
std::string order_error(std::string_view text) {
  return error_of<Order>(text);
}

// A valid Order as JSON text, with `patch` members replacing or adding top-level ones.
std::string order_json(std::string_view patch = "{}") {
  boost::json::object order = parse(R"({
    "customer": {"name": "Ann", "age": 41, "interests": ["chess"]},
    "color": "green",
    "shipping": {"city": "Oslo", "postcode": null},
    "items": [{"sku": "A1", "quantity": 2, "price": 9.5},
              {"sku": "B2", "quantity": 1, "price": 20}],
    "counters": {"apples": 3},
    "priority": null,
    "gift": true,
    "weight": 1.25
  })")
                                  .as_object();
  const boost::json::value replacements = parse(patch);
  for (const auto& member : replacements.as_object()) order[member.key()] = member.value();
  return boost::json::serialize(order);
}

Order sample_order() {
  Order order;
  order.customer = {"John Doe", 30, {"AI", "Python", "Machine Learning"}};
  order.color = Color::blue;
  order.shipping = shop::Address{"Bergen", "5003"};
  order.items = {{"A1", 2, 9.5}, {"B2", 1, 20.0}};
  order.counters = {{"apples", 3}, {"pears", -4}};
  order.priority = 7;
  order.gift = true;
  order.weight = 1.25f;
  return order;
}

// ---- schema ----------------------------------------------------------------------------------

TEST(TypedOutputSchema, UserProfileMatchesGolden) {
  EXPECT_EQ(boost::json::value(json_schema_for<UserProfile>()), parse(R"({
    "type": "object",
    "properties": {
      "name": {"type": "string"},
      "age": {"type": "integer"},
      "interests": {"type": "array", "items": {"type": "string"}}
    },
    "required": ["name", "age", "interests"],
    "additionalProperties": false
  })"));
}

TEST(TypedOutputSchema, PropertiesFollowDeclarationOrder) {
  const boost::json::object schema = json_schema_for<UserProfile>();
  std::vector<std::string> keys;
  for (const auto& property : schema.at("properties").as_object()) {
    keys.emplace_back(property.key());
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"name", "age", "interests"}));
}

TEST(TypedOutputSchema, NestedOrderMatchesGolden) {
  EXPECT_EQ(boost::json::value(json_schema_for<Order>()), parse(R"({
    "type": "object",
    "properties": {
      "customer": {
        "type": "object",
        "properties": {
          "name": {"type": "string"},
          "age": {"type": "integer"},
          "interests": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["name", "age", "interests"],
        "additionalProperties": false
      },
      "color": {"type": "string", "enum": ["red", "green", "blue"]},
      "shipping": {"anyOf": [
        {
          "type": "object",
          "properties": {
            "city": {"type": "string"},
            "postcode": {"anyOf": [{"type": "string"}, {"type": "null"}]}
          },
          "required": ["city", "postcode"],
          "additionalProperties": false
        },
        {"type": "null"}
      ]},
      "items": {"type": "array", "items": {
        "type": "object",
        "properties": {
          "sku": {"type": "string"},
          "quantity": {"type": "integer"},
          "price": {"type": "number"}
        },
        "required": ["sku", "quantity", "price"],
        "additionalProperties": false
      }},
      "counters": {"type": "object", "additionalProperties": {"type": "integer"}},
      "priority": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
      "gift": {"type": "boolean"},
      "weight": {"type": "number"}
    },
    "required": ["customer", "color", "shipping", "items", "counters", "priority", "gift",
                 "weight"],
    "additionalProperties": false
  })"));
}

TEST(TypedOutputSchema, DerivedStructListsBaseMembersFirst) {
  const boost::json::object schema = json_schema_for<shop::Derived>();
  EXPECT_EQ(schema.at("required"), parse(R"(["id", "active"])"));
  EXPECT_EQ(schema.at("properties"), parse(R"({"id": {"type": "string"},
                                              "active": {"type": "boolean"}})"));
}

TEST(TypedOutputSchema, StrictCompatibilityIsFalseOnlyWithMaps) {
  EXPECT_TRUE(llm_caching::strict_schema_compatible_v<UserProfile>);
  EXPECT_TRUE(llm_caching::strict_schema_compatible_v<shop::Node>);
  EXPECT_FALSE(llm_caching::strict_schema_compatible_v<Order>);
  EXPECT_FALSE(llm_caching::strict_schema_compatible_v<shop::Tags>);
}

TEST(TypedOutputSchema, RecursiveTypeIsAConfigurationError) {
  try {
    json_schema_for<shop::Node>();
    FAIL() << "expected ConfigurationError";
  } catch (const llm_caching::ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("Node contains itself"), std::string::npos) << e.what();
  }
}

TEST(TypedOutputSchema, NamesComeFromTheDescribedTypeOrTheTrait) {
  EXPECT_EQ(llm_caching::type_name_for<UserProfile>(), "UserProfile");
  EXPECT_EQ(llm_caching::type_name_for<Color>(), "Color");
  EXPECT_EQ(llm_caching::type_name_for<shop::Wrapper<int>>(), "Wrapper");
  EXPECT_EQ(llm_caching::type_name_for<shop::Renamed>(), "renamed_answer_v2");
  EXPECT_EQ(llm_caching::type_name_for<std::vector<int>>(), "output");
  EXPECT_EQ(llm_caching::type_name_for<int>(), "output");
}

// ---- conversion from JSON --------------------------------------------------------------------

TEST(TypedOutputRead, ReadsTheSeedProfile) {
  const UserProfile profile = from_json_checked<UserProfile>(
      parse(R"({"name":"John Doe","age":30,"interests":["AI","Python","Machine Learning"]})"));
  EXPECT_EQ(profile, (UserProfile{"John Doe", 30, {"AI", "Python", "Machine Learning"}}));
}

TEST(TypedOutputRead, ReadsNestedStructsEnumsVectorsAndMaps) {
  const Order order = from_json_checked<Order>(parse(order_json()));
  EXPECT_EQ(order.customer, (UserProfile{"Ann", 41, {"chess"}}));
  EXPECT_EQ(order.color, Color::green);
  ASSERT_TRUE(order.shipping.has_value());
  EXPECT_EQ(order.shipping->city, "Oslo");
  EXPECT_FALSE(order.shipping->postcode.has_value());
  EXPECT_EQ(order.items, (std::vector<shop::Item>{{"A1", 2, 9.5}, {"B2", 1, 20.0}}));
  EXPECT_EQ(order.counters, (std::map<std::string, std::int64_t>{{"apples", 3}}));
  EXPECT_FALSE(order.priority.has_value());
  EXPECT_TRUE(order.gift);
  EXPECT_EQ(order.weight, 1.25f);
}

TEST(TypedOutputRead, OptionalPresentNullAndAbsent) {
  EXPECT_EQ(from_json_checked<shop::Address>(parse(R"({"city":"Oslo","postcode":"0150"})")),
            (shop::Address{"Oslo", "0150"}));
  EXPECT_EQ(from_json_checked<shop::Address>(parse(R"({"city":"Oslo","postcode":null})")),
            (shop::Address{"Oslo", std::nullopt}));
  EXPECT_EQ(from_json_checked<shop::Address>(parse(R"({"city":"Oslo"})")),
            (shop::Address{"Oslo", std::nullopt}));
  EXPECT_EQ(from_json_checked<Order>(parse(order_json(R"({"priority": 3})"))).priority, 3);
}

TEST(TypedOutputRead, WholeDoubleCountsAsInteger) {
  EXPECT_EQ(from_json_checked<UserProfile>(parse(R"({"name":"a","age":30.0,"interests":[]})")).age,
            30);
}

TEST(TypedOutputRead, IntegersAtTheEdgesOfTheirTypes) {
  const shop::Widths widths = from_json_checked<shop::Widths>(
      parse(R"({"i8":-128,"u8":255,"i64":-9223372036854775808,"u64":18446744073709551615})"));
  EXPECT_EQ(widths, (shop::Widths{-128, 255, std::numeric_limits<std::int64_t>::min(),
                                  std::numeric_limits<std::uint64_t>::max()}));
}

TEST(TypedOutputRead, ParsesModelText) {
  EXPECT_EQ(llm_caching::from_json_text_checked<UserProfile>(
                R"( {"name":"Eve","age":22,"interests":[]} )"),
            (UserProfile{"Eve", 22, {}}));
}

// ---- validation failures: each names the path ------------------------------------------------

TEST(TypedOutputValidation, WrongElementTypeNamesIndex) {
  EXPECT_EQ(profile_error(R"({"name":"a","age":1,"interests":["x","y",3]})"),
            "model output does not match UserProfile: $.interests[2]: expected string, got number");
}

TEST(TypedOutputValidation, MissingField) {
  EXPECT_EQ(profile_error(R"({"name":"a","interests":[]})"),
            "model output does not match UserProfile: $.age: missing required field");
}

TEST(TypedOutputValidation, UnknownFieldIsRejected) {
  EXPECT_EQ(profile_error(R"({"name":"a","age":1,"interests":[],"nickname":"b"})"),
            "model output does not match UserProfile: $.nickname: unexpected field "
            "(allowed: name, age, interests)");
  EXPECT_EQ(profile_error(R"({"name":"a","age":1,"interests":[],"nick name":"b"})"),
            "model output does not match UserProfile: $[\"nick name\"]: unexpected field "
            "(allowed: name, age, interests)");
}

TEST(TypedOutputValidation, UnknownFieldInNestedStruct) {
  EXPECT_EQ(order_error(order_json(R"({"items":[{"sku":"A","quantity":1,"price":1,"tax":0}]})")),
            "model output does not match Order: $.items[0].tax: unexpected field "
            "(allowed: sku, quantity, price)");
}

TEST(TypedOutputValidation, RootMustBeAnObject) {
  EXPECT_EQ(profile_error(R"(["John", 30])"),
            "model output does not match UserProfile: $: expected object, got array");
}

TEST(TypedOutputValidation, NullOnlyForOptionals) {
  EXPECT_EQ(profile_error(R"({"name":null,"age":1,"interests":[]})"),
            "model output does not match UserProfile: $.name: expected string, got null");
  EXPECT_EQ(order_error(order_json(R"({"items": null})")),
            "model output does not match Order: $.items: expected array, got null");
}

TEST(TypedOutputValidation, FractionalNumberIsNotAnInteger) {
  EXPECT_EQ(profile_error(R"({"name":"a","age":30.5,"interests":[]})"),
            "model output does not match UserProfile: $.age: expected integer, got number 30.5");
}

TEST(TypedOutputValidation, BigIntegerOutOfRangeForInt32) {
  EXPECT_EQ(profile_error(R"({"name":"a","age":3000000000,"interests":[]})"),
            "model output does not match UserProfile: $.age: integer 3000000000 is out of range "
            "for int32 (-2147483648 to 2147483647)");
}

TEST(TypedOutputValidation, NegativeIntoUnsignedInVectorOfStructs) {
  EXPECT_EQ(order_error(order_json(R"({"items":[{"sku":"A","quantity":1,"price":1},
                                               {"sku":"B","quantity":-1,"price":1}]})")),
            "model output does not match Order: $.items[1].quantity: integer -1 is out of range "
            "for uint32 (0 to 4294967295)");
}

TEST(TypedOutputValidation, IntegerRangesOfEveryWidth) {
  const std::string valid = R"({"i8":0,"u8":0,"i64":0,"u64":0})";
  auto with = [&](std::string_view patch) {
    boost::json::object object = parse(valid).as_object();
    const boost::json::value replacements = parse(patch);
    for (const auto& member : replacements.as_object()) object[member.key()] = member.value();
    return error_of<shop::Widths>(boost::json::serialize(object));
  };
  EXPECT_EQ(with(R"({"i8":128})"),
            "model output does not match Widths: $.i8: integer 128 is out of range for int8 "
            "(-128 to 127)");
  EXPECT_EQ(with(R"({"u8":256})"),
            "model output does not match Widths: $.u8: integer 256 is out of range for uint8 "
            "(0 to 255)");
  EXPECT_EQ(with(R"({"i64":9223372036854775808})"),
            "model output does not match Widths: $.i64: integer 9223372036854775808 is out of "
            "range for int64 (-9223372036854775808 to 9223372036854775807)");
  // Beyond 64 bits the parser yields a double; it is still an integer, just too big.
  EXPECT_EQ(with(R"({"u64":100000000000000000000})"),
            "model output does not match Widths: $.u64: integer 1e+20 is out of range for uint64 "
            "(0 to 18446744073709551615)");
}

TEST(TypedOutputValidation, EnumByName) {
  EXPECT_EQ(order_error(order_json(R"({"color":"purple"})")),
            "model output does not match Order: $.color: expected one of \"red\", \"green\", "
            "\"blue\", got \"purple\"");
  EXPECT_EQ(order_error(order_json(R"({"color":"Red"})")),
            "model output does not match Order: $.color: expected one of \"red\", \"green\", "
            "\"blue\", got \"Red\"");
  EXPECT_EQ(order_error(order_json(R"({"color":"red\u0000x"})")),
            "model output does not match Order: $.color: expected one of \"red\", \"green\", "
            "\"blue\", got \"red\\u0000x\"");
  EXPECT_EQ(order_error(order_json(R"({"color":1})")),
            "model output does not match Order: $.color: expected string, got number");
}

TEST(TypedOutputValidation, MapValuesAndKeys) {
  EXPECT_EQ(order_error(order_json(R"({"counters":{"apples":"3"}})")),
            "model output does not match Order: $.counters.apples: expected integer, got string");
  EXPECT_EQ(order_error(order_json(R"({"counters":{"ripe pears":1.5}})")),
            "model output does not match Order: $.counters[\"ripe pears\"]: expected integer, "
            "got number 1.5");
  EXPECT_EQ(order_error(order_json(R"({"counters":[]})")),
            "model output does not match Order: $.counters: expected object, got array");
}

TEST(TypedOutputValidation, NestedOptionalStruct) {
  EXPECT_EQ(order_error(order_json(R"({"shipping":{"postcode":"1"}})")),
            "model output does not match Order: $.shipping.city: missing required field");
  EXPECT_EQ(order_error(order_json(R"({"shipping":{"city":"Oslo","postcode":5}})")),
            "model output does not match Order: $.shipping.postcode: expected string, got number");
  EXPECT_EQ(order_error(order_json(R"({"shipping":"Oslo"})")),
            "model output does not match Order: $.shipping: expected object, got string");
}

TEST(TypedOutputValidation, BooleansAndFloats) {
  EXPECT_EQ(order_error(order_json(R"({"gift":"true"})")),
            "model output does not match Order: $.gift: expected boolean, got string");
  EXPECT_EQ(order_error(order_json(R"({"gift":1})")),
            "model output does not match Order: $.gift: expected boolean, got number");
  EXPECT_EQ(order_error(order_json(R"({"weight":1e39})")),
            "model output does not match Order: $.weight: number is out of range for float");
  EXPECT_EQ(order_error(order_json(R"({"weight":"heavy"})")),
            "model output does not match Order: $.weight: expected number, got string");
}

TEST(TypedOutputValidation, ErrorIsAnOutputValidationProviderError) {
  const std::string text = R"({"name":"a","age":"old","interests":[]})";
  try {
    from_json_checked<UserProfile>(parse(text));
    FAIL() << "expected ProviderError";
  } catch (const ProviderError& e) {
    EXPECT_EQ(e.http_status(), 200);
    EXPECT_EQ(e.error_type(), "output_validation");
    EXPECT_EQ(e.body_excerpt(), text);
  }
}

TEST(TypedOutputValidation, ExcerptIsCappedAt200Bytes) {
  const std::string long_name(500, 'x');
  try {
    from_json_checked<UserProfile>(parse(R"({"name":")" + long_name + R"(","age":true})"));
    FAIL() << "expected ProviderError";
  } catch (const ProviderError& e) {
    EXPECT_EQ(e.body_excerpt().size(), 200u);
    EXPECT_EQ(e.body_excerpt(), R"({"name":")" + std::string(188, 'x') + "...");
    EXPECT_NE(std::string(e.what()).find("$.age: expected integer, got boolean"),
              std::string::npos);
  }
}

TEST(TypedOutputValidation, TextThatIsNotJson) {
  try {
    llm_caching::from_json_text_checked<UserProfile>(R"({"name": "a", "age": 3)");
    FAIL() << "expected ProviderError";
  } catch (const ProviderError& e) {
    EXPECT_EQ(e.error_type(), "output_validation");
    EXPECT_EQ(std::string(e.what()),
              "model output is not valid JSON for UserProfile: incomplete JSON at offset 22");
    EXPECT_EQ(e.body_excerpt(), R"({"name": "a", "age": 3)");
  }
  try {
    llm_caching::from_json_text_checked<UserProfile>(R"({"name":"a","age":1,"interests":[]}x)");
    FAIL() << "expected ProviderError";
  } catch (const ProviderError& e) {
    EXPECT_EQ(std::string(e.what()),
              "model output is not valid JSON for UserProfile: extra data at offset 35");
  }
}

// ---- conversion to JSON ----------------------------------------------------------------------

TEST(TypedOutputWrite, SeedProfileMatchesPydanticModelDumpJson) {
  const UserProfile profile{"John Doe", 30, {"AI", "Python", "Machine Learning"}};
  EXPECT_EQ(to_json_string(profile),
            R"({"name":"John Doe","age":30,"interests":["AI","Python","Machine Learning"]})");
}

TEST(TypedOutputWrite, OrderTextIsDeterministicAndReadable) {
  EXPECT_EQ(to_json_string(sample_order()),
            R"({"customer":{"name":"John Doe","age":30,"interests":["AI","Python",)"
            R"("Machine Learning"]},"color":"blue","shipping":{"city":"Bergen","postcode":"5003"},)"
            R"("items":[{"sku":"A1","quantity":2,"price":9.5},{"sku":"B2","quantity":1,)"
            R"("price":20.0}],"counters":{"apples":3,"pears":-4},"priority":7,"gift":true,)"
            R"("weight":1.25})");
}

TEST(TypedOutputWrite, EmptyOptionalIsNullAndStringsAreEscaped) {
  const shop::Address address{"Zürich \"centre\"\n", std::nullopt};
  EXPECT_EQ(to_json_string(address), R"({"city":"Zürich \"centre\"\n","postcode":null})");
}

TEST(TypedOutputWrite, UnorderedMapKeysAreSorted) {
  shop::Tags tags;
  for (const char* key : {"delta", "alpha", "charlie", "bravo", "echo"}) {
    tags.flags[key] = {true, false};
  }
  EXPECT_EQ(to_json_string(tags),
            R"({"flags":{"alpha":[true,false],"bravo":[true,false],"charlie":[true,false],)"
            R"("delta":[true,false],"echo":[true,false]}})");
}

TEST(TypedOutputWrite, NonFiniteNumberIsAnErrorNamingThePath) {
  Order order = sample_order();
  order.items[1].price = std::nan("");
  try {
    to_json_value(order);
    FAIL() << "expected Error";
  } catch (const llm_caching::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "to_json_value: $.items[1].price: NaN and infinity have no JSON representation");
  }
}

TEST(TypedOutputWrite, UnnamedEnumValueIsAnError) {
  Order order = sample_order();
  order.color = static_cast<Color>(7);
  try {
    to_json_value(order);
    FAIL() << "expected Error";
  } catch (const llm_caching::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "to_json_value: $.color: value 7 of enum Color has no described name");
  }
}

// ---- round trips -----------------------------------------------------------------------------

TEST(TypedOutputRoundTrip, OrderSurvivesValueAndText) {
  const Order order = sample_order();
  EXPECT_EQ(from_json_checked<Order>(to_json_value(order)), order);
  EXPECT_EQ(llm_caching::from_json_text_checked<Order>(to_json_string(order)), order);
}

TEST(TypedOutputRoundTrip, EmptyContainersAndAbsentOptionals) {
  Order order;
  EXPECT_EQ(from_json_checked<Order>(to_json_value(order)), order);
}

TEST(TypedOutputRoundTrip, ExtremeIntegersAndVectorBool) {
  const shop::Widths widths{-128, 255, std::numeric_limits<std::int64_t>::min(),
                            std::numeric_limits<std::uint64_t>::max()};
  EXPECT_EQ(from_json_checked<shop::Widths>(to_json_value(widths)), widths);
  shop::Tags tags;
  tags.flags["x"] = {false, true, true};
  tags.flags["empty"] = {};
  EXPECT_EQ(from_json_checked<shop::Tags>(to_json_value(tags)), tags);
}

TEST(TypedOutputRoundTrip, RecursiveValuesConvertEvenWithoutASchema) {
  const shop::Node tree{"root", {{"a", {}}, {"b", {{"b1", {}}}}}};
  EXPECT_EQ(to_json_string(tree), R"({"label":"root","children":[{"label":"a","children":[]},)"
                                  R"({"label":"b","children":[{"label":"b1","children":[]}]}]})");
  EXPECT_EQ(from_json_checked<shop::Node>(to_json_value(tree)), tree);
}

TEST(TypedOutputRoundTrip, DerivedStructIncludesBaseMembers) {
  shop::Derived derived;
  derived.id = "u-1";
  derived.active = true;
  EXPECT_EQ(to_json_string(derived), R"({"id":"u-1","active":true})");
  const shop::Derived back = from_json_checked<shop::Derived>(to_json_value(derived));
  EXPECT_EQ(back.id, "u-1");
  EXPECT_TRUE(back.active);
}

}  // namespace

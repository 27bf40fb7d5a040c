// Header controls, routes, caller credentials, tenant scopes and error bodies of the gateway:
// pure functions, no sockets.
#include "gateway/controls.hpp"
#include "gateway/limits.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace {

using namespace llm_caching;
using namespace llm_caching::gateway;
using namespace std::chrono_literals;

CacheMode mode_for(Headers headers) {
  return parse_cache_controls(headers).mode;
}

TEST(GatewayControls, NoHeadersUseTheCache) {
  const CacheControls c = parse_cache_controls({});
  EXPECT_EQ(c.mode, CacheMode::use);
  EXPECT_FALSE(c.ttl);
  EXPECT_EQ(c.namespace_, "");
  EXPECT_FALSE(c.max_wait);
}

TEST(GatewayControls, EachCacheValueMapsToAMode) {
  EXPECT_EQ(mode_for({{"x-llm-cache", "no-cache"}}), CacheMode::refresh);
  EXPECT_EQ(mode_for({{"x-llm-cache", "refresh"}}), CacheMode::refresh);
  EXPECT_EQ(mode_for({{"x-llm-cache", "no-store"}}), CacheMode::read_only);
  EXPECT_EQ(mode_for({{"x-llm-cache", "only-if-cached"}}), CacheMode::replay_only);
  EXPECT_EQ(mode_for({{"x-llm-cache", "No-Cache, no-store"}}), CacheMode::bypass);
}

TEST(GatewayControls, CacheControlIsHonouredAndOtherDirectivesIgnored) {
  EXPECT_EQ(mode_for({{"cache-control", "no-cache"}}), CacheMode::refresh);
  EXPECT_EQ(mode_for({{"cache-control", "max-age=0, no-store"}}), CacheMode::read_only);
  EXPECT_EQ(mode_for({{"cache-control", "no-store"}, {"x-llm-cache", "no-cache"}}),
            CacheMode::bypass);
  EXPECT_EQ(mode_for({{"cache-control", "max-age=60"}}), CacheMode::use);
}

TEST(GatewayControls, UnknownOrContradictoryValuesAreRefused) {
  EXPECT_THROW(mode_for({{"x-llm-cache", "sometimes"}}), BadRequest);
  EXPECT_THROW(mode_for({{"x-llm-cache", "only-if-cached, no-cache"}}), BadRequest);
}

TEST(GatewayControls, TtlNamespaceTaskAndRetryBudget) {
  const CacheControls c = parse_cache_controls({{"x-llm-cache-ttl", "3600"},
                                                {"x-llm-cache-namespace", "tests.v2_a-b"},
                                                {"x-llm-task", "summarise docs"},
                                                {"x-llm-max-wait-ms", "250"}});
  EXPECT_EQ(c.ttl, std::chrono::milliseconds(3600s));
  EXPECT_EQ(c.namespace_, "tests.v2_a-b");
  EXPECT_EQ(c.task, "summarise docs");
  EXPECT_EQ(c.max_wait, 250ms);
}

TEST(GatewayControls, BadValuesNameTheHeader) {
  for (const auto& [name, value] : Headers{{"x-llm-cache-ttl", "0"},
                                           {"x-llm-cache-ttl", "-5"},
                                           {"x-llm-cache-ttl", "1h"},
                                           {"x-llm-cache-namespace", "a:b"},
                                           {"x-llm-cache-namespace", std::string(65, 'a')},
                                           {"x-llm-task", "tab\there"},
                                           {"x-llm-max-wait-ms", "3600001"},
                                           {"x-llm-max-wait-ms", "soon"},
                                           {"x-llm-cache-coalesce", "maybe"}}) {
    try {
      parse_cache_controls({{name, value}});
      ADD_FAILURE() << name << ": " << value << " was accepted";
    } catch (const BadRequest& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

TEST(GatewayControls, CacheStatusSaysWhatHappened) {
  EXPECT_EQ(cache_status(CacheMode::use, true), "HIT");
  EXPECT_EQ(cache_status(CacheMode::use, false), "MISS");
  EXPECT_EQ(cache_status(CacheMode::read_only, false), "MISS");
  EXPECT_EQ(cache_status(CacheMode::refresh, false), "BYPASS");
  EXPECT_EQ(cache_status(CacheMode::bypass, false), "BYPASS");
  EXPECT_EQ(cache_status(CacheMode::use, false, true), "COALESCED");
  EXPECT_EQ(cache_status(CacheMode::use, true, false, true), "STALE");
  EXPECT_EQ(cache_status(CacheMode::use, true, false), "HIT");
}

TEST(GatewayControls, CoalesceCanBeSwitchedOffPerRequest) {
  EXPECT_TRUE(parse_cache_controls({}).coalesce);
  EXPECT_FALSE(parse_cache_controls({{"x-llm-cache-coalesce", "off"}}).coalesce);
  EXPECT_FALSE(parse_cache_controls({{"x-llm-cache-coalesce", "OFF"}}).coalesce);
  EXPECT_TRUE(parse_cache_controls({{"x-llm-cache-coalesce", "on"}}).coalesce);
}

TEST(GatewayControls, StalePoliciesComeFromCacheControl) {
  using std::chrono::seconds;
  const CacheControls none = parse_cache_controls({{"cache-control", "max-age=5"}});
  EXPECT_EQ(none.stale_while_revalidate, seconds(0));
  EXPECT_EQ(none.stale_if_error, seconds(0));
  const CacheControls both =
      parse_cache_controls({{"cache-control", "stale-while-revalidate=60, Stale-If-Error=300"}});
  EXPECT_EQ(both.stale_while_revalidate, seconds(60));
  EXPECT_EQ(both.stale_if_error, seconds(300));
  EXPECT_EQ(both.mode, CacheMode::use);
  for (const char* bad :
       {"stale-if-error=soon", "stale-while-revalidate=-1", "stale-if-error=99999999999"}) {
    try {
      parse_cache_controls({{"cache-control", bad}});
      ADD_FAILURE() << bad << " was accepted";
    } catch (const BadRequest& e) {
      EXPECT_NE(std::string(e.what()).find("stale-"), std::string::npos) << e.what();
    }
  }
}

TEST(GatewayRoutes, ProviderRoutes) {
  Route r = match_route("POST", "/v1/chat/completions");
  EXPECT_EQ(r.kind, RouteKind::llm);
  EXPECT_EQ(r.provider, Provider::openai);
  r = match_route("POST", "/v1/messages?beta=true");
  EXPECT_EQ(r.kind, RouteKind::llm);
  EXPECT_EQ(r.provider, Provider::anthropic);
  r = match_route("POST", "/v1beta/models/gemini-2.0-flash:generateContent");
  EXPECT_EQ(r.kind, RouteKind::llm);
  EXPECT_EQ(r.provider, Provider::gemini);
  EXPECT_EQ(r.model, "gemini-2.0-flash");
  EXPECT_FALSE(r.gemini_stream);
  r = match_route("POST", "/v1beta/models/gemini%2B1:streamGenerateContent?alt=sse&key=SECRET");
  EXPECT_EQ(r.model, "gemini+1");
  EXPECT_TRUE(r.gemini_stream);
  EXPECT_TRUE(r.gemini_sse);
  EXPECT_EQ(r.query_key, "SECRET");
}

struct RouteCase {
  std::string_view method;
  std::string_view target;
  RouteKind kind;
};

void expect_route_kinds(std::initializer_list<RouteCase> cases) {
  for (const RouteCase& c : cases) {
    EXPECT_EQ(match_route(c.method, c.target).kind, c.kind) << c.method << " " << c.target;
  }
}

TEST(GatewayRoutes, OtherRoutesAndMisses) {
  expect_route_kinds({
      {"GET", "/v1/models", RouteKind::models},
      {"GET", "/healthz", RouteKind::healthz},
      {"GET", "/metrics", RouteKind::metrics},
      {"GET", "/v1/chat/completions", RouteKind::method_not_allowed},
      {"POST", "/v2/whatever", RouteKind::not_found},
      {"POST", "not a target", RouteKind::not_found},
      // The further cached APIs.
      {"POST", "/v1/responses", RouteKind::llm},
      {"POST", "/responses", RouteKind::llm},
      {"GET", "/v1/responses", RouteKind::method_not_allowed},
      {"POST", "/v1/completions", RouteKind::llm},
      {"POST", "/v1/embeddings", RouteKind::embeddings},
      {"POST", "/v1/moderations", RouteKind::llm},
      {"POST", "/v1/messages/count_tokens", RouteKind::llm},
      {"POST", "/v1beta/models/gemini-2.0-flash:countTokens", RouteKind::llm},
      // Everything else under a provider's prefix is passed through uncached.
      {"POST", "/v1beta/models/x:deleteEverything", RouteKind::passthrough},
      {"POST", "/v1beta/models/:generateContent", RouteKind::passthrough},
      {"GET", "/v1beta/models/gemini-2.0-flash", RouteKind::passthrough},
      {"POST", "/v1/files", RouteKind::passthrough},
      {"GET", "/v1/responses/resp_1?include=x", RouteKind::passthrough},
      {"DELETE", "/v1/files/file-1", RouteKind::passthrough},
      {"POST", "/upload/v1beta/files", RouteKind::passthrough},
  });
  const Route count = match_route("POST", "/v1/messages/count_tokens");
  EXPECT_EQ(count.provider, Provider::anthropic);
  EXPECT_EQ(count.api, llm_caching::Api::count_tokens);
  EXPECT_EQ(match_route("POST", "/v1/moderations").model, "omni-moderation-latest");
  EXPECT_EQ(match_route("POST", "/v1beta/models/g:countTokens").api,
            llm_caching::Api::count_tokens);
  EXPECT_EQ(match_route("POST", "/upload/v1beta/files?key=K").query_key, "K");
  EXPECT_EQ(match_route("POST", "/v1beta/nothing").provider, Provider::gemini);
}

TEST(GatewayRoutes, PlainAndEncodedTargetsRouteAlike) {
  // Plain targets skip the URL parser; encoded ones, queries and invalid ones take it.
  expect_route_kinds({
      {"POST", "/v1/chat%2Fcompletions", RouteKind::llm},
      {"POST", "/chat/completions?x=1", RouteKind::llm},
      {"POST", "/v1/chat/completions/", RouteKind::passthrough},
      {"POST", "/v1/chat/completions%", RouteKind::not_found},
      {"POST", "/v1/chat/completions\\x", RouteKind::not_found},
      {"POST", "/v1/chat/completions#x", RouteKind::not_found},
  });
  EXPECT_EQ(match_route("POST", "/v1/%6Dessages").provider, Provider::anthropic);
  const Route plain = match_route("POST", "/v1beta/models/gemini-2.0-flash:streamGenerateContent");
  EXPECT_EQ(plain.kind, RouteKind::llm);
  EXPECT_EQ(plain.model, "gemini-2.0-flash");
  EXPECT_TRUE(plain.gemini_stream);
  EXPECT_FALSE(plain.gemini_sse);
  EXPECT_TRUE(plain.query_key.empty());
}

TEST(GatewayKeyMaterial, HeadersThatShapeTheAnswerAreNormalised) {
  EXPECT_EQ(answer_shaping_headers({}), "");
  EXPECT_EQ(answer_shaping_headers({{"content-type", "application/json"}, {"x-api-key", "k"}}), "");
  EXPECT_EQ(answer_shaping_headers({{"anthropic-version", "2023-06-01"}}), "");
  EXPECT_EQ(answer_shaping_headers({{"anthropic-version", "2024-10-22"}}),
            "anthropic-version=2024-10-22");
  const std::string both = answer_shaping_headers({{"anthropic-beta", "b-2, a-1"},
                                                   {"openai-beta", "assistants=v2"},
                                                   {"anthropic-beta", "a-1,,c-3 "}});
  EXPECT_EQ(both, "anthropic-beta=a-1,b-2,c-3;openai-beta=assistants=v2");
  EXPECT_EQ(answer_shaping_headers({{"anthropic-beta", " , "}}), "");
}

TEST(GatewayCredentials, EachProviderReadsItsOwnHeader) {
  EXPECT_EQ(caller_credential(Provider::openai, {{"authorization", "Bearer sk-1"}}, ""), "sk-1");
  EXPECT_EQ(caller_credential(Provider::anthropic, {{"x-api-key", "ak"}}, ""), "ak");
  EXPECT_EQ(caller_credential(Provider::anthropic, {{"authorization", "bearer tok"}}, ""), "tok");
  EXPECT_EQ(caller_credential(Provider::gemini, {{"x-goog-api-key", "g"}}, "q"), "g");
  EXPECT_EQ(caller_credential(Provider::gemini, {}, "q"), "q");
  EXPECT_EQ(caller_credential(Provider::openai, {}, ""), "");
}

TEST(GatewayCredentials, ScopesSeparateKeysWithoutRevealingThem) {
  const std::string a = tenant_scope("sk-alpha");
  const std::string b = tenant_scope("sk-beta");
  EXPECT_NE(a, b);
  EXPECT_EQ(a, tenant_scope("sk-alpha"));
  EXPECT_EQ(a.find("alpha"), std::string::npos);
  EXPECT_EQ(a.size(), 4u + 32u);
  EXPECT_EQ(tenant_scope(""), "anonymous");
}

TEST(GatewayErrors, BodiesUseEachProvidersShape) {
  auto openai = boost::json::parse(error_body(Provider::openai, 413, "too big")).as_object();
  EXPECT_EQ(openai.at("error").at("message"), "too big");
  EXPECT_EQ(openai.at("error").at("type"), "invalid_request_error");
  auto anthropic = boost::json::parse(error_body(Provider::anthropic, 404, "nope")).as_object();
  EXPECT_EQ(anthropic.at("type"), "error");
  EXPECT_EQ(anthropic.at("error").at("type"), "not_found_error");
  auto gemini = boost::json::parse(error_body(Provider::gemini, 504, "slow")).as_object();
  EXPECT_EQ(gemini.at("error").at("code"), 504);
  EXPECT_EQ(gemini.at("error").at("status"), "DEADLINE_EXCEEDED");
}

TEST(GatewayErrors, DollarsAreExact) {
  EXPECT_EQ(format_usd(0), "0");
  EXPECT_EQ(format_usd(125'000), "0.000125");
  EXPECT_EQ(format_usd(2'500'000'000), "2.5");
  EXPECT_EQ(format_usd(-1), "-0.000000001");
  EXPECT_EQ(format_usd(1'000'000'000), "1");
  EXPECT_EQ(format_usd(12'345'678'901), "12.345678901");
  EXPECT_EQ(format_usd(100'000'000), "0.1");
  EXPECT_EQ(format_usd(-2'050'000'000), "-2.05");
  EXPECT_EQ(format_usd(INT64_MAX), "9223372036.854775807");
  EXPECT_EQ(format_usd(INT64_MIN), "-9223372036.854775808");
}

}  // namespace

namespace {

// Issue 31, finding 1: a forwarded `api-key` header must choose the partition too.
TEST(GatewayCredentials, ForwardedCredentialHeadersChooseThePartition) {
  const Headers azure_a = {{"api-key", "AZ-A"}};
  const Headers azure_b = {{"api-key", "AZ-B"}};
  EXPECT_NE(tenant_scope(caller_identity(Provider::openai, azure_a, "")),
            tenant_scope(caller_identity(Provider::openai, azure_b, "")));
  EXPECT_NE(tenant_scope(caller_identity(Provider::openai, azure_a, "")), "anonymous");
  // With a standard key as well, the pair is the identity; alone, the key is (keys unchanged).
  const Headers both = {{"authorization", "Bearer sk-1"}, {"api-key", "AZ-A"}};
  EXPECT_NE(caller_identity(Provider::openai, both, ""), "sk-1");
  EXPECT_EQ(caller_identity(Provider::openai, {{"authorization", "Bearer sk-1"}}, ""), "sk-1");
  EXPECT_EQ(caller_identity(Provider::openai, {}, ""), "");
}

// Issue 31, finding 6: values are escaped, so one header cannot pass for two.
TEST(GatewayKeyMaterial, NoTwoHeaderSetsShareTheirKeyMaterial) {
  const std::string smuggled =
      answer_shaping_headers({{"anthropic-beta", "a;anthropic-version=2024-01-01"}});
  const std::string honest =
      answer_shaping_headers({{"anthropic-beta", "a"}, {"anthropic-version", "2024-01-01"}});
  EXPECT_NE(smuggled, honest);
  EXPECT_EQ(smuggled, "anthropic-beta=a%3Banthropic-version=2024-01-01");
  EXPECT_NE(answer_shaping_headers({{"openai-beta", "x%3By"}}),
            answer_shaping_headers({{"openai-beta", "x;y"}}));
  EXPECT_EQ(answer_shaping_headers({{"openai-beta", "a\nb"}}), "openai-beta=a%0Ab");
}

TEST(GatewayLimits, ByteChargesShareOneBudget) {
  ByteBudget budget(100);
  {
    ByteCharge a(budget);
    ByteCharge b(budget);
    EXPECT_TRUE(a.hold(60));
    EXPECT_FALSE(b.hold(50));  // 110 > 100: refused, nothing taken
    EXPECT_EQ(budget.used(), 60u);
    EXPECT_TRUE(b.hold(40));
    EXPECT_FALSE(a.hold(61));  // growing past the budget keeps what was held
    EXPECT_EQ(a.held(), 60u);
    EXPECT_TRUE(a.hold(10));  // shrinking gives back
    EXPECT_EQ(budget.used(), 50u);
  }
  EXPECT_EQ(budget.used(), 0u);  // every charge gives back when it ends
}

}  // namespace

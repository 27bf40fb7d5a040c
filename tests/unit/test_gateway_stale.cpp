// Server-wide stale defaults (issue 29): the windows a request gets from the gateway's defaults
// and its own headers, why a stale answer was served (for /metrics), the config file's fields,
// and the library's defaults from the environment.
#include "agent/run.hpp"
#include "gateway/controls.hpp"
#include "gateway/metrics.hpp"
#include "gateway/serve_config.hpp"
#include "gateway/stale.hpp"
#include "llm_caching/runtime.hpp"

#include "llm_caching/errors.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>

namespace {

using namespace llm_caching;
using namespace llm_caching::gateway;
using namespace std::chrono_literals;

const StaleWindows kDefaults{.stale_while_revalidate = 30s, .stale_if_error = 3600s};

TEST(GatewayStale, RequestsWithoutDirectivesGetTheDefaults) {
  const CacheControls plain = parse_cache_controls({}, kDefaults);
  EXPECT_EQ(plain.stale_while_revalidate, 30s);
  EXPECT_EQ(plain.stale_if_error, 3600s);
  // Other Cache-Control directives leave them alone.
  const CacheControls other = parse_cache_controls({{"cache-control", "max-age=5"}}, kDefaults);
  EXPECT_EQ(other.stale_if_error, 3600s);
  // Without defaults (the unit of before): off.
  EXPECT_EQ(parse_cache_controls({}).stale_if_error, 0s);
}

TEST(GatewayStale, ARequestNarrowsOrWidensEachWindow) {
  const CacheControls narrow =
      parse_cache_controls({{"cache-control", "stale-if-error=60"}}, kDefaults);
  EXPECT_EQ(narrow.stale_if_error, 60s);
  EXPECT_EQ(narrow.stale_while_revalidate, 30s);  // the other keeps its default
  const CacheControls wide =
      parse_cache_controls({{"cache-control", "stale-while-revalidate=86400"}}, kDefaults);
  EXPECT_EQ(wide.stale_while_revalidate, 86400s);
  const CacheControls off_one =
      parse_cache_controls({{"cache-control", "stale-while-revalidate=0"}}, kDefaults);
  EXPECT_EQ(off_one.stale_while_revalidate, 0s);
  EXPECT_EQ(off_one.stale_if_error, 3600s);
}

TEST(GatewayStale, NoStaleAndMaxStaleZeroTurnBothOff) {
  for (const Headers& headers :
       {Headers{{"x-llm-cache", "no-stale"}}, Headers{{"x-llm-cache", "no-store, NO-STALE"}},
        Headers{{"cache-control", "max-stale=0"}},
        // The cap holds whatever order the directives come in.
        Headers{{"cache-control", "max-stale=0, stale-if-error=60"}},
        Headers{{"x-llm-cache", "no-stale"}, {"cache-control", "stale-while-revalidate=60"}}}) {
    const CacheControls c = parse_cache_controls(headers, kDefaults);
    EXPECT_EQ(c.stale_while_revalidate, 0s) << headers.front().second;
    EXPECT_EQ(c.stale_if_error, 0s) << headers.front().second;
  }
  EXPECT_EQ(parse_cache_controls({{"x-llm-cache", "no-store, no-stale"}}, kDefaults).mode,
            CacheMode::read_only);
  // max-stale=N caps both windows at N seconds.
  const CacheControls capped = parse_cache_controls({{"cache-control", "max-stale=10"}}, kDefaults);
  EXPECT_EQ(capped.stale_while_revalidate, 10s);
  EXPECT_EQ(capped.stale_if_error, 10s);
}

TEST(GatewayStale, BadValuesAre400NamingTheDirective) {
  for (const char* bad : {"max-stale=soon", "max-stale=-1", "max-stale=", "stale-if-error=1e3"}) {
    try {
      parse_cache_controls({{"cache-control", bad}}, kDefaults);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const BadRequest& e) {
      const std::string name = std::string(bad).substr(0, std::string(bad).find('=') + 1);
      EXPECT_NE(std::string(e.what()).find("Cache-Control: " + name), std::string::npos)
          << e.what();
    }
  }
  try {
    parse_cache_controls({{"x-llm-cache", "stale"}}, kDefaults);
    ADD_FAILURE() << "x-llm-cache: stale was accepted";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("no-stale"), std::string::npos) << e.what();
  }
}

TEST(GatewayStale, ReasonOfAStaleAnswer) {
  const StaleWindows swr{.stale_while_revalidate = 60s, .stale_if_error = 3600s};
  // Served at once, no upstream call, inside the revalidate window: a revalidate.
  EXPECT_EQ(stale_reason(swr, 0, 5s), StaleReason::revalidate);
  EXPECT_EQ(stale_reason(swr, 0, 60s), StaleReason::revalidate);
  // Its own upstream call failed: an error, whatever the windows.
  EXPECT_EQ(stale_reason(swr, 2, 5s), StaleReason::error);
  // Past the revalidate window (served for a flight that failed): an error.
  EXPECT_EQ(stale_reason(swr, 0, 61s), StaleReason::error);
  // No revalidate window at all: only stale-if-error serves stale.
  EXPECT_EQ(stale_reason({.stale_if_error = 3600s}, 0, 1s), StaleReason::error);
}

TEST(GatewayStale, MetricsCountStaleAnswersByReason) {
  Metrics metrics;
  RequestRecord record;
  record.llm = true;
  record.outcome = Outcome::hit;
  record.stale = StaleReason::error;
  metrics.record(record);
  metrics.record(record);
  record.stale = StaleReason::revalidate;
  metrics.record(record);
  record.stale.reset();
  metrics.record(record);
  const std::string text = metrics.render();
  EXPECT_NE(text.find("# TYPE llmc_gateway_stale_served_total counter"), std::string::npos);
  EXPECT_NE(text.find("llmc_gateway_stale_served_total{reason=\"error\"} 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("llmc_gateway_stale_served_total{reason=\"revalidate\"} 1\n"),
            std::string::npos)
      << text;
}

TEST(GatewayStale, ConfigFileFields) {
  const ServeFileSettings s =
      parse_serve_config(R"({"stale_while_revalidate": 30, "stale_if_error": 86400})", "gw.json");
  EXPECT_EQ(s.stale_while_revalidate, 30);
  EXPECT_EQ(s.stale_if_error, 86400);
  EXPECT_FALSE(parse_serve_config("{}", "gw.json").stale_if_error);
  for (const auto& [text, message] : {
           std::pair{R"({"stale_if_error": -1})",
                     "config file gw.json: field \"stale_if_error\": must be from 0 to 31622400"},
           std::pair{R"({"stale_while_revalidate": "1h"})",
                     "config file gw.json: field \"stale_while_revalidate\": expected a whole "
                     "number"},
       }) {
    try {
      parse_serve_config(text, "gw.json");
      ADD_FAILURE() << text << " was accepted";
    } catch (const ConfigurationError& e) {
      EXPECT_EQ(std::string(e.what()), message);
    }
  }
}

TEST(LibraryStaleEnvironment, ReadFromTheEnvironment) {
  {
    llmc_test::ScopedEnv swr("LLM_CACHE_STALE_WHILE_REVALIDATE", std::nullopt);
    llmc_test::ScopedEnv sie("LLM_CACHE_STALE_IF_ERROR", std::nullopt);
    const RuntimeOptions unset = RuntimeOptions::from_environment();
    EXPECT_EQ(unset.stale_while_revalidate, 0s);
    EXPECT_EQ(unset.stale_if_error, 0s);
  }
  llmc_test::ScopedEnv swr("LLM_CACHE_STALE_WHILE_REVALIDATE", "30");
  llmc_test::ScopedEnv sie("LLM_CACHE_STALE_IF_ERROR", "3600");
  const RuntimeOptions set = RuntimeOptions::from_environment();
  EXPECT_EQ(set.stale_while_revalidate, 30s);
  EXPECT_EQ(set.stale_if_error, 3600s);
}

TEST(LibraryStaleEnvironment, BadValuesAreConfigurationErrorsNamingTheVariable) {
  for (const char* variable : {"LLM_CACHE_STALE_WHILE_REVALIDATE", "LLM_CACHE_STALE_IF_ERROR"}) {
    for (const char* bad : {"1h", "-5", "99999999999", " 60"}) {
      llmc_test::ScopedEnv env(variable, bad);
      try {
        RuntimeOptions::from_environment();
        ADD_FAILURE() << variable << "=" << bad << " was accepted";
      } catch (const ConfigurationError& e) {
        EXPECT_NE(std::string(e.what()).find(variable), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("whole seconds"), std::string::npos) << e.what();
      }
    }
  }
}

}  // namespace

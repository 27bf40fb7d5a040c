// Redis URL forms (docs/REDIS.md): every accepted form, redis-py's query parameters, and clear
// ConfigurationErrors (password masked) for malformed ones.
#include "cache/cache_url.hpp"
#include "llm_caching/errors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace llm_caching::cache {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

RedisOptions parse(const std::string& url) {
  return std::get<RedisOptions>(parse_cache_url(url));
}

std::string error_of(const std::string& url) {
  try {
    parse_cache_url(url);
  } catch (const ConfigurationError& e) {
    return e.what();
  }
  return "no ConfigurationError";
}

TEST(RedisUrl, HostOnlyTakesTheDefaults) {
  const RedisOptions o = parse("redis://cache.local");
  ASSERT_EQ(o.endpoints.size(), 1u);
  EXPECT_EQ(o.endpoints[0].host, "cache.local");
  EXPECT_EQ(o.endpoints[0].port, 6379);
  EXPECT_EQ(o.db, 0);
  EXPECT_TRUE(o.username.empty());
  EXPECT_TRUE(o.password.empty());
  EXPECT_FALSE(o.tls.enabled);
  EXPECT_TRUE(o.sentinel_master.empty());
}

TEST(RedisUrl, UserPasswordPortAndDatabase) {
  const RedisOptions o = parse("redis://app:p%40ss%3Aw@10.0.0.5:6380/7");
  EXPECT_EQ(o.username, "app");
  EXPECT_EQ(o.password, "p@ss:w");
  EXPECT_EQ(o.endpoints[0].host, "10.0.0.5");
  EXPECT_EQ(o.endpoints[0].port, 6380);
  EXPECT_EQ(o.db, 7);
  EXPECT_EQ(o.masked_url, "redis://app:***@10.0.0.5:6380/7");
}

TEST(RedisUrl, PasswordOnlyIsTheDefaultUser) {
  const RedisOptions o = parse("redis://:secret@h");
  EXPECT_TRUE(o.username.empty());
  EXPECT_EQ(o.password, "secret");
}

TEST(RedisUrl, UnencodedAtInPasswordEndsAtTheLastAt) {
  EXPECT_EQ(parse("redis://u:p@ss@h:1/2").password, "p@ss");
}

TEST(RedisUrl, Ipv6HostsInBrackets) {
  const RedisOptions o = parse("redis://[::1]:6390/1");
  EXPECT_EQ(o.endpoints[0].host, "::1");
  EXPECT_EQ(o.endpoints[0].port, 6390);
  EXPECT_EQ(parse("redis://[fe80::2]").endpoints[0].port, 6379);
  EXPECT_THAT(error_of("redis://::1:6379"), HasSubstr("brackets"));
  EXPECT_THAT(error_of("redis://[::1:6379"), HasSubstr("']'"));
}

TEST(RedisUrl, TimeoutsInSecondsAsRedisPyTakesThem) {
  RedisOptions o = parse("redis://h?socket_timeout=0.25");
  EXPECT_EQ(o.command_timeout, 250ms);
  EXPECT_EQ(o.connect_timeout, 250ms);
  o = parse("redis://h?timeout=3&socket_connect_timeout=0.5");
  EXPECT_EQ(o.command_timeout, 3000ms);
  EXPECT_EQ(o.connect_timeout, 500ms);
  EXPECT_THAT(error_of("redis://h?timeout=1&socket_timeout=2"), HasSubstr("either"));
  EXPECT_THAT(error_of("redis://h?timeout=soon"), HasSubstr("number of seconds"));
  EXPECT_THAT(error_of("redis://h?timeout=0"), HasSubstr("between"));
}

TEST(RedisUrl, PoolNameAndDbParameters) {
  const RedisOptions o = parse("redis://h?max_connections=8&client_name=worker-1&db=4");
  EXPECT_EQ(o.pool_size, 8u);
  EXPECT_EQ(o.client_name, "worker-1");
  EXPECT_EQ(o.db, 4);
  EXPECT_THAT(error_of("redis://h/1?db=2"), HasSubstr("twice"));
  EXPECT_THAT(error_of("redis://h?max_connections=0"), HasSubstr("1 to 64"));
}

TEST(RedisUrl, TlsParameters) {
  const RedisOptions o =
      parse("rediss://h:6380?ssl_ca_certs=/etc/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem");
  EXPECT_TRUE(o.tls.enabled);
  EXPECT_TRUE(o.tls.verify_peer);
  EXPECT_EQ(o.tls.ca_file, "/etc/ca.pem");
  EXPECT_EQ(o.tls.cert_file, "/c.pem");
  EXPECT_EQ(o.tls.key_file, "/k.pem");
  EXPECT_FALSE(parse("rediss://h?ssl_cert_reqs=none").tls.verify_peer);
  EXPECT_TRUE(parse("rediss://h?ssl_cert_reqs=required").tls.verify_peer);
  EXPECT_THAT(error_of("rediss://h?ssl_cert_reqs=maybe"), HasSubstr("'required' or 'none'"));
  EXPECT_THAT(error_of("redis://h?ssl_ca_certs=/ca.pem"), HasSubstr("rediss://"));
  EXPECT_THAT(error_of("rediss://h?ssl_certfile=/c.pem"), HasSubstr("together"));
}

TEST(RedisUrl, SentinelHostsMasterDatabaseAndAuth) {
  const RedisOptions o = parse("redis+sentinel://u:pw@s1:26379,s2,[::1]:26380/mymaster/3");
  ASSERT_EQ(o.endpoints.size(), 3u);
  EXPECT_EQ(o.endpoints[0].host, "s1");
  EXPECT_EQ(o.endpoints[1].port, 26379);
  EXPECT_EQ(o.endpoints[2].host, "::1");
  EXPECT_EQ(o.endpoints[2].port, 26380);
  EXPECT_EQ(o.sentinel_master, "mymaster");
  EXPECT_EQ(o.db, 3);
  EXPECT_EQ(o.sentinel_username, "u");  // the URL's credentials serve the sentinels too
  EXPECT_EQ(o.sentinel_password, "pw");
  const RedisOptions separate =
      parse("redis+sentinel://:pw@s1/m?sentinel_username=sen&sentinel_password=spw");
  EXPECT_EQ(separate.password, "pw");
  EXPECT_EQ(separate.sentinel_username, "sen");
  EXPECT_EQ(separate.sentinel_password, "spw");
  EXPECT_THAT(error_of("redis+sentinel://s1,s2"), HasSubstr("master name is missing"));
  EXPECT_THAT(error_of("redis+sentinel://s1,,s2/m"), HasSubstr("empty entry"));
  EXPECT_THAT(error_of("redis://h1,h2/0"), HasSubstr("redis+sentinel://"));
}

TEST(RedisUrl, MalformedUrlsSayWhatIsWrongAndMaskThePassword) {
  const std::pair<const char*, const char*> cases[] = {
      {"redis://:hunter2@h:0", "1 to 65535"},
      {"redis://:hunter2@h:65536", "1 to 65535"},
      {"redis://:hunter2@h:port", "1 to 65535"},
      {"redis://:hunter2@h:", "followed by a port"},
      {"redis://:hunter2@h/x", "database must be a number"},
      {"redis://:hunter2@h/1/2", "just the database number"},
      {"redis://:hunter2@", "host is missing"},
      {"redis://user@h", "needs a password"},
      {"redis://:hunter2@h?colour=blue", "unknown query parameter 'colour'"},
      {"redis://:hunter2@h?timeout", "needs a value"},
  };
  for (const auto& [url, problem] : cases) {
    const std::string message = error_of(url);
    EXPECT_THAT(message, HasSubstr(problem)) << url;
    EXPECT_THAT(message, Not(HasSubstr("hunter2"))) << url;
  }
}

TEST(RedisUrl, IdentityDiffersByPasswordWithoutContainingIt) {
  const std::string a = backend_identity(parse("redis://:first-secret@h/0"));
  const std::string b = backend_identity(parse("redis://:second-secret@h/0"));
  EXPECT_NE(a, b);
  EXPECT_THAT(a, Not(HasSubstr("first-secret")));
  EXPECT_EQ(backend_identity(parse("redis://h:6379/0")), backend_identity(parse("redis://h")));
}

}  // namespace
}  // namespace llm_caching::cache

// Cache URL parsing, environment resolution and password masking (DESIGN §5).
#include "cache/cache_url.hpp"
#include "llm_caching/errors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace llm_caching::cache {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

/// Sets (or unsets, with nullopt) an environment variable for one test, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string config_error(std::string_view url) {
  try {
    parse_cache_url(url);
  } catch (const ConfigurationError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigurationError for '" << url << "'";
  return {};
}

TEST(CacheUrl, SqliteAbsolutePathWithDefaults) {
  const auto config = parse_cache_url("sqlite:///var/cache/app/cache.db");
  const auto& sqlite = std::get<SqliteOptions>(config);
  EXPECT_EQ(sqlite.path, "/var/cache/app/cache.db");
  EXPECT_EQ(sqlite.max_bytes, kGiB);
  EXPECT_EQ(sqlite.busy_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(sqlite.mmap_bytes, 64 * kMiB);
}

TEST(CacheUrl, SqliteQueryParameters) {
  const auto config =
      parse_cache_url("sqlite:///tmp/c.db?max_bytes=64MiB&busy_timeout_ms=250&mmap_size=0");
  const auto& sqlite = std::get<SqliteOptions>(config);
  EXPECT_EQ(sqlite.path, "/tmp/c.db");
  EXPECT_EQ(sqlite.max_bytes, 64 * kMiB);
  EXPECT_EQ(sqlite.busy_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(sqlite.mmap_bytes, 0u);
  EXPECT_EQ(
      std::get<SqliteOptions>(parse_cache_url("sqlite:///tmp/c.db?mmap_size=1GiB")).mmap_bytes,
      kGiB);
}

TEST(CacheUrl, SqlitePathIsPercentDecoded) {
  const auto config = parse_cache_url("sqlite:///tmp/my%20cache.db");
  EXPECT_EQ(std::get<SqliteOptions>(config).path, "/tmp/my cache.db");
  EXPECT_THAT(config_error("sqlite:///tmp/bad%zz.db"), HasSubstr("two hex digits"));
  EXPECT_THAT(config_error("sqlite:///tmp/nul%00.db"), HasSubstr("%00"));
}

TEST(CacheUrl, SqliteSchemeIsCaseInsensitive) {
  EXPECT_EQ(std::get<SqliteOptions>(parse_cache_url("SQLite:///tmp/x.db")).path, "/tmp/x.db");
}

TEST(CacheUrl, SqliteRelativePathIsRejectedWithTheRightForm) {
  const std::string message = config_error("sqlite://relative/cache.db");
  EXPECT_THAT(message, HasSubstr("absolute"));
  EXPECT_THAT(message, HasSubstr("sqlite:///"));
}

TEST(CacheUrl, SqliteWithoutPathOrWithDirectoryIsRejected) {
  EXPECT_THAT(config_error("sqlite://"), HasSubstr("needs a file"));
  EXPECT_THAT(config_error("sqlite:///tmp/dir/"), HasSubstr("directory"));
}

TEST(CacheUrl, MemoryWithAndWithoutSize) {
  EXPECT_EQ(std::get<MemoryOptions>(parse_cache_url("memory://")).max_bytes, 64 * kMiB);
  EXPECT_EQ(std::get<MemoryOptions>(parse_cache_url("memory://?max_bytes=500MB")).max_bytes,
            500'000'000u);
  EXPECT_EQ(std::get<MemoryOptions>(parse_cache_url("memory://?max_bytes=4096")).max_bytes, 4096u);
}

TEST(CacheUrl, MemoryTakesNoHostOrPath) {
  EXPECT_THAT(config_error("memory://somewhere"), HasSubstr("no host or path"));
}

TEST(CacheUrl, UnknownQueryParametersAreNamed) {
  const std::string message = config_error("sqlite:///tmp/c.db?max_bytes=1GiB&colour=red&size=2");
  EXPECT_THAT(message, HasSubstr("colour"));
  EXPECT_THAT(message, HasSubstr("size"));
  EXPECT_THAT(message, HasSubstr("max_bytes, busy_timeout_ms, mmap_size"));
  // busy_timeout_ms belongs to SQLite only.
  EXPECT_THAT(config_error("memory://?busy_timeout_ms=5"), HasSubstr("busy_timeout_ms"));
}

TEST(CacheUrl, MalformedQueryParameters) {
  EXPECT_THAT(config_error("memory://?max_bytes"), HasSubstr("needs a value"));
  EXPECT_THAT(config_error("memory://?max_bytes=1&max_bytes=2"), HasSubstr("twice"));
  EXPECT_THAT(config_error("memory://?max_bytes=lots"), HasSubstr("not a size"));
  EXPECT_THAT(config_error("memory://?max_bytes=0"), HasSubstr("greater than 0"));
  EXPECT_THAT(config_error("memory://?max_bytes=99999999999TiB"), HasSubstr("too large"));
  EXPECT_THAT(config_error("sqlite:///tmp/c.db?busy_timeout_ms=-1"), HasSubstr("whole number"));
  EXPECT_THAT(config_error("sqlite:///tmp/c.db?busy_timeout_ms=99999999999"),
              HasSubstr("too large"));
  EXPECT_THAT(config_error("memory://#frag"), HasSubstr("fragment"));
}

TEST(CacheUrl, ByteSizeSuffixes) {
  EXPECT_EQ(parse_byte_size("123", "x"), 123u);
  EXPECT_EQ(parse_byte_size("123B", "x"), 123u);
  EXPECT_EQ(parse_byte_size("2KB", "x"), 2000u);
  EXPECT_EQ(parse_byte_size("2KiB", "x"), 2048u);
  EXPECT_EQ(parse_byte_size("64MiB", "x"), 64 * kMiB);
  EXPECT_EQ(parse_byte_size("500MB", "x"), 500'000'000u);
  EXPECT_EQ(parse_byte_size("1GiB", "x"), kGiB);
  EXPECT_EQ(parse_byte_size("1gib", "x"), kGiB);
  EXPECT_EQ(parse_byte_size("3GB", "x"), 3'000'000'000u);
  EXPECT_EQ(parse_byte_size("1TiB", "x"), 1024 * kGiB);
  EXPECT_THROW(parse_byte_size("MiB", "x"), ConfigurationError);
  EXPECT_THROW(parse_byte_size("1.5GiB", "x"), ConfigurationError);
  EXPECT_THROW(parse_byte_size("1 GiB", "x"), ConfigurationError);
  EXPECT_THROW(parse_byte_size("", "x"), ConfigurationError);
}

TEST(CacheUrl, UnknownSchemeOrGarbageListsAcceptedForms) {
  for (const char* url :
       {"postgres://db/cache", "not a url", "/abs/path.db", "://x", "sqlite:/tmp/one-slash.db"}) {
    const std::string message = config_error(url);
    EXPECT_THAT(message, AllOf(HasSubstr("sqlite:///"), HasSubstr("memory://"))) << url;
  }
}

TEST(CacheUrl, RedisClusterTakesSeedNodesCredentialsAndRedisPyParameters) {
  const auto options = std::get<RedisOptions>(parse_cache_url(
      "redis+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002/?socket_timeout=0.5&"
      "max_connections=2"));
  EXPECT_TRUE(options.cluster);
  EXPECT_FALSE(options.tls.enabled);
  ASSERT_EQ(options.endpoints.size(), 3u);
  EXPECT_EQ(options.endpoints[0].host, "10.0.0.1");
  EXPECT_EQ(options.endpoints[0].port, 7000);
  EXPECT_EQ(options.endpoints[1].port, 6379);
  EXPECT_EQ(options.endpoints[2].host, "::1");
  EXPECT_EQ(options.username, "app");
  EXPECT_EQ(options.password, "p@ss");
  EXPECT_EQ(options.command_timeout.count(), 500);
  EXPECT_EQ(options.pool_size, 2u);
  EXPECT_EQ(options.masked_url,
            "redis+cluster://app:***@10.0.0.1:7000,10.0.0.2,[::1]:7002/?socket_timeout=0.5&"
            "max_connections=2");

  const auto tls = std::get<RedisOptions>(
      parse_cache_url("rediss+cluster://h1:7000?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=none"));
  EXPECT_TRUE(tls.cluster);
  EXPECT_TRUE(tls.tls.enabled);
  EXPECT_EQ(tls.tls.ca_file, "/etc/ca.pem");
  EXPECT_FALSE(tls.tls.verify_peer);
  EXPECT_EQ(std::get<RedisOptions>(parse_cache_url("redis+cluster://h1:7000/0")).db, 0);
  EXPECT_FALSE(options.read_from_replicas);
  EXPECT_TRUE(
      std::get<RedisOptions>(parse_cache_url("redis+cluster://h1:7000?read_from_replicas=true"))
          .read_from_replicas);
  EXPECT_TRUE(
      std::get<RedisOptions>(parse_cache_url("rediss+cluster://h1:7000/?read_from_replicas=TRUE"))
          .read_from_replicas);
  EXPECT_FALSE(
      std::get<RedisOptions>(parse_cache_url("redis+cluster://h1:7000?read_from_replicas=false"))
          .read_from_replicas);
  // Reads from replicas or not: two settings, two opened backends.
  EXPECT_NE(backend_identity(parse_cache_url("redis+cluster://h1:7000?read_from_replicas=true")),
            backend_identity(parse_cache_url("redis+cluster://h1:7000")));
  // A cluster and a single server at the same address are different stores.
  EXPECT_NE(backend_identity(parse_cache_url("redis+cluster://h1:7000")),
            backend_identity(parse_cache_url("redis://h1:7000")));
}

TEST(CacheUrl, RedisClusterErrorsNameTheProblemAndMaskThePassword) {
  const auto error_of = [](const char* url) {
    const std::string message = config_error(url);
    EXPECT_THAT(message, Not(HasSubstr("hunter2"))) << url;
    EXPECT_THAT(message, HasSubstr(":***@")) << url;
    return message;
  };
  EXPECT_THAT(error_of("redis+cluster://:hunter2@h1:7000,h2:7001/?read_from_nowhere=1"),
              HasSubstr("unknown query parameter 'read_from_nowhere'"));
  EXPECT_THAT(error_of("redis+cluster://:hunter2@h1:7000/3"), HasSubstr("only database 0"));
  EXPECT_THAT(error_of("redis+cluster://:hunter2@h1:7000?db=1"), HasSubstr("only database 0"));
  EXPECT_THAT(error_of("redis+cluster://:hunter2@h1:7000,,h2"), HasSubstr("empty entry"));
  EXPECT_THAT(error_of("redis+cluster://:hunter2@h1:70000"), HasSubstr("port '70000'"));
  EXPECT_THAT(error_of("redis+cluster://:hunter2@h1:7000?ssl_ca_certs=/x"),
              HasSubstr("needs a TLS URL"));
  EXPECT_THAT(error_of("redis+cluster://:hunter2@/"), HasSubstr("host is missing"));
  EXPECT_THAT(error_of("redis://:hunter2@h1:7000,h2:7001"), HasSubstr("redis+cluster://"));
  // read_from_replicas: true or false, on a cluster URL only, once.
  for (const char* value : {"1", "yes", "on", "", "truee", "%20true"}) {
    EXPECT_THAT(
        error_of(
            ("redis+cluster://:hunter2@h1:7000?read_from_replicas=" + std::string(value)).c_str()),
        HasSubstr("read_from_replicas"))
        << value;
  }
  EXPECT_THAT(error_of("redis+cluster://:hunter2@h1:7000?read_from_replicas=maybe"),
              HasSubstr("read_from_replicas must be 'true' or 'false', not 'maybe'"));
  EXPECT_THAT(
      error_of("redis+cluster://:hunter2@h1:7000?read_from_replicas=true&read_from_replicas=true"),
      HasSubstr("read_from_replicas"));
  for (const char* url : {"redis://:hunter2@h1:7000?read_from_replicas=true",
                          "rediss://:hunter2@h1:7000?read_from_replicas=true",
                          "redis+sentinel://:hunter2@h1:26379/m?read_from_replicas=true"}) {
    EXPECT_THAT(error_of(url), HasSubstr("'read_from_replicas' needs a cluster URL")) << url;
  }
}

TEST(CacheUrl, ErrorsForOtherSchemesNeverShowThePassword) {
  EXPECT_THAT(config_error("postgres://admin:hunter2@db/cache"), Not(HasSubstr("hunter2")));
  EXPECT_THAT(config_error("admin:hunter2@db"), Not(HasSubstr("hunter2")));
  EXPECT_THAT(config_error("memory://?max_bytes=1&password=hunter2"), Not(HasSubstr("hunter2")));
}

TEST(MaskUrlPassword, UserAndPassword) {
  EXPECT_EQ(mask_url_password("redis://user:secret@host:6379/0"), "redis://user:***@host:6379/0");
}

TEST(MaskUrlPassword, PasswordWithoutUser) {
  EXPECT_EQ(mask_url_password("redis://:secret@host:6379"), "redis://:***@host:6379");
}

TEST(MaskUrlPassword, NoPasswordIsUnchanged) {
  EXPECT_EQ(mask_url_password("redis://host:6379/0"), "redis://host:6379/0");
  EXPECT_EQ(mask_url_password("redis://user@host:6379/0"), "redis://user@host:6379/0");
  EXPECT_EQ(mask_url_password("sqlite:///tmp/a:b@c.db"), "sqlite:///tmp/a:b@c.db");
  EXPECT_EQ(mask_url_password(""), "");
}

TEST(MaskUrlPassword, PercentEncodedPasswordIsMaskedWhole) {
  EXPECT_EQ(mask_url_password("rediss://me:p%40ss%3Aw%2Frd@host:6380"),
            "rediss://me:***@host:6380");
}

TEST(MaskUrlPassword, UnencodedSpecialCharactersInPasswordAreMaskedWhole) {
  EXPECT_EQ(mask_url_password("redis://me:p@ss/w:rd@host:6379/0"), "redis://me:***@host:6379/0");
}

TEST(MaskUrlPassword, SentinelHostListAndQueryPassword) {
  EXPECT_EQ(mask_url_password("redis+sentinel://u:pw@h1:26379,h2:26379/m/0"),
            "redis+sentinel://u:***@h1:26379,h2:26379/m/0");
  EXPECT_EQ(mask_url_password("rediss://h:6380?ca=/x.pem&password=pw"),
            "rediss://h:6380?ca=/x.pem&password=***");
}

TEST(MaskUrlPassword, MissingSchemeStillMasks) {
  EXPECT_EQ(mask_url_password("user:secret@host"), "user:***@host");
}

TEST(ResolveCacheUrl, ExplicitUrlWins) {
  ScopedEnv env("LLM_CACHE_REDIS_URL", "memory://");
  EXPECT_EQ(resolve_cache_url(CacheOptions{.url = "sqlite:///tmp/x.db"}), "sqlite:///tmp/x.db");
}

TEST(ResolveCacheUrl, EnvironmentVariableWhenNoUrl) {
  ScopedEnv env("LLM_CACHE_REDIS_URL", "memory://?max_bytes=1MiB");
  EXPECT_EQ(resolve_cache_url(CacheOptions{}), "memory://?max_bytes=1MiB");
}

TEST(ResolveCacheUrl, EmptyOrUnsetEnvironmentMeansEmbeddedDefault) {
  {
    ScopedEnv env("LLM_CACHE_REDIS_URL", "");
    EXPECT_EQ(resolve_cache_url(CacheOptions{}), "");
  }
  {
    ScopedEnv env("LLM_CACHE_REDIS_URL", std::nullopt);
    EXPECT_EQ(resolve_cache_url(CacheOptions{}), "");
  }
}

TEST(DefaultCacheFile, XdgCacheHomeFirst) {
  ScopedEnv xdg("XDG_CACHE_HOME", "/xdg/cache");
  ScopedEnv home("HOME", "/home/someone");
  EXPECT_EQ(std::get<SqliteOptions>(parse_cache_url("")).path, "/xdg/cache/llm-caching/cache.db");
}

TEST(DefaultCacheFile, HomeWhenXdgUnsetEmptyOrRelative) {
  ScopedEnv home("HOME", "/home/someone");
  for (std::optional<std::string> xdg :
       {std::optional<std::string>{}, std::optional<std::string>{""},
        std::optional<std::string>{"relative/dir"}}) {
    ScopedEnv xdg_env("XDG_CACHE_HOME", xdg);
    EXPECT_EQ(std::get<SqliteOptions>(parse_cache_url("")).path,
              "/home/someone/.cache/llm-caching/cache.db");
  }
}

TEST(DefaultCacheFile, NeitherSetNamesBothVariables) {
  ScopedEnv xdg("XDG_CACHE_HOME", std::nullopt);
  ScopedEnv home("HOME", std::nullopt);
  const std::string message = config_error("");
  EXPECT_THAT(message, AllOf(HasSubstr("XDG_CACHE_HOME"), HasSubstr("HOME")));
}

TEST(BackendIdentity, SamePathSpelledDifferentlyIsOneStore) {
  EXPECT_EQ(backend_identity(parse_cache_url("sqlite:///tmp/a/../c.db")),
            backend_identity(parse_cache_url("sqlite:///tmp/c.db")));
  EXPECT_NE(backend_identity(parse_cache_url("sqlite:///tmp/c.db")),
            backend_identity(parse_cache_url("sqlite:///tmp/d.db")));
  EXPECT_NE(backend_identity(parse_cache_url("memory://")),
            backend_identity(parse_cache_url("memory://?max_bytes=1MiB")));
}

}  // namespace
}  // namespace llm_caching::cache

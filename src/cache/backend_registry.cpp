// Opening backends, and the registry that shares one opened backend (and one L1) among every
// caller of the same store in a runtime (tiered_cache.hpp: open_backend, CacheRegistry).
#include "cache/dir_backend.hpp"
#include "cache/memory_backend.hpp"
#include "cache/redactor.hpp"
#include "cache/redis_backend.hpp"
#include "cache/signing_keys.hpp"
#include "cache/sqlite_backend.hpp"
#include "cache/tiered_cache.hpp"
#include "core/sha256.hpp"
#include "llm_caching/errors.hpp"

#include <cstdlib>
#include <map>
#include <tuple>
#include <utility>

namespace llm_caching::cache {
namespace {

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Stands in for a backend that failed to open (non-strict mode): every call fails the same way,
/// so the tiering counts and throttles it like any other outage.
class UnavailableBackend final : public Backend {
 public:
  UnavailableBackend(std::string description, std::string reason)
      : description_(std::move(description)), reason_(std::move(reason)) {}
  asio::awaitable<std::optional<std::string>> get(std::string) override {
    fail();
    co_return std::nullopt;
  }
  asio::awaitable<void> put(std::string, std::string, std::chrono::milliseconds) override {
    fail();
    co_return;
  }
  asio::awaitable<bool> erase(std::string) override {
    fail();
    co_return false;
  }
  asio::awaitable<std::uint64_t> clear(std::string) override {
    fail();
    co_return 0;
  }
  asio::awaitable<std::uint64_t> prune() override {
    fail();
    co_return 0;
  }
  asio::awaitable<BackendStats> stats() override {
    fail();
    co_return BackendStats{};
  }
  std::string describe() const override { return description_; }

 private:
  [[noreturn]] void fail() const { throw CacheError(reason_); }
  std::string description_;
  std::string reason_;
};

}  // namespace

std::shared_ptr<Backend> open_backend(const BackendConfig& config) {
  if (const auto* sqlite = std::get_if<SqliteOptions>(&config)) {
    return std::make_shared<SqliteBackend>(*sqlite);
  }
  if (const auto* redis = std::get_if<RedisOptions>(&config)) {
    return std::make_shared<RedisBackend>(*redis);
  }
  if (const auto* dir = std::get_if<DirOptions>(&config)) return std::make_shared<DirBackend>(*dir);
  return std::make_shared<MemoryBackend>(std::get<MemoryOptions>(config));
}

std::shared_ptr<TieredCache> CacheRegistry::open(const CacheOptions& options) {
  BackendConfig config = parse_cache_url(resolve_cache_url(options));
  apply_environment(config);
  const std::string identity = backend_identity(config);
  core::SigningKeys signing = resolve_signing_keys(options, process_env);
  const std::vector<std::string> patterns = redact_patterns(config);
  std::string patterns_identity;  // the patterns only as a hash: one may hold part of a secret
  for (const auto& p : patterns) patterns_identity += p + '\n';
  patterns_identity = core::sha256_hex(patterns_identity);
  auto& backends = backends_;
  auto& caches = caches_;

  std::lock_guard lock(mutex_);
  // Signing keys tell caches apart (one L1 must never hold what another's keys refused), and
  // so do redaction patterns (an L1 holds entries with their requests scrubbed by its own).
  const auto cache_key = std::make_tuple(identity, options.l1_max_bytes, options.strict,
                                         signing_keys_identity(signing) + patterns_identity);
  const std::int64_t now = steady_now_ms();
  if (auto it = caches.find(cache_key); it != caches.end()) {
    if (it->second.retry_open_at_ms == 0 || now < it->second.retry_open_at_ms) {
      return it->second.cache;
    }
  }
  Redactor redact(patterns, "LLM_CACHE_REDACT");  // ConfigurationError before anything opens
  Registered registered;
  if (auto& backend = backends[identity]; backend) {
    registered.cache = std::make_shared<TieredCache>(backend, options.l1_max_bytes, options.strict);
  } else {
    try {
      backend = open_backend(config);
      registered.cache =
          std::make_shared<TieredCache>(backend, options.l1_max_bytes, options.strict);
    } catch (const CacheError& e) {
      backends.erase(identity);
      if (options.strict) throw;
      registered.cache = std::make_shared<TieredCache>(
          std::make_shared<UnavailableBackend>(describe_config(config), e.what()),
          options.l1_max_bytes, false);
      registered.retry_open_at_ms = now + kBackendFailureIntervalMs;
    }
  }
  if (auto log = usage_log_for(options)) registered.cache->set_usage_log(std::move(log));
  registered.cache->set_signing_keys(std::move(signing));
  registered.cache->set_redactor(std::move(redact));
  registered.cache->watch_clears(options.clear_check_interval);
  caches[cache_key] = registered;
  return registered.cache;
}

/// Under mutex_.
std::shared_ptr<UsageLog> CacheRegistry::usage_log_for(const CacheOptions& options) {
  std::filesystem::path path = options.usage_log;
  if (path.empty()) {
    // Read where the URL is resolved, as LLM_CACHE_REDIS_URL is (resolve_cache_url).
    const char* env = std::getenv("LLM_CACHE_USAGE_LOG");
    if (env == nullptr || *env == '\0') return nullptr;
    path = env;
  }
  auto& log = usage_logs_[std::filesystem::absolute(path).lexically_normal()];
  if (!log) log = std::make_shared<UsageLog>(path);
  return log;
}

}  // namespace llm_caching::cache

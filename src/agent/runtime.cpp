#include "agent/runtime_impl.hpp"
#include "cache/cache_url.hpp"

#include "llm_caching/errors.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

namespace llm_caching {

namespace {

/// A whole number of `unit` from the environment in [0, max], or nullopt when unset (or empty,
/// when `empty_is_unset`).
std::optional<std::int64_t> env_number(const char* name, std::int64_t max, std::string_view unit,
                                       bool empty_is_unset) {
  const char* text = std::getenv(name);
  if (text == nullptr || (empty_is_unset && *text == '\0')) return std::nullopt;
  const std::string_view value(text);
  std::int64_t number = -1;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || number < 0 ||
      number > max) {
    throw ConfigurationError(fmt::format("{} must be whole {} from 0 to {}, not '{}'", name, unit,
                                         max, value.substr(0, 40)));
  }
  return number;
}

}  // namespace

RuntimeOptions RuntimeOptions::from_environment() {
  constexpr std::int64_t kDayMs = 24 * 3600 * 1000;
  constexpr std::int64_t kYearSeconds = 366LL * 24 * 3600;
  RuntimeOptions options;
  if (const char* mode = std::getenv("LLM_CACHE_MODE"); mode != nullptr && *mode != '\0') {
    try {
      options.mode = parse_cache_mode(mode);
    } catch (const ConfigurationError&) {
      throw ConfigurationError(fmt::format(
          "LLM_CACHE_MODE must be use, refresh, bypass, read_only or replay_only, not '{}'",
          std::string_view(mode).substr(0, 40)));
    }
  }
  if (auto ttl = env_number("LLM_CACHE_LOCK_TTL_MS", kDayMs, "milliseconds", false)) {
    options.lock_ttl = std::chrono::milliseconds(*ttl);
    options.lock_wait = 2 * options.lock_ttl;
  }
  if (auto wait = env_number("LLM_CACHE_LOCK_WAIT_MS", kDayMs, "milliseconds", false)) {
    options.lock_wait = std::chrono::milliseconds(*wait);
  }
  if (auto s = env_number("LLM_CACHE_STALE_WHILE_REVALIDATE", kYearSeconds, "seconds", true)) {
    options.stale_while_revalidate = std::chrono::seconds(*s);
  }
  if (auto s = env_number("LLM_CACHE_STALE_IF_ERROR", kYearSeconds, "seconds", true)) {
    options.stale_if_error = std::chrono::seconds(*s);
  }
  if (const char* dir = std::getenv("LLM_CACHE_LEDGER_SPILL_DIR"); dir != nullptr && *dir != 0) {
    options.ledger_spill_dir = dir;
  }
  return options;
}

Runtime::Runtime(RuntimeOptions options) : impl_(std::make_unique<Impl>(options)) {}

Runtime::~Runtime() = default;

const RuntimeOptions& Runtime::options() const noexcept {
  return impl_->options;
}

Runtime& Runtime::default_runtime() {
  // spdlog's registry, which the runtime's threads log through until its destructor joins them,
  // was made before main (core/thread_name.cpp), so it outlives the runtime at exit.
  // A throwing initialiser leaves it unmade: the next call reads the environment again.
  static Runtime runtime(RuntimeOptions::from_environment());
  return runtime;
}

exchange::ExchangeOptions Runtime::Impl::exchange_options() const {
  exchange::ExchangeOptions out;
  out.lock_ttl = options.lock_ttl;
  out.lock_wait = options.lock_wait;
  return out;
}

exchange::LedgerOptions Runtime::Impl::ledger_options() const {
  exchange::LedgerOptions out;
  out.enabled = true;
  out.spill_dir = options.ledger_spill_dir;
  if (out.spill_dir.empty()) {
    try {
      out.spill_dir = cache::default_cache_file().parent_path() / "ledger-spill";
    } catch (const ConfigurationError&) {
      // No HOME: a failed batch is logged and dropped (LedgerOptions::spill_dir).
    }
  }
  return out;
}

std::shared_ptr<exchange::Exchange> Runtime::Impl::exchange_for(const CacheOptions& cache_options) {
  std::string id = cache::resolve_cache_url(cache_options);
  id += cache_options.strict ? "|strict" : "|degrade";
  std::lock_guard lock(mutex);
  if (const auto found = exchanges.find(id); found != exchanges.end()) return found->second;
  auto created = std::make_shared<exchange::Exchange>(caches.open(cache_options),
                                                      exchange::system_now_ms, exchange_options());
  return exchanges.emplace(std::move(id), std::move(created)).first->second;
}

}  // namespace llm_caching

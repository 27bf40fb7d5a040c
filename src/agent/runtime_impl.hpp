// The inside of a Runtime (llm_caching/runtime.hpp), for the library's calls and the CLI.
#pragma once

#include "cache/tiered_cache.hpp"
#include "exchange/exchange.hpp"
#include "llm_caching/runtime.hpp"
#include "providers/client_pool.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace llm_caching {

struct Runtime::Impl {
  explicit Impl(RuntimeOptions runtime_options) : options(runtime_options) {}

  /// One exchange per cache: its single-flight table must be shared by every call on that
  /// cache. Keyed by the resolved URL and strictness, so the hot path does not reopen anything.
  std::shared_ptr<exchange::Exchange> exchange_for(const CacheOptions& cache_options);
  exchange::ExchangeOptions exchange_options() const;
  /// The ledger's writer settings for calls that ask for it (RunOptions::ledger).
  exchange::LedgerOptions ledger_options() const;

  RuntimeOptions options;
  // Declared first, destroyed last: the exchanges' background refreshes call through it.
  providers::ClientPool pool;
  cache::CacheRegistry caches;
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<exchange::Exchange>, std::less<>> exchanges;
};

}  // namespace llm_caching

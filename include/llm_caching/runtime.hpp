// What the library keeps between calls: the provider connections (one keep-alive pool), one
// exchange per cache (its tiers and single-flight table), and the settings that the environment
// gives every call. The environment is read once, where a runtime is made; nothing below reads it.
#pragma once

#include "llm_caching/cache_mode.hpp"

#include <chrono>
#include <memory>

namespace llm_caching {

struct RuntimeOptions {
  /// Cross-process single-flight (docs/SINGLE_FLIGHT.md): how long a process holds a key's lock
  /// while it calls the provider (a holder that dies releases by this expiry); 0 turns it off.
  std::chrono::milliseconds lock_ttl{30'000};
  /// How long a waiter polls for another process's answer before it calls the provider itself.
  std::chrono::milliseconds lock_wait{60'000};
  /// The mode of calls whose RunOptions leave it unset: LLM_CACHE_MODE=replay_only runs a test
  /// suite from recorded answers with no key (docs/TESTING.md).
  CacheMode mode = CacheMode::use;
  /// The stale windows of calls whose RunOptions leave them unset (0 = off).
  std::chrono::milliseconds stale_while_revalidate{0};
  std::chrono::milliseconds stale_if_error{0};
  /// Where ledger records wait while the cache cannot take them (docs/COSTS.md); empty: the
  /// folder ledger-spill beside the embedded cache file. LLM_CACHE_LEDGER_SPILL_DIR.
  std::string ledger_spill_dir;

  /// The defaults, overridden by LLM_CACHE_MODE (use, refresh, bypass, read_only, replay_only),
  /// LLM_CACHE_LOCK_TTL_MS and LLM_CACHE_LOCK_WAIT_MS (milliseconds,
  /// 0 to 86400000; with only the TTL set the wait is twice it), LLM_CACHE_STALE_WHILE_REVALIDATE
  /// and LLM_CACHE_STALE_IF_ERROR (whole seconds, 0 to 31622400). Throws ConfigurationError
  /// naming the variable for any other value.
  static RuntimeOptions from_environment();
};

class Runtime {
 public:
  /// Starts nothing yet: the connection thread starts on the first provider call.
  explicit Runtime(RuntimeOptions options = {});
  /// Waits for pending cache writes, then stops the connection thread. Calls still running on
  /// this runtime must have finished.
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const RuntimeOptions& options() const noexcept;

  /// The runtime of every call whose RunOptions::runtime is null: made on the first such call
  /// from RuntimeOptions::from_environment(), kept until exit. A variable with a bad value throws
  /// ConfigurationError on every call until it is fixed.
  static Runtime& default_runtime();

  struct Impl;  ///< src/agent/runtime_impl.hpp
  Impl& impl() noexcept { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace llm_caching

// The one path every call takes (DESIGN §2): key -> tiers -> single-flight -> provider call with
// retry -> cost -> store. The only part that knows both the cache and the providers.
#pragma once

#include "cache/tiered_cache.hpp"
#include "core/budget.hpp"
#include "core/entry.hpp"
#include "core/log_throttle.hpp"
#include "core/retry.hpp"
#include "exchange/flight.hpp"
#include "exchange/ledger_writer.hpp"
#include "exchange/write_behind.hpp"
#include "llm_caching/cache_mode.hpp"
#include "llm_caching/costs.hpp"
#include "llm_caching/model.hpp"
#include "providers/streaming_model.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace llm_caching::exchange {

namespace asio = boost::asio;

// The provider client's streaming seam (providers/streaming_model.hpp), by the names the
// exchange's callers know.
using providers::ChunkSink;
using providers::StreamingModel;

struct ExchangeRequest {
  NativeRequest native;
  std::string namespace_;
  std::string scope;  ///< tenant partition (gateway: hash of the caller's key); empty = shared
  /// The caller's task (the library's task_name, the gateway's x-llm-task): not part of the
  /// key; the entry a provider call of this request records names it (core::CacheEntry::task).
  std::string task;
  CacheMode mode = CacheMode::use;
  std::chrono::milliseconds ttl{std::chrono::hours(24 * 15)};
  core::RetryOptions retry;
  /// Prices: `overrides` first (per-call custom costs), then `costs` (null: the Exchange's
  /// ExchangeOptions::prices, else the defaults). The model must be in one of them; that is
  /// checked before any I/O.
  const CostTable* costs = nullptr;
  const CostTable* overrides = nullptr;
  /// Extra check of a successful answer before it is stored (typed output); throws to refuse it,
  /// and then nothing is cached.
  std::function<void(const core::CacheEntry&)> validate;
  /// Gateway: a model missing from the price tables is costed 0 (result.priced = false) instead
  /// of raising ConfigurationError.
  bool allow_unpriced = false;
  /// Set with native.stream and a StreamingModel: a miss is relayed here as it arrives, while it
  /// is accumulated and stored whole (result.relayed). Once a byte is relayed there is no retry.
  ChunkSink relay;
  /// When set, run() writes the request's storage key here first, before any chunk is relayed:
  /// a caller that relays names the key in its head without deriving it again. An output only:
  /// the key is always derived from the request.
  std::shared_ptr<std::string> storage_key_out;
  /// Single-flight (docs/SINGLE_FLIGHT.md): concurrent identical misses share one provider call.
  /// false: this call neither waits for nor leads a shared flight.
  bool coalesce = true;
  /// Stale policies (docs/SINGLE_FLIGHT.md), 0 = off. stale_while_revalidate: an entry expired
  /// by at most this long is served at once (result.stale) while one background call refreshes
  /// it with refresh_model (required: without it the policy is ignored). stale_if_error: an entry
  /// expired by at most this long is served when the provider fails (429 past max_wait, 5xx, no
  /// response). Entries this call stores are kept by the L2 for ttl + the larger grace.
  std::chrono::milliseconds stale_while_revalidate{0};
  std::chrono::milliseconds stale_if_error{0};
  /// Owns the model for a background refresh (the caller's Model& may be gone by then).
  std::shared_ptr<Model> refresh_model;
  /// Where the background refresh runs; empty: the Exchange's own background thread.
  asio::any_io_executor refresh_executor;
  /// Write-behind (docs/SINGLE_FLIGHT.md): a miss is answered (and its in-process waiters woken)
  /// as soon as its entry is in the L1; the L2 write, then the release of the cross-process lock,
  /// finish on the Exchange's writer thread. Ignored when the cache is strict (a failed L2 write
  /// must raise). The gateway sets it; the library writes through, so that a call that returned
  /// has its entry in the L2 for the next process.
  bool write_behind = false;
  /// A caller whose repeats its L1 answers (the gateway) sets it: on an L1 miss the L2 is read
  /// once, under the cross-process lock, instead of before the lock and again after it. A miss
  /// then costs one L2 read; an L2 hit costs a lock and an unlock. Applies to `use` calls that
  /// coalesce, without stale policies, when the L2's locks are local (SQLite, memory: a system
  /// call at most; not Redis, where a lock is a round trip) and cross-process locking is on.
  bool read_l2_under_lock = false;
  /// Asked before each retry: true when the caller will read no answer (the gateway's client
  /// hung up). The retries then stop (ProviderError, error_type "abandoned"), unless another
  /// caller joined this call's flight and still waits for it.
  std::function<bool()> caller_gone;
  /// Who the call is for: its ledger record before the outcome (task, tenant, tags...). Set when
  /// the ledger is on and the call may start a background refresh, which records its own cost
  /// from it (outcome `refresh`): money spent with no caller waiting is still accounted for.
  std::optional<core::LedgerRecord> ledger_who;
  /// Budgets this call falls under (core/budget_lines): a miss reserves its worst case on each
  /// before the provider call (BudgetExceededError when one has no room) and settles after.
  std::vector<core::BudgetLine> budgets;
  /// Deterministic jitter for tests.
  std::uint64_t retry_seed = 0x9e3779b97f4a7c15ULL;
};

struct ExchangeResult {
  std::shared_ptr<const core::CacheEntry> entry;
  std::string storage_key;
  bool cache_hit = false;
  bool coalesced = false;
  bool stale = false;  ///< an expired entry served under a stale policy (cache_hit is also set)
  std::int64_t cost_nano_usd = 0;     ///< billed by this call (0 on a hit or when coalesced)
  std::int64_t avoided_nano_usd = 0;  ///< the original cost, on a hit or when coalesced
  int attempts = 0;                   ///< provider attempts made by this call
  bool priced = true;                 ///< false: unpriced model allowed, costed 0
  bool relayed = false;               ///< the answer already went to request.relay
  int soft_budgets_exceeded = 0;      ///< soft budgets this call's reservation went past
};

// FlightOutcome (how an in-process flight ended for its waiters): exchange/flight.hpp.

/// Milliseconds since the epoch; injectable for tests.
using Clock = std::function<std::int64_t()>;
std::int64_t system_now_ms();

/// Cross-process single-flight (docs/SINGLE_FLIGHT.md). The library's runtime and the gateway
/// fill it from RuntimeOptions (the environment is read there, once).
struct ExchangeOptions {
  /// How long a process holds a key's lock while it calls the provider; a holder that dies
  /// releases by this expiry. 0 turns cross-process locking off (in-process flights remain).
  std::chrono::milliseconds lock_ttl{30'000};
  /// How long a waiter polls the L2 for another process's answer, in total, before it calls the
  /// provider itself (a lock that expires or is released earlier is taken over at once).
  std::chrono::milliseconds lock_wait{60'000};
  /// Write-behind (ExchangeRequest::write_behind): at most this many answers wait for their L2
  /// write. When the writers fall behind (a backend slower than the misses), a miss beyond the
  /// limit is not written to the L2 (it stays in the L1, its lock is released at once, and a
  /// warning is logged), so that the queue and the locks it holds stay bounded.
  std::size_t write_behind_limit = 10'000;
  /// The write-behind thread runs at idle priority, so its writes never delay a request; on a
  /// machine whose CPUs stay busy it gets almost no CPU. A write that has waited this long is
  /// written by a second thread at normal priority (with every write queued behind it), so a
  /// busy machine delays the L2 writes by this much instead of losing them to the limit.
  std::chrono::milliseconds write_behind_catch_up{250};
  /// The price table of requests that bring none (ExchangeRequest::costs): a gateway's
  /// --prices merged over the defaults. Null: the defaults. Must outlive the Exchange (a
  /// pointer, so that the options stay a literal type).
  const CostTable* prices = nullptr;
};

class Exchange {
 public:
  explicit Exchange(std::shared_ptr<cache::TieredCache> cache, Clock clock = system_now_ms,
                    ExchangeOptions options = {});
  /// Waits for pending write-behinds and lock releases (each bounded by the backend's timeouts).
  ~Exchange();

  /// Throws ConfigurationError (no price), CacheMissError (replay_only miss), CacheError
  /// (strict backend failure), RateLimitError, ProviderError.
  asio::awaitable<ExchangeResult> run(Model& model, ExchangeRequest request);
  /// run()'s answer when it is a fresh L1 hit, found without suspending (a caller on another
  /// thread than the exchange's skips the hop there); nullopt: call run(), which looks again.
  /// Never throws for a missing price: run() raises that.
  std::optional<ExchangeResult> answer_from_l1(const ExchangeRequest& request);

  /// Starts the ledger's writer (docs/COSTS.md) when options.enabled and the backend keeps a
  /// ledger; the first call decides, later ones do nothing (thread-safe). Its destructor, run
  /// by the exchange's, stores every record handed over.
  void start_ledger(LedgerOptions options);
  /// The ledger's writer; null when it is off (then callers record nothing).
  LedgerWriter* ledger() noexcept { return ledger_view_.load(std::memory_order_acquire); }

  cache::TieredCache& cache() noexcept { return *cache_; }
  /// The in-process flights, one per storage key: the per-input flights of run_embeddings
  /// (embeddings.hpp) join the same table.
  FlightTable& flights() noexcept { return flights_; }
  const ExchangeOptions& options() const noexcept { return options_; }
  /// The writer threads: where a HeldLock (cross_process_lock.hpp) that run_embeddings drops
  /// without handing it on queues its release.
  WriteBehind& write_behind() noexcept { return write_behind_; }

 private:
  // The parts (docs/DESIGN.md §8): the in-process flights (flight.hpp), the write-behind
  // (write_behind.hpp), the cross-process lock (cross_process_lock.hpp), the provider call with
  // its retries (provider_call.hpp). This class joins them: the orchestration of run().

  /// Whether this call reads the L2 only under the cross-process lock (read_l2_under_lock).
  bool reads_l2_under_lock(const ExchangeRequest& request, std::int64_t swr_ms,
                           std::int64_t sie_ms) const noexcept;
  /// Starts one background refresh of key unless a flight for it is already out.
  void start_refresh(const ExchangeRequest& request, const std::string& key,
                     const ModelCosts& price, bool priced);
  asio::awaitable<void> background_refresh(std::shared_ptr<Model> model, ExchangeRequest request,
                                           std::shared_ptr<Flight> flight, std::string key,
                                           ModelCosts price, bool priced);
  /// l2_unread: the L2 has not been read for this call yet (read_l2_under_lock); the leader
  /// reads it under the lock, and an entry it finds there is a cache hit for every waiter.
  asio::awaitable<ExchangeResult> lead_flight(Model& model, const ExchangeRequest& request,
                                              std::shared_ptr<Flight> flight,
                                              const std::string& key, const ModelCosts& price,
                                              bool priced, bool l2_unread);
  /// The in-process leader of a key that the cache reads and writes: takes the cross-process
  /// lock and leads, or polls the L2 for the holder's answer (ExchangeOptions). l2_unread: as
  /// lead_flight's; the first read (under the lock, or before waiting for another holder) counts
  /// as the call's own lookup.
  asio::awaitable<ExchangeResult> lead_across_processes(Model& model,
                                                        const ExchangeRequest& request,
                                                        const std::string& key,
                                                        const ModelCosts& price, bool l2_unread);
  /// Calls the provider and stores the answer; releases `lock` after the L2 write.
  asio::awaitable<ExchangeResult> lead(Model& model, const ExchangeRequest& request,
                                       const std::string& key, const ModelCosts& price,
                                       std::optional<std::string> lock_token = std::nullopt);

  std::shared_ptr<cache::TieredCache> cache_;
  Clock clock_;
  ExchangeOptions options_;
  // Write-behinds and lock releases still running on its writers; the destructor waits for them.
  WriteBehind write_behind_;
  FlightTable flights_;
  // Destroyed after the write-behind has finished (the destructor's body): every record is in.
  std::unique_ptr<LedgerWriter> ledger_;
  std::once_flag ledger_once_;
  std::atomic<LedgerWriter*> ledger_view_{nullptr};
  std::mutex background_mutex_;
  // Started on the first background refresh (guarded by background_mutex_). Last: destroyed
  // first, so abandoned refreshes still find the members above.
  std::unique_ptr<asio::thread_pool> background_;
};

}  // namespace llm_caching::exchange

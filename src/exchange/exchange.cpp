#include "exchange/exchange.hpp"

#include "core/printable.hpp"
#include "core/text.hpp"
#include "core/thread_name.hpp"
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"
#include "providers/sse.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <iterator>
#include <random>
#include <utility>
#include <vector>

namespace llm_caching::exchange {

namespace {

bool reads_cache(CacheMode m) {
  return m == CacheMode::use || m == CacheMode::read_only || m == CacheMode::replay_only;
}
bool writes_cache(CacheMode m) {
  return m == CacheMode::use || m == CacheMode::refresh;
}
bool coalesces(CacheMode m) {
  return m == CacheMode::use || m == CacheMode::read_only;
}

// A waiter polls the L2 for another process's answer with these waits, doubling in between.
constexpr std::chrono::milliseconds kFirstPoll{5};
constexpr std::chrono::milliseconds kLastPoll{50};
// A waiter whose L2 signals the release of a lock (Redis) waits for it in rounds of this length.
constexpr std::chrono::milliseconds kNotifiedRound{1000};
/// How long the writer thread gathers write-behinds into one L2 write.
constexpr std::chrono::milliseconds kWriteBehindLinger{20};
/// The most writes the idle writer takes at once (the queue's chunk). It can be preempted and then
/// starved while it holds them (and, inside the L2 write, the backend's write lock): few, so that
/// the catch-up writer waits little for them.
constexpr std::size_t kIdleBatch = 64;
/// The most writes of one catch-up L2 write (one SQLite transaction).
constexpr std::size_t kCatchUpBatch = 1024;

/// One thread for the exchange's own work, named `name` by the first task it runs (an Asio pool
/// starts its thread itself, which then carries its creator's name until that task has run).
std::unique_ptr<asio::thread_pool> named_thread(const char* name, bool idle = false) {
  auto pool = std::make_unique<asio::thread_pool>(1);
  asio::post(*pool, [name, idle] {
    // The priority first: a thread that shows its name has its policy too.
    if (idle && !core::make_this_thread_idle()) {
      spdlog::debug("{}: could not move to SCHED_IDLE; it runs at normal priority", name);
    }
    core::name_this_thread(name);
  });
  return pool;
}

// How often the write-behind's overflow may be logged.
constexpr std::chrono::seconds kOverflowLogInterval{30};

/// 128 random bits as 32 hex digits: who holds a cross-process lock.
std::string new_lock_token() {
  std::array<unsigned char, 16> bytes{};
  // The kernel's generator: no per-thread state to leak or to share with a forked child.
  if (::getrandom(bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
    std::random_device device;  // uniqueness is all a token needs
    for (auto& b : bytes) b = static_cast<unsigned char>(device());
  }
  return core::hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

/// A millisecond setting from the environment, or nullopt when unset.
std::optional<std::chrono::milliseconds> env_milliseconds(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return std::nullopt;
  const std::string_view value(text);
  std::int64_t ms = -1;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
  constexpr std::int64_t kMax = 24 * 3600 * 1000;
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || ms < 0 ||
      ms > kMax) {
    throw ConfigurationError(fmt::format(
        "{} must be a whole number of milliseconds from 0 to {}, got '{}'", name, kMax, value));
  }
  return std::chrono::milliseconds(ms);
}

/// An answer this call did not pay for (a hit, a stale entry, another caller's call): it is
/// billed 0, and the original call's cost is what it avoided.
void serve_unpaid(ExchangeResult& result, std::shared_ptr<const core::CacheEntry> entry) {
  result.avoided_nano_usd = entry->cost_nano_usd;
  result.entry = std::move(entry);
}

bool is_retryable_status(int status) {
  switch (status) {
    case 0:    // no response: refused, reset, timed out
    case 408:  // request timeout
    case 429:  // rate limited
    case 500:
    case 502:
    case 503:
    case 504:
    case 529:  // Anthropic overloaded_error
      return true;
    default:
      return false;
  }
}

std::string describe_call(const NativeRequest& r) {
  return fmt::format("{} {}", to_string(r.provider), core::printable(r.model));
}

[[noreturn]] void throw_provider_failure(const NativeRequest& request, const NativeResponse& resp,
                                         const providers::ProviderErrorInfo& info,
                                         std::string_view context) {
  if (resp.status == 0) {
    const bool timed_out = resp.transport_error.starts_with(kTimeoutTransportPrefix);
    throw ProviderError(
        fmt::format("{}: no response{}: {}", describe_call(request), context, resp.transport_error),
        0, timed_out ? "timeout" : "transport", "");
  }
  throw ProviderError(fmt::format("{}: HTTP {} {}{}: {}", describe_call(request), resp.status,
                                  info.type, context, info.message),
                      resp.status, info.type, info.message);
}

}  // namespace

std::int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// One in-process call in flight for a key; callers that miss on the same key wait for it.
/// A waiter is its stored completion handler (no channel, no allocation of its own beyond the
/// handler's): the leader's finish wakes all the waiters of one executor with one post, which
/// resumes them one after the other on that executor.
struct Exchange::Flight {
  using Outcome = FlightOutcome;
  /// A stored wait: the waiter's completion handler with what its wake-up needs, in one
  /// allocation (any_completion_handler is not used: its move assignment recurses in Boost 1.81).
  struct Waiter {
    std::uint64_t id = 0;
    asio::any_io_executor executor;  ///< the waiter's: where it resumes
    asio::any_io_executor work;      ///< the same, tracked: its io_context runs until it resumed
    asio::cancellation_slot slot;    ///< the waiter's own (cleared before it resumes)
    /// The waiter's native request, parked here while it waits, and where it came from (in the
    /// waiter's suspended frame). Only a waiter that must call the provider again (handed over)
    /// or that stops (cancelled) gets it back; otherwise it is freed with the waiter, after the
    /// whole batch resumed, not on the way of the next waiter (docs/PERFORMANCE.md, burst).
    NativeRequest parked;
    NativeRequest* home = nullptr;
    virtual ~Waiter() = default;
    /// Invokes the handler, once, on `executor`.
    virtual void complete(boost::system::error_code ec, Outcome result) = 0;
  };
  template <typename Handler>
  struct WaiterFor final : Waiter {
    Handler handler;
    explicit WaiterFor(Handler h) : handler(std::move(h)) {}
    void complete(boost::system::error_code ec, Outcome result) override {
      std::move(handler)(ec, result);
    }
  };
  using WaiterPtr = std::unique_ptr<Waiter>;
  /// The waiters of one executor, resumed by one post to it.
  struct Batch {
    asio::any_io_executor executor;
    std::vector<WaiterPtr> waiters;
  };

  std::mutex mutex;
  // Written once, under mutex, before the waiters are woken (the post orders the reads after);
  // a resumed waiter reads them without the lock.
  bool done = false;
  Outcome outcome = Outcome::answered;
  std::shared_ptr<const core::CacheEntry> entry;
  std::exception_ptr error;
  bool from_cache = false;           // the leader found the entry in the L2: a hit for every waiter
  std::vector<WaiterPtr> waiters;    // guarded by mutex
  std::uint64_t next_waiter_id = 0;  // guarded by mutex

  /// Resumes `waiter` with (ec, outcome); runs on the waiter's executor. The caller destroys the
  /// waiter afterwards (its tracked work goes last, on its executor, after it resumed).
  static void resume(Waiter& waiter, boost::system::error_code ec, Outcome result) {
    if (waiter.slot.is_connected()) waiter.slot.clear();
    if (ec || result == Outcome::handed_over) *waiter.home = std::move(waiter.parked);
    waiter.complete(ec, result);
  }

  /// Ends one waiter's wait with operation_aborted (its cancellation slot fired), unless the
  /// flight has already taken it to wake it.
  void cancel(std::uint64_t id) {
    WaiterPtr cancelled;
    {
      std::lock_guard lock(mutex);
      auto it = std::find_if(waiters.begin(), waiters.end(),
                             [id](const WaiterPtr& w) { return w->id == id; });
      if (it == waiters.end()) return;  // already on its way out with the flight's outcome
      cancelled = std::move(*it);
      waiters.erase(it);
    }
    // Not inline: the slot's handler (this call) is still running.
    asio::any_io_executor executor = cancelled->executor;
    asio::post(executor, [waiter = std::move(cancelled)]() mutable {
      resume(*waiter, asio::error::operation_aborted, Outcome::answered);
    });
  }

  void finish(std::shared_ptr<const core::CacheEntry> e, std::exception_ptr err, bool handover,
              bool cached) {
    std::vector<WaiterPtr> to_wake;
    {
      std::lock_guard lock(mutex);
      done = true;
      outcome = handover ? Outcome::handed_over : err ? Outcome::failed : Outcome::answered;
      entry = std::move(e);
      error = std::move(err);
      from_cache = cached;
      to_wake.swap(waiters);
    }
    // One post per executor, which then resumes all its waiters in a loop (a burst's waiters
    // mostly share a handful of gateway workers). A waiter's executor may belong to an io_context
    // that ends as soon as the waiter resumes (cached_agent_run_sync): everything of a waiter,
    // its tracked work included, goes into the post and is destroyed on that executor, after
    // the waiter resumed, so this thread keeps nothing of it.
    std::vector<Batch> batches;
    for (auto& w : to_wake) {
      auto it = std::find_if(batches.begin(), batches.end(),
                             [&](const Batch& b) { return b.executor == w->executor; });
      if (it == batches.end()) it = batches.insert(batches.end(), Batch{w->executor, {}});
      it->waiters.push_back(std::move(w));
    }
    const Outcome result = outcome;
    for (auto& batch : batches) {
      asio::any_io_executor executor = batch.executor;
      asio::post(executor, [waiters = std::move(batch.waiters), result]() mutable {
        for (auto& w : waiters) resume(*w, {}, result);
        // The waiters themselves (parked requests, handlers, tracked work) go with the vector,
        // after the last one resumed.
      });
    }
  }

  /// Whether the flight is over already, and then how (no wait needed).
  bool is_over(Outcome& result) {
    std::lock_guard lock(mutex);
    result = outcome;
    return done;
  }

  /// The wait itself (asio::async_initiate): stores the handler, or completes it at once when
  /// the flight is already over. `request` is parked in the wait (Waiter::parked) and is empty
  /// after it, unless the flight was handed over or the wait cancelled.
  template <typename CompletionToken>
  auto async_wait(NativeRequest& request, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(boost::system::error_code, Outcome)>(
        [this, &request](auto handler) {
          asio::any_io_executor executor = asio::get_associated_executor(handler);
          asio::cancellation_slot slot = asio::get_associated_cancellation_slot(handler);
          WaiterPtr waiter = std::make_unique<WaiterFor<decltype(handler)>>(std::move(handler));
          waiter->executor = executor;
          waiter->work = asio::prefer(executor, asio::execution::outstanding_work.tracked);
          waiter->slot = slot;
          waiter->parked = std::move(request);
          waiter->home = &request;
          std::unique_lock lock(mutex);
          if (done) {
            const Outcome result = outcome;
            lock.unlock();
            asio::post(executor, [waiter = std::move(waiter), result]() mutable {
              resume(*waiter, {}, result);
            });
            return;
          }
          waiter->id = next_waiter_id++;
          if (slot.is_connected()) {
            // Cancelling this wait ends this caller only; the leader's call goes on. The flight
            // outlives the slot's handler: the waiting coroutine holds it, and the slot is
            // cleared before that coroutine resumes.
            slot.template emplace<CancelWait>(this, waiter->id);
          }
          waiters.push_back(std::move(waiter));
        },
        token);
  }

  struct CancelWait {
    Flight* flight;
    std::uint64_t id;
    void operator()(asio::cancellation_type type) {
      if (type != asio::cancellation_type::none) flight->cancel(id);
    }
  };
};

ExchangeOptions ExchangeOptions::from_environment() {
  ExchangeOptions options;
  if (auto ttl = env_milliseconds("LLM_CACHE_LOCK_TTL_MS")) {
    options.lock_ttl = *ttl;
    options.lock_wait = 2 * *ttl;
  }
  if (auto wait = env_milliseconds("LLM_CACHE_LOCK_WAIT_MS")) options.lock_wait = *wait;
  return options;
}

Exchange::Exchange(std::shared_ptr<cache::TieredCache> cache, Clock clock, ExchangeOptions options)
    : cache_(std::move(cache)),
      clock_(std::move(clock)),
      options_(options),
      overflow_log_(kOverflowLogInterval),
      catch_up_log_(kOverflowLogInterval) {}

Exchange::~Exchange() {
  std::unique_lock lock(pending_mutex_);
  stopping_ = true;
  // The catch-up loop may sleep until its next write is due: wake it to write what is left now.
  if (catch_up_armed_) {
    asio::post(catch_up_->get_executor(), [this] {
      if (cancel_catch_up_wait_) cancel_catch_up_wait_();
    });
  }
  pending_done_.wait(lock, [this] { return pending_ == 0; });
  auto writer = std::move(writer_);
  auto catch_up = std::move(catch_up_);
  lock.unlock();
  writer.reset();  // joins the thread: the last completion handler has returned
  catch_up.reset();
}

bool Exchange::try_write_behind(const std::string& key,
                                std::shared_ptr<const core::CacheEntry> entry,
                                std::chrono::milliseconds ttl,
                                std::optional<std::string>& lock_token) {
  // One lock for the check and the queueing, so that racing misses cannot pass the limit.
  std::lock_guard lock(pending_mutex_);
  if (unlanded_ >= options_.write_behind_limit) {
    if (overflow_log_.allow()) {
      spdlog::warn(
          "cache write-behind: {} answers already wait for their L2 write (the writer thread "
          "is behind: a busy machine or a slow cache backend); {} stays in memory only, and so "
          "do the next ones until it catches up (logged at most every 30 s)",
          unlanded_, key);
    }
    return false;
  }
  queue_behind(lock, key, std::move(entry), ttl, std::exchange(lock_token, std::nullopt));
  return true;
}

void Exchange::finish_in_background(std::string key, std::shared_ptr<const core::CacheEntry> entry,
                                    std::chrono::milliseconds ttl,
                                    std::optional<std::string> lock_token) {
  std::lock_guard lock(pending_mutex_);
  queue_behind(lock, std::move(key), std::move(entry), ttl, std::move(lock_token));
}

void Exchange::queue_behind(const std::lock_guard<std::mutex>& /*pending_mutex_ held*/,
                            std::string key, std::shared_ptr<const core::CacheEntry> entry,
                            std::chrono::milliseconds ttl, std::optional<std::string> lock_token) {
  // Idle priority: a batch of SQLite writes is a burst of CPU that would otherwise hold up the
  // requests (and, on a shared machine, the upstream) that wake on its CPU.
  if (!writer_) writer_ = named_thread("llmc-l2-writer", true);
  ++pending_;
  ++unlanded_;
  if (behind_.empty() || behind_.back().size() >= kIdleBatch) behind_.emplace_back();
  behind_.back().push_back({std::move(key), std::move(entry), ttl, std::move(lock_token),
                            std::chrono::steady_clock::now()});
  const auto loop_ended = [this](std::exception_ptr) {
    std::lock_guard done(pending_mutex_);
    --pending_;
    pending_done_.notify_all();
  };
  // Each loop counts in pending_ while it runs: the destructor waits for it to end.
  if (!catch_up_armed_) {
    if (!catch_up_) catch_up_ = named_thread("llmc-l2-catchup");
    catch_up_armed_ = true;
    ++pending_;
    asio::co_spawn(catch_up_->get_executor(), catch_up_write_behind(), loop_ended);
  }
  if (draining_ || catching_up_) return;
  draining_ = true;
  ++pending_;
  asio::co_spawn(writer_->get_executor(), drain_write_behind(), loop_ended);
}

std::vector<Exchange::BehindWrite> Exchange::take_behind(
    const std::lock_guard<std::mutex>& /*pending_mutex_ held*/, std::size_t most) {
  std::vector<BehindWrite> taken = std::move(behind_.front());
  behind_.pop_front();
  // Only the last chunk can be short, so the idle writer (most = kIdleBatch) takes one chunk
  // here: O(1) under the mutex that workers wait for, as it may be preempted holding it.
  while (!behind_.empty() && taken.size() + behind_.front().size() <= most) {
    std::move(behind_.front().begin(), behind_.front().end(), std::back_inserter(taken));
    behind_.pop_front();
  }
  return taken;
}

asio::awaitable<void> Exchange::drain_write_behind() {
  asio::steady_timer linger(co_await asio::this_coro::executor);
  bool more_queued = false;
  for (;;) {
    // Misses that land within the linger share one L2 write: on SQLite one transaction, so
    // the pages every write touches (totals, the access-time index) are written once for all,
    // and this thread wakes once per batch instead of once per miss.
    if (!more_queued) {
      linger.expires_after(kWriteBehindLinger);
      co_await linger.async_wait(asio::use_awaitable);
    }
    std::vector<BehindWrite> batch;
    {
      std::lock_guard lock(pending_mutex_);
      if (behind_.empty() || catching_up_) {
        draining_ = false;
        co_return;
      }
      batch = take_behind(lock, kIdleBatch);
      more_queued = !behind_.empty();
    }
    co_await land(std::move(batch));
  }
}

asio::awaitable<void> Exchange::land(std::vector<BehindWrite> batch) {
  const std::size_t done = batch.size();
  if (cache_->l2_writes_batches()) {
    co_await write_batch(std::move(batch));
  } else {
    co_await write_each(std::move(batch));
  }
  {
    std::lock_guard lock(pending_mutex_);
    pending_ -= done;
    unlanded_ -= done;
  }
  pending_done_.notify_all();
}

asio::awaitable<void> Exchange::catch_up_write_behind() {
  asio::steady_timer due(co_await asio::this_coro::executor);
  cancel_catch_up_wait_ = [&due] { due.cancel(); };
  for (;;) {
    std::vector<BehindWrite> batch;
    std::size_t waiting = 0;  // for the log: queued, or taken and not yet landed
    bool late = false;        // not only written because ~Exchange runs
    {
      std::lock_guard lock(pending_mutex_);
      if (behind_.empty()) {
        catch_up_armed_ = false;
        catching_up_ = false;
        break;
      }
      const auto oldest_due = behind_.front().front().queued_at + options_.write_behind_catch_up;
      // Once late, it writes until the queue is empty; then the idle writer has it again.
      if (stopping_ || catching_up_ || std::chrono::steady_clock::now() >= oldest_due) {
        late = !stopping_;
        catching_up_ = true;
        batch = take_behind(lock, kCatchUpBatch);
        waiting = unlanded_;
      } else {
        due.expires_at(oldest_due);
      }
    }
    if (batch.empty()) {
      boost::system::error_code cancelled;  // by ~Exchange: the next turn writes what is left
      co_await due.async_wait(asio::redirect_error(asio::use_awaitable, cancelled));
      continue;
    }
    if (late && catch_up_log_.allow()) {
      spdlog::info(
          "cache write-behind: the idle-priority writer is behind (a busy machine: the oldest of "
          "{} answers waiting for their L2 write waited over {} ms); writing at normal priority "
          "until it catches up (logged at most every 30 s)",
          waiting, options_.write_behind_catch_up.count());
    }
    co_await land(std::move(batch));
  }
  cancel_catch_up_wait_ = nullptr;
}

namespace {

void log_write_behind_failure(std::string_view what, std::string_view key) {
  try {
    throw;
  } catch (const std::exception& e) {
    spdlog::warn("cache write-behind: {} of {} failed: {}", what, key, e.what());
  } catch (...) {
    spdlog::warn("cache write-behind: {} of {} failed", what, key);
  }
}

}  // namespace

asio::awaitable<void> Exchange::write_batch(std::vector<BehindWrite> batch) {
  std::vector<cache::Backend::PutItem> puts;
  puts.reserve(batch.size());
  for (const BehindWrite& write : batch) {
    // put_l1 checked entry_fits, so no length_error; the encoding may still fail (zstd).
    if (!write.entry) continue;
    try {
      puts.push_back({write.key, core::encode_entry(*write.entry), write.ttl});
    } catch (...) {
      log_write_behind_failure("the encoding", write.key);
    }
    // Not while the catch-up writer runs: these writes are late already.
    if (!catching_up_.load(std::memory_order_relaxed)) core::yield_if_idle();
  }
  // The L2 writes land before the locks go: a process that finds a lock free finds its entry.
  // TieredCache absorbs and counts backend failures; anything else is logged, and the batch
  // still counts as done (the destructor waits for pending_).
  try {
    if (!puts.empty()) co_await cache_->put_l2_many(std::move(puts));
  } catch (...) {
    log_write_behind_failure("the write", std::to_string(batch.size()) + " entries");
  }
  for (const BehindWrite& write : batch) {
    if (!write.lock_token) continue;
    try {
      co_await cache_->unlock(write.key, *write.lock_token);
    } catch (...) {
      log_write_behind_failure("the unlock", write.key);
    }
  }
}

asio::awaitable<void> Exchange::write_each(std::vector<BehindWrite> batch) {
  // A backend without batched writes (Redis: one round trip each) gets them all at once, each
  // write followed by its own unlock. The writer is one thread, so the counter needs no lock
  // and no completion runs before this coroutine waits (co_spawn starts with a post).
  const auto executor = co_await asio::this_coro::executor;
  std::size_t left = batch.size();
  asio::steady_timer all_done(executor, asio::steady_timer::time_point::max());
  auto finish = [](std::shared_ptr<cache::TieredCache> cache,
                   BehindWrite write) -> asio::awaitable<void> {
    try {
      if (write.entry)
        co_await cache->put_l2(write.key, core::encode_entry(*write.entry), write.ttl);
    } catch (...) {
      log_write_behind_failure("the write", write.key);
    }
    try {
      if (write.lock_token) co_await cache->unlock(write.key, *write.lock_token);
    } catch (...) {
      log_write_behind_failure("the unlock", write.key);
    }
  };
  for (BehindWrite& write : batch) {
    asio::co_spawn(executor, finish(cache_, std::move(write)), [&](std::exception_ptr) {
      if (--left == 0) all_done.cancel();
    });
  }
  boost::system::error_code ignored;
  co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

/// A cross-process lock this call holds. A call that ends without handing it on (an error, a
/// cancellation, a coroutine frame destroyed) releases it in the background; the lock's TTL
/// covers a process that dies.
struct Exchange::HeldLock {
  Exchange& exchange;
  const std::string& key;
  std::optional<std::string> token;

  std::optional<std::string> take() noexcept { return std::exchange(token, std::nullopt); }
  ~HeldLock() {
    if (!token) return;
    try {
      exchange.finish_in_background(key, nullptr, {}, std::move(token));
    } catch (const std::exception& e) {
      spdlog::warn("could not release the lock of {}: {}; it expires by itself", key, e.what());
    }
  }
};

namespace {

/// The request's storage key. Derived outside run's coroutine frame: the derivation's strings
/// (the hashed material, the canonical request) would otherwise live as long as the call, and a
/// burst's woken waiters would free them one after the other.
std::string request_storage_key(const ExchangeRequest& request) {
  const KeyDerivation derived =
      derive_key(request.native.provider, request.native.model, request.native.body, request.scope);
  return storage_key(request.namespace_, derived.hex);
}

/// The model's price: `overrides` first, then `costs` (null: the defaults). Null when the model
/// is in neither and unpriced models are allowed; ConfigurationError when they are not.
const ModelCosts* find_price(const ExchangeRequest& request) {
  const CostTable& table = request.costs ? *request.costs : CostTable::defaults();
  const ModelCosts* found =
      request.overrides ? request.overrides->find(request.native.model) : nullptr;
  if (found) return found;
  return request.allow_unpriced ? table.find(request.native.model)
                                : &table.at(request.native.model);
}

}  // namespace

std::pair<std::shared_ptr<Exchange::Flight>, bool> Exchange::join_flight(const std::string& key) {
  std::lock_guard lock(flights_mutex_);
  auto [it, inserted] = flights_.try_emplace(key);
  if (inserted) it->second = std::make_shared<Flight>();
  return {it->second, inserted};
}

// One coroutine from the cache lookup to the flight's answer: a woken waiter resumes, returns
// and frees this one frame (no fetch coroutine of its own; see docs/PERFORMANCE.md, burst).
asio::awaitable<ExchangeResult> Exchange::run(Model& model, ExchangeRequest request) {
  // Price first: an unpriced model is a configuration error before any I/O, never a silent $0.
  static const ModelCosts kUnpriced{};
  const ModelCosts* found = find_price(request);
  const ModelCosts& price = found ? *found : kUnpriced;
  ExchangeResult result;
  result.storage_key = request_storage_key(request);
  if (request.storage_key_out) *request.storage_key_out = result.storage_key;
  result.priced = found != nullptr;

  const std::int64_t swr_ms = request.refresh_model ? request.stale_while_revalidate.count() : 0;
  const std::int64_t sie_ms = request.stale_if_error.count();
  std::shared_ptr<const core::CacheEntry> stale_fallback;
  std::int64_t stale_for_ms = 0;
  const bool l2_under_lock = request.read_l2_under_lock && request.mode == CacheMode::use &&
                             request.coalesce && swr_ms == 0 && sie_ms == 0 &&
                             options_.lock_ttl.count() > 0 && !cache_->locks_cost_a_round_trip();
  if (reads_cache(request.mode)) {
    cache::TieredCache::GraceLookup lookup;
    if (l2_under_lock) {
      lookup.entry = cache_->get_l1(result.storage_key, clock_());  // the L2: under the lock
    } else if (swr_ms > 0 || sie_ms > 0) {
      lookup = co_await cache_->get(result.storage_key, clock_(), std::max(swr_ms, sie_ms));
    } else {
      lookup.entry = co_await cache_->get(result.storage_key, clock_());
    }
    if (lookup.entry && (!lookup.expired || (swr_ms > 0 && lookup.expired_for_ms <= swr_ms))) {
      result.cache_hit = true;
      result.stale = lookup.expired;
      serve_unpaid(result, std::move(lookup.entry));
      if (result.stale) start_refresh(request, result.storage_key, price, result.priced);
      co_return std::move(result);
    }
    if (lookup.entry && sie_ms > 0 && lookup.expired_for_ms <= sie_ms) {
      stale_fallback = std::move(lookup.entry);
      stale_for_ms = lookup.expired_for_ms;
    }
    if (request.mode == CacheMode::replay_only) {
      throw CacheMissError(fmt::format(
          "no cached answer for {} (key {}) and the cache mode is replay_only, so the provider "
          "was not called",
          describe_call(request.native), result.storage_key));
    }
  }

  // stale-if-error (with stale_fallback only): a provider that is down or rate limiting gets the
  // expired answer served, unless part of a relayed answer already reached the caller (a second
  // one cannot follow).
  std::shared_ptr<bool> relayed_any;
  if (stale_fallback && request.relay) {
    relayed_any = std::make_shared<bool>(false);
    request.relay = [inner = std::move(request.relay), relayed_any](std::string_view chunk) {
      *relayed_any = true;
      inner(chunk);
    };
  }
  const auto serves_stale = [&] { return stale_fallback && !(relayed_any && *relayed_any); };
  std::string failure;
  try {
    if (!coalesces(request.mode) || !request.coalesce) {
      ExchangeResult led = co_await lead(model, request, result.storage_key, price);
      led.priced = result.priced;
      co_return std::move(led);
    }
    // Join the key's flight or lead a new one. A waiter whose leader was cancelled goes round
    // again: the first to come back leads, the others join it (docs/SINGLE_FLIGHT.md).
    for (;;) {
      std::pair<std::shared_ptr<Flight>, bool> joined = join_flight(result.storage_key);
      const std::shared_ptr<Flight>& flight = joined.first;
      if (joined.second) {
        co_return co_await lead_flight(model, request, flight, result.storage_key, price,
                                       result.priced, l2_under_lock);
      }
      // Throws operation_aborted when this caller's wait is cancelled, which ends this caller
      // only. request.native is parked in the wait: it comes back only when this caller may
      // still call the provider (handed over).
      FlightOutcome outcome{};
      if (!flight->is_over(outcome)) {
        // deferred, not use_awaitable: co_await of a deferred operation stores its handler in
        // this frame's awaiter, with no coroutine frame of its own to allocate and free.
        outcome = co_await flight->async_wait(request.native, asio::deferred);
      }
      if (outcome == FlightOutcome::handed_over) continue;
      // The flight is over: its entry and error no longer change (Flight), so no lock.
      if (flight->error) std::rethrow_exception(flight->error);
      (flight->from_cache ? result.cache_hit : result.coalesced) = true;
      serve_unpaid(result, flight->entry);
      co_return std::move(result);
    }
  } catch (const RateLimitError& e) {
    if (!serves_stale()) throw;
    failure = e.what();
  } catch (const ProviderError& e) {
    if (!serves_stale()) throw;
    if (e.http_status() != 0 && e.http_status() < 500) throw;  // the request itself is wrong
    failure = e.what();
  }
  spdlog::warn(
      "provider call for {} failed ({}); serving the entry that expired {} ms ago "
      "(stale-if-error)",
      result.storage_key, failure, stale_for_ms);
  result.cache_hit = true;
  result.stale = true;
  serve_unpaid(result, std::move(stale_fallback));
  co_return std::move(result);
}

namespace {
bool is_cancellation(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const boost::system::system_error& e) {
    return e.code() == asio::error::operation_aborted;
  } catch (...) {
    return false;
  }
}
}  // namespace

/// Finishes a flight however its leader ends: answered, failed, or cancelled (an exception, or
/// the coroutine frame destroyed while suspended). A cancelled leader hands the flight over.
struct Exchange::FlightGuard {
  Exchange& exchange;
  std::shared_ptr<Flight> flight;
  const std::string& key;
  bool finished = false;

  void finish(std::shared_ptr<const core::CacheEntry> entry, std::exception_ptr error,
              bool from_cache) {
    {
      std::lock_guard lock(exchange.flights_mutex_);
      auto it = exchange.flights_.find(key);
      if (it != exchange.flights_.end() && it->second == flight) exchange.flights_.erase(it);
    }
    const bool handover = error && is_cancellation(error);
    flight->finish(handover ? nullptr : std::move(entry), handover ? nullptr : error, handover,
                   from_cache && !error);
    finished = true;
  }
  ~FlightGuard() {
    if (!finished)
      finish(nullptr,
             std::make_exception_ptr(boost::system::system_error(asio::error::operation_aborted)),
             false);
  }
};

asio::awaitable<ExchangeResult> Exchange::lead_flight(Model& model, const ExchangeRequest& request,
                                                      std::shared_ptr<Flight> flight,
                                                      const std::string& key,
                                                      const ModelCosts& price, bool priced,
                                                      bool l2_unread) {
  FlightGuard guard{*this, std::move(flight), key};
  ExchangeResult result;
  std::exception_ptr error;
  try {
    result = co_await lead_across_processes(model, request, key, price, l2_unread);
    result.priced = priced;
  } catch (...) {
    error = std::current_exception();
  }
  guard.finish(result.entry, error, result.cache_hit);
  if (error) std::rethrow_exception(error);
  co_return std::move(result);
}

void Exchange::start_refresh(const ExchangeRequest& request, const std::string& key,
                             const ModelCosts& price, bool priced) {
  std::shared_ptr<Flight> flight;
  {
    std::lock_guard lock(flights_mutex_);
    auto [it, inserted] = flights_.try_emplace(key);
    if (!inserted) return;  // a call for this key is already out: it refreshes the entry
    it->second = flight = std::make_shared<Flight>();
  }
  ExchangeRequest copy = request;
  copy.relay = nullptr;        // the caller already has its (stale) answer
  copy.caller_gone = nullptr;  // nobody waits for a refresh: it finishes its retries
  copy.costs = nullptr;        // the price is resolved; these may point into the caller's frame
  copy.overrides = nullptr;
  asio::any_io_executor executor = request.refresh_executor;
  if (!executor) {
    std::lock_guard lock(flights_mutex_);
    if (!background_) background_ = named_thread("llmc-refresh");
    executor = background_->get_executor();
  }
  asio::co_spawn(executor,
                 background_refresh(request.refresh_model, std::move(copy), std::move(flight), key,
                                    price, priced),
                 asio::detached);
}

asio::awaitable<void> Exchange::background_refresh(std::shared_ptr<Model> model,
                                                   ExchangeRequest request,
                                                   std::shared_ptr<Flight> flight, std::string key,
                                                   ModelCosts price, bool priced) {
  try {
    co_await lead_flight(*model, request, std::move(flight), key, price, priced, false);
  } catch (const std::exception& e) {
    spdlog::warn("stale-while-revalidate: refreshing {} failed: {}", key, e.what());
  }
}

asio::awaitable<ExchangeResult> Exchange::lead_across_processes(Model& model,
                                                                const ExchangeRequest& request,
                                                                const std::string& key,
                                                                const ModelCosts& price,
                                                                bool l2_unread) {
  // Only `use` both reads and writes the L2: a read_only holder would store nothing to wait for.
  // (run() asks for l2_unread only where the lock is taken.)
  if (options_.lock_ttl.count() <= 0 || request.mode != CacheMode::use) {
    co_return co_await lead(model, request, key, price);
  }
  const std::string token = new_lock_token();
  const auto give_up_at = std::chrono::steady_clock::now() + options_.lock_wait;
  // With a release signal a round ends early, so rounds can be long: they only bound how late
  // an expired lock (a holder that died) is noticed.
  const bool notified = cache_->notifies_unlock();
  auto pause = notified ? kNotifiedRound : kFirstPoll;
  // An entry found by the call's own first L2 read is a hit; one found after waiting for
  // another holder, or that landed between our read and our lock, is that holder's answer.
  const auto answer = [&key](cache::TieredCache::EntryPtr entry, bool own_lookup) {
    ExchangeResult result;
    result.storage_key = key;
    (own_lookup ? result.cache_hit : result.coalesced) = true;
    serve_unpaid(result, std::move(entry));
    return result;
  };
  for (;;) {
    const auto lock = co_await cache_->try_lock(key, token, options_.lock_ttl);
    if (lock == cache::TieredCache::LockOutcome::unavailable) {
      cache::TieredCache::EntryPtr entry;
      if (l2_unread) entry = co_await cache_->get_l2(key, clock_());
      if (entry) co_return answer(std::move(entry), true);
      co_return co_await lead(model, request, key, price);  // degraded: no lock, as on a miss
    }
    cache::TieredCache::EntryPtr landed;
    if (lock == cache::TieredCache::LockOutcome::acquired) {
      // Read first (l2_unread): this is the call's lookup, one read for a miss. Otherwise the
      // holder before us may have landed its answer between our read and our lock.
      landed = co_await cache_->get_l2(key, clock_());
      if (!landed) co_return co_await lead(model, request, key, price, token);
      co_await cache_->unlock(key, token);
      co_return answer(std::move(landed), l2_unread);
    }
    if (l2_unread) {
      // Another process calls for this key: an entry already in the L2 is served now, as a read
      // before the lock would have served it.
      l2_unread = false;
      landed = co_await cache_->get_l2(key, clock_());
      if (landed) co_return answer(std::move(landed), true);
    }
    if (std::chrono::steady_clock::now() >= give_up_at) {
      spdlog::warn(
          "single-flight: {} is still locked by another process after {} ms; calling the "
          "provider without the lock",
          key, options_.lock_wait.count());
      co_return co_await lead(model, request, key, price);
    }
    // Redis ends this wait when the holder releases the lock (its answer landed, or it gave
    // up); other L2s are polled.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        give_up_at - std::chrono::steady_clock::now());
    co_await cache_->wait_for_unlock(key, std::clamp(left, std::chrono::milliseconds(1), pause));
    if (!notified) pause = std::min(pause * 2, kLastPoll);
    landed = co_await cache_->get_l2(key, clock_());
    if (landed) co_return answer(std::move(landed), false);
    // Still out, or its holder failed: try the lock again.
  }
}

asio::awaitable<ExchangeResult> Exchange::lead(Model& model, const ExchangeRequest& request,
                                               const std::string& key, const ModelCosts& price,
                                               std::optional<std::string> lock_token) {
  HeldLock held{*this, key, std::move(lock_token)};
  ExchangeResult result;
  result.storage_key = key;
  result.entry =
      co_await call_provider(model, request, key, price, result.attempts, result.relayed);
  result.cost_nano_usd = result.entry->cost_nano_usd;
  if (writes_cache(request.mode)) {
    // The L2 keeps the entry past its TTL for the stale policies' grace; reads check the TTL.
    const auto grace = std::max(request.stale_while_revalidate, request.stale_if_error);
    const auto retention = request.ttl.count() > 0 ? request.ttl + grace : request.ttl;
    if (request.write_behind && !cache_->strict()) {
      // Answer now from the L1; the encoding, the L2 write and the unlock follow on the writer
      // thread, off this request's path.
      const bool stored = cache_->put_l1(key, result.entry);
      std::optional<std::string> token = held.take();
      if (!try_write_behind(key, stored ? result.entry : nullptr, retention, token) && token) {
        co_await cache_->unlock(key, *token);  // over the limit: in the L1 only
      }
    } else {
      co_await cache_->put(key, result.entry, retention);
      if (auto token = held.take()) co_await cache_->unlock(key, *token);
    }
  }
  co_return std::move(result);
}

bool Exchange::abandoned(const ExchangeRequest& request, const std::string& key) {
  if (!request.caller_gone || !request.caller_gone()) return false;
  std::shared_ptr<Flight> flight;
  {
    std::lock_guard lock(flights_mutex_);
    const auto found = flights_.find(key);
    if (found != flights_.end()) flight = found->second;
  }
  if (!flight) return true;
  std::lock_guard lock(flight->mutex);
  return flight->waiters.empty();  // a caller that joined still waits for the answer
}

asio::awaitable<std::shared_ptr<const core::CacheEntry>> Exchange::call_provider(
    Model& model, const ExchangeRequest& request, const std::string& key, const ModelCosts& price,
    int& attempts, bool& relayed) {
  const NativeRequest& native = request.native;
  core::RetryPolicy policy(request.retry, request.retry_seed);
  auto* streaming =
      native.stream && request.relay ? dynamic_cast<StreamingModel*>(&model) : nullptr;
  std::size_t relayed_bytes = 0;
  const ChunkSink counting_relay = [&](std::string_view chunk) {
    relayed_bytes += chunk.size();
    request.relay(chunk);
  };
  for (;;) {
    ++attempts;
    // (Not a ?: with co_await in both arms: g++ 12 miscompiles that and frees a bad pointer.)
    NativeResponse resp;
    if (streaming) {
      resp = co_await streaming->call_streaming(native, counting_relay);
    } else {
      resp = co_await model.call(native);
    }
    relayed = relayed_bytes > 0;
    if (relayed && (resp.status < 200 || resp.status >= 300)) {
      // Part of an answer already reached the caller: another attempt would append a second one.
      const providers::ProviderErrorInfo info =
          providers::parse_error_body(native.provider, resp.status, resp.body);
      throw_provider_failure(native, resp, info, " in the middle of a relayed stream");
    }
    if (resp.status >= 200 && resp.status < 300) {
      auto entry = std::make_shared<core::CacheEntry>();
      entry->provider = std::string(to_string(native.provider));
      entry->model = native.model;
      entry->created_at_ms = clock_();
      entry->ttl_ms = request.ttl.count();
      if (resp.streamed) {
        entry->response = providers::sse_to_response(native.provider, resp.body);
        entry->stream = std::move(resp.body);
      } else {
        entry->response = std::move(resp.body);
      }
      // Throws ProviderError on garbage: nothing is cached and the caller learns why. Only the
      // usage is needed here (the cost); the answer goes out as the provider sent it.
      entry->usage = providers::parse_usage(native.provider, entry->response);
      entry->usage.requests = 1;
      entry->cost_nano_usd = cost_nano_usd(price, entry->usage);
      if (request.validate) request.validate(*entry);
      co_return entry;
    }

    const providers::ProviderErrorInfo info =
        providers::parse_error_body(native.provider, resp.status, resp.body);
    if (!is_retryable_status(resp.status)) throw_provider_failure(native, resp, info, "");

    core::RetryHint hint{resp.retry_after ? resp.retry_after : info.retry_delay};
    const core::RetryDecision decision = policy.next(hint);
    if (decision.give_up) {
      const std::string context =
          fmt::format(" after {} attempts and {} ms of waiting (max_wait {} ms)", policy.attempts(),
                      policy.waited().count(), request.retry.max_wait.count());
      if (resp.status == 429 || resp.status == 529) {
        throw RateLimitError(
            fmt::format("{}: rate limited (HTTP {} {}){}: {}", describe_call(native), resp.status,
                        info.type, context, info.message),
            policy.attempts(), policy.waited(), policy.last_retry_after());
      }
      throw_provider_failure(native, resp, info, context);
    }
    // Before and after the wait: a caller that hung up gets no more upstream calls.
    const auto stop_if_abandoned = [&] {
      if (!abandoned(request, key)) return;
      spdlog::info("{}: the caller is gone; no retry after {} attempts", describe_call(native),
                   policy.attempts());
      throw ProviderError(fmt::format("{}: the caller went away during the retries ({} attempts)",
                                      describe_call(native), policy.attempts()),
                          0, "abandoned", "");
    };
    stop_if_abandoned();
    asio::steady_timer timer(co_await asio::this_coro::executor, decision.wait);
    co_await timer.async_wait(asio::use_awaitable);
    stop_if_abandoned();
  }
}

}  // namespace llm_caching::exchange

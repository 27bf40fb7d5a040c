// The in-process single-flight of the exchange (docs/SINGLE_FLIGHT.md, "In one process"): one
// Flight per key whose call is out, the callers that wait for it, and the table of flights.
#pragma once

#include "core/entry.hpp"
#include "llm_caching/model.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace llm_caching::exchange {

/// How an in-process flight ended for its waiters: its answer, its error, or handed over (the
/// leader was cancelled: a waiter leads a new flight).
enum class FlightOutcome { answered, failed, handed_over };

/// One in-process call in flight for a key; callers that miss on the same key wait for it.
/// A waiter is its stored completion handler (no channel, no allocation of its own beyond the
/// handler's): the leader's finish wakes all the waiters of one executor with one post, which
/// resumes them one after the other on that executor.
struct Flight {
  using Outcome = FlightOutcome;
  /// A stored wait: the waiter's completion handler with what its wake-up needs, in one
  /// allocation (any_completion_handler is not used: its move assignment recurses in Boost 1.81).
  struct Waiter {
    std::uint64_t id = 0;
    boost::asio::any_io_executor executor;  ///< the waiter's: where it resumes
    /// The same, tracked: its io_context runs until it resumed.
    boost::asio::any_io_executor work;
    boost::asio::cancellation_slot slot;  ///< the waiter's own (cleared before it resumes)
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
  static void resume(Waiter& waiter, boost::system::error_code ec, Outcome result);

  /// Ends one waiter's wait with operation_aborted (its cancellation slot fired), unless the
  /// flight has already taken it to wake it.
  void cancel(std::uint64_t id);

  /// Records how the flight ended and wakes every waiter: handover (the leader was cancelled)
  /// hands it over, else an error fails it, else `e` answers it (`cached`: found in the L2).
  void finish(std::shared_ptr<const core::CacheEntry> e, std::exception_ptr err, bool handover,
              bool cached);

  /// Whether the flight is over already, and then how (no wait needed).
  bool is_over(Outcome& result);

  /// Whether a caller waits for this flight now.
  bool has_waiters();

  /// The wait itself (asio::async_initiate): stores the handler, or completes it at once when
  /// the flight is already over. `request` is parked in the wait (Waiter::parked) and is empty
  /// after it, unless the flight was handed over or the wait cancelled.
  template <typename CompletionToken>
  auto async_wait(NativeRequest& request, CompletionToken&& token) {
    namespace asio = boost::asio;
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
    void operator()(boost::asio::cancellation_type type) {
      if (type != boost::asio::cancellation_type::none) flight->cancel(id);
    }
  };
};

/// The flights out in one Exchange, one per storage key.
class FlightTable {
 public:
  /// The key's flight, and whether this call leads it (it created the flight).
  std::pair<std::shared_ptr<Flight>, bool> join(const std::string& key);
  /// A new flight for key, led by the caller; null when a flight for key is already out.
  std::shared_ptr<Flight> start(const std::string& key);
  /// Ends `flight` as key's flight (unless another flight has taken the key since).
  void remove(const std::string& key, const std::shared_ptr<Flight>& flight);
  /// Whether a caller waits for key's flight (false when none is out).
  bool has_waiters(const std::string& key);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;  // guarded by mutex_
};

/// Finishes a flight however its leader ends: answered, failed, or cancelled (an exception, or
/// the coroutine frame destroyed while suspended). A cancelled leader hands the flight over.
class FlightGuard {
 public:
  FlightGuard(FlightTable& table, std::shared_ptr<Flight> flight, const std::string& key)
      : table_(table), flight_(std::move(flight)), key_(key) {}
  FlightGuard(const FlightGuard&) = delete;
  FlightGuard& operator=(const FlightGuard&) = delete;
  /// Unless finished: the leader was cancelled, and the flight is handed over.
  ~FlightGuard();

  /// Takes the flight out of the table and wakes its waiters with the leader's end: `error`
  /// (operation_aborted hands the flight over), or `entry` (from_cache: found in the L2).
  void finish(std::shared_ptr<const core::CacheEntry> entry, std::exception_ptr error,
              bool from_cache);
  /// Whether a caller waits for this flight now.
  bool has_waiters() { return flight_->has_waiters(); }

 private:
  FlightTable& table_;
  std::shared_ptr<Flight> flight_;
  const std::string& key_;
  bool finished_ = false;
};

}  // namespace llm_caching::exchange

#include "exchange/flight.hpp"

#include <boost/system/system_error.hpp>

#include <algorithm>

namespace llm_caching::exchange {

namespace asio = boost::asio;

namespace {

/// The waiters of one executor, resumed by one post to it.
struct Batch {
  asio::any_io_executor executor;
  std::vector<Flight::WaiterPtr> waiters;
};

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

void Flight::resume(Waiter& waiter, boost::system::error_code ec, Outcome result) {
  if (waiter.slot.is_connected()) waiter.slot.clear();
  if (ec || result == Outcome::handed_over) *waiter.home = std::move(waiter.parked);
  waiter.complete(ec, result);
}

void Flight::cancel(std::uint64_t id) {
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

void Flight::finish(std::shared_ptr<const core::CacheEntry> e, std::exception_ptr err,
                    bool handover, bool cached) {
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
    // Work of this thread's own on that executor, until the post has returned: a post signals
    // the io_context's condition variable after it made the waiters runnable, and an io_context
    // that ends as soon as they resume must not end, and be destroyed, before. Released below,
    // it ends that io_context's run() through the io_context's lock (stop()), after the post.
    const asio::any_io_executor posting =
        asio::prefer(executor, asio::execution::outstanding_work.tracked);
    asio::post(executor, [waiters = std::move(batch.waiters), result]() mutable {
      for (auto& w : waiters) resume(*w, {}, result);
      // The waiters themselves (parked requests, handlers, tracked work) go with the vector,
      // after the last one resumed.
    });
  }
}

bool Flight::is_over(Outcome& result) {
  std::lock_guard lock(mutex);
  result = outcome;
  return done;
}

bool Flight::has_waiters() {
  std::lock_guard lock(mutex);
  return !waiters.empty();
}

std::pair<std::shared_ptr<Flight>, bool> FlightTable::join(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = flights_.try_emplace(key);
  if (inserted) it->second = std::make_shared<Flight>();
  return {it->second, inserted};
}

std::shared_ptr<Flight> FlightTable::start(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = flights_.try_emplace(key);
  if (!inserted) return nullptr;
  return it->second = std::make_shared<Flight>();
}

void FlightTable::remove(const std::string& key, const std::shared_ptr<Flight>& flight) {
  std::lock_guard lock(mutex_);
  auto it = flights_.find(key);
  if (it != flights_.end() && it->second == flight) flights_.erase(it);
}

bool FlightTable::has_waiters(const std::string& key) {
  std::shared_ptr<Flight> flight;
  {
    std::lock_guard lock(mutex_);
    const auto found = flights_.find(key);
    if (found != flights_.end()) flight = found->second;
  }
  return flight && flight->has_waiters();
}

void FlightGuard::finish(std::shared_ptr<const core::CacheEntry> entry, std::exception_ptr error,
                         bool from_cache) {
  table_.remove(key_, flight_);
  const bool handover = error && is_cancellation(error);
  flight_->finish(handover ? nullptr : std::move(entry), handover ? nullptr : error, handover,
                  from_cache && !error);
  finished_ = true;
}

FlightGuard::~FlightGuard() {
  if (!finished_)
    finish(nullptr,
           std::make_exception_ptr(boost::system::system_error(asio::error::operation_aborted)),
           false);
}

}  // namespace llm_caching::exchange

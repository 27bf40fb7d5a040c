// The single-flight of run_embeddings (embeddings.hpp), per input: which of the inputs the cache
// did not hold this call sends (leading their in-process flight and holding their cross-process
// lock), and which it waits for (another caller's flight in this process, another process's
// lock). Internal to exchange/embeddings*.cpp.
#pragma once

#include "exchange/cross_process_lock.hpp"
#include "exchange/embeddings.hpp"
#include "exchange/flight.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace llm_caching::exchange {

/// A run_embeddings call's state while it runs.
struct EmbeddingsCall {
  Exchange& exchange;
  Model& model;
  EmbeddingsRequest& request;
  EmbeddingsResult& result;
  std::int64_t now;
};

/// Inputs to send upstream in one request, each with the in-process flight it leads and the
/// cross-process lock it holds (null: none; a lock not handed on is released in the background).
struct EmbeddingsBatch {
  std::vector<std::size_t> send;
  std::vector<std::unique_ptr<FlightGuard>> guards;  ///< parallel to send
  std::vector<std::unique_ptr<HeldLock>> locks;      ///< parallel to send
  void add(std::size_t input, std::unique_ptr<FlightGuard> guard, std::unique_ptr<HeldLock> lock) {
    send.push_back(input);
    guards.push_back(std::move(guard));
    locks.push_back(std::move(lock));
  }
  bool empty() const noexcept { return send.empty(); }
};

struct EmbeddingsPlan {
  EmbeddingsBatch batch;  ///< sent first
  /// Inputs whose flight another caller in this process leads.
  std::vector<std::pair<std::size_t, std::shared_ptr<Flight>>> waits;
  /// Inputs whose in-process flight this call leads but whose cross-process lock another
  /// process holds: waited for once this call's own batch is sent.
  std::vector<std::pair<std::size_t, std::unique_ptr<FlightGuard>>> elsewhere;
};

/// An answer this call did not pay for: billed 0, its original cost avoided.
inline void take_unpaid(EmbeddingsResult& result, EmbeddedInput& in,
                        std::shared_ptr<const core::CacheEntry> entry) {
  result.avoided_nano_usd += entry->cost_nano_usd;
  in.entry = std::move(entry);
}

/// Joins each missing input's in-process flight: leads it (reading the cache once more, as an
/// answer may have landed between the look-up and the join) or waits for it. A led input of a
/// `use` call then takes its cross-process lock (ExchangeOptions::lock_ttl > 0): acquired, the
/// L2 is read once more and the input is sent holding it; held by another process, the input
/// waits (`elsewhere`); the lock store down, it is sent without.
boost::asio::awaitable<EmbeddingsPlan> plan_embeddings(EmbeddingsCall& call,
                                                       const std::vector<std::size_t>& missing);

/// Waits for the answers of the inputs in plan.elsewhere (lock_across_processes, within
/// ExchangeOptions::lock_wait in all): an answer another process stored is taken (coalesced);
/// the others (their holder failed or died, or the wait ran out) come back as the batch this
/// call sends itself, with the locks it took over.
boost::asio::awaitable<EmbeddingsBatch> wait_for_processes(EmbeddingsCall& call,
                                                           EmbeddingsPlan& plan);

/// Waits for the in-process flights other callers lead; the inputs whose leader was cancelled
/// come back as a batch to send (no flight, no lock).
boost::asio::awaitable<EmbeddingsBatch> wait_in_process(EmbeddingsCall& call, EmbeddingsPlan& plan);

}  // namespace llm_caching::exchange

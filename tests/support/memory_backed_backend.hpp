// A test double of the L2: a Backend whose every operation goes to an in-memory store, so that a
// test overrides only the operations it watches or breaks (a failing lock, a gated write, a
// ledger of calls). Shared by the exchange's and the tiers' unit tests.
#pragma once

#include "cache/backend.hpp"
#include "cache/memory_backend.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace llmc_test {

class MemoryBackedBackend : public llm_caching::cache::Backend {
 public:
  using milliseconds = std::chrono::milliseconds;
  llm_caching::cache::MemoryBackend store{llm_caching::MemoryOptions{}};

  boost::asio::awaitable<std::optional<std::string>> get(std::string key) override {
    co_return store.get_now(key);
  }
  boost::asio::awaitable<void> put(std::string key, std::string value, milliseconds ttl) override {
    store.put_now(std::move(key), std::move(value), ttl);
    co_return;
  }
  boost::asio::awaitable<bool> erase(std::string key) override { co_return store.erase_now(key); }
  boost::asio::awaitable<std::uint64_t> clear(std::string prefix) override {
    co_return store.clear_now(prefix);
  }
  boost::asio::awaitable<std::uint64_t> prune() override { co_return store.prune_now(); }
  boost::asio::awaitable<llm_caching::cache::BackendStats> stats() override {
    co_return store.stats_now();
  }
  std::string describe() const override { return "memory-backed://"; }
  boost::asio::awaitable<bool> try_lock(std::string k, std::string t, milliseconds ttl) override {
    co_return store.try_lock_now(k, t, ttl);
  }
  boost::asio::awaitable<void> unlock(std::string k, std::string t) override {
    store.unlock_now(k, t);
    co_return;
  }
};

}  // namespace llmc_test

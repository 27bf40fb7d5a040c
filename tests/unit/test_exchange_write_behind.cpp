// The exchange's write-behind on its own (src/exchange/write_behind.hpp, docs/SINGLE_FLIGHT.md
// "Write-behind"): an entry lands in the L2 before its lock goes, writes queued together share
// one batch, the limit, failures that still release the lock, the catch-up writer, and finish().
// The L2 is a fake over the in-memory backend that keeps a ledger of what reached it.
#include "exchange/write_behind.hpp"

#include "cache/memory_backend.hpp"
#include "cache/run_blocking.hpp"
#include "llm_caching/errors.hpp"
#include "support/memory_backed_backend.hpp"

#include <pthread.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace {

using namespace llm_caching;
using exchange::WriteBehind;
using exchange::WriteBehindOptions;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

/// Holds the L2 writes that wait at it until the test opens it (the first open() does).
class Gate {
 public:
  void open() {
    std::call_once(opened_once_, [this] { promise_.set_value(); });
  }
  void wait() const { opened_.wait(); }

 private:
  std::once_flag opened_once_;
  std::promise<void> promise_;
  std::shared_future<void> opened_ = promise_.get_future().share();
};

/// Opens the gate when the test leaves its scope, however it leaves (a failed ASSERT too), so
/// that a WriteBehind destroyed after it does not wait for ever for a write held at the gate.
struct OpenAtExit {
  Gate& gate;
  ~OpenAtExit() { gate.open(); }
};

/// Runs writes->finish() on a thread of its own; whether it returned within `patience`. If not,
/// the WriteBehind is left to that thread (leaked), so that the test fails rather than hangs.
bool finishes_within(std::unique_ptr<WriteBehind>& writes, std::chrono::seconds patience) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  WriteBehind* raw = writes.get();
  std::thread([raw, done] {
    raw->finish();
    done->set_value();
  }).detach();
  if (finished.wait_for(patience) == std::future_status::ready) return true;
  (void)writes.release();
  return false;
}

std::string this_thread_name() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

/// An in-memory L2 that writes down what reaches it: "put <key>" and "unlock <key>" in order,
/// each L2 write's size and the thread that made it. Its writes can be held at a gate (all, or
/// only the idle writer's), or fail.
class LedgerBackend final : public llmc_test::MemoryBackedBackend {
 public:
  bool batches = true;          // writes_batches()
  bool gated = false;           // every write waits at the gate
  bool gate_idle_only = false;  // only the idle writer's writes wait at the gate
  bool fail_writes = false;
  Gate gate;
  std::atomic<int> held_at_gate{0};

  std::vector<std::string> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::vector<std::size_t> write_sizes() const {
    std::lock_guard lock(mutex_);
    return write_sizes_;
  }
  std::vector<std::string> writer_threads() const {
    std::lock_guard lock(mutex_);
    return writer_threads_;
  }
  /// Whether `key`'s entry reached the store before its lock was released (both happened).
  bool landed_before_unlock(const std::string& key) const {
    const auto log = events();
    const auto put = std::find(log.begin(), log.end(), "put " + key);
    const auto unlock = std::find(log.begin(), log.end(), "unlock " + key);
    return put != log.end() && unlock != log.end() && put < unlock;
  }

  asio::awaitable<void> put(std::string key, std::string value, milliseconds ttl) override {
    std::vector<PutItem> one;
    one.push_back({std::move(key), std::move(value), ttl});
    write(std::move(one));
    co_return;
  }
  asio::awaitable<void> put_many(std::vector<PutItem> items) override {
    write(std::move(items));
    co_return;
  }
  bool writes_batches() const noexcept override { return batches; }
  asio::awaitable<void> unlock(std::string k, std::string t) override {
    store.unlock_now(k, t);
    std::lock_guard lock(mutex_);
    events_.push_back("unlock " + k.substr(std::string_view("llm-caching:lock:").size()));
    co_return;
  }

 private:
  void write(std::vector<PutItem> items) {
    const std::string thread = this_thread_name();
    if (gated || (gate_idle_only && thread == "llmc-l2-writer")) {
      ++held_at_gate;
      gate.wait();
    }
    if (fail_writes) throw CacheError("disk full");
    std::lock_guard lock(mutex_);
    write_sizes_.push_back(items.size());
    writer_threads_.push_back(thread);
    for (PutItem& item : items) {
      events_.push_back("put " + item.key);
      store.put_now(std::move(item.key), std::move(item.value), item.ttl);
    }
  }

  mutable std::mutex mutex_;
  std::vector<std::string> events_;
  std::vector<std::size_t> write_sizes_;
  std::vector<std::string> writer_threads_;
};

std::shared_ptr<const core::CacheEntry> entry_for(const std::string& text) {
  auto entry = std::make_shared<core::CacheEntry>();
  entry->provider = "openai";
  entry->model = "gpt-4o-mini";
  entry->created_at_ms = cache::system_now_ms();
  entry->response = R"({"answer": ")" + text + R"("})";
  return entry;
}

/// Polls `done` every millisecond for up to `patience`; whether it became true.
bool eventually(const std::function<bool()>& done, std::chrono::seconds patience = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

class WriteBehindTest : public ::testing::Test {
 protected:
  std::shared_ptr<LedgerBackend> backend_ = std::make_shared<LedgerBackend>();
  std::shared_ptr<cache::TieredCache> tiers_ =
      std::make_shared<cache::TieredCache>(backend_, kMiB, false);

  /// Takes key's cross-process lock as a leader would; its token.
  std::string lock(const std::string& key) {
    const std::string token = "token-of-" + key;
    EXPECT_EQ(cache::run_blocking(tiers_->try_lock(key, token, 30'000ms)),
              cache::TieredCache::LockOutcome::acquired);
    return token;
  }
  bool lock_is_free(const std::string& key) {
    const std::string lock = cache::TieredCache::lock_key(key);
    if (!backend_->store.try_lock_now(lock, "other-process", 1000ms)) return false;
    backend_->store.unlock_now(lock, "other-process");
    return true;
  }
  bool in_l2(const std::string& key) { return backend_->store.get_now(key).has_value(); }
};

TEST_F(WriteBehindTest, AnEntryLandsInTheL2BeforeItsLockIsReleased) {
  for (const bool batches : {true, false}) {
    SCOPED_TRACE(batches ? "batched writes (SQLite)" : "a write each (Redis)");
    backend_->batches = batches;
    const std::string key = batches ? "batched" : "each";
    {
      WriteBehind writes(tiers_, {});
      writes.queue(key, entry_for(key), 60'000ms, lock(key));
      EXPECT_FALSE(lock_is_free(key));
    }  // the destructor waits for the write and the release
    ASSERT_TRUE(in_l2(key));
    const auto decoded = core::decode_entry(*backend_->store.get_now(key));
    ASSERT_TRUE(std::holds_alternative<core::CacheEntry>(decoded));
    EXPECT_EQ(std::get<core::CacheEntry>(decoded).response, entry_for(key)->response);
    EXPECT_TRUE(lock_is_free(key));
    EXPECT_TRUE(backend_->landed_before_unlock(key));
  }
}

TEST_F(WriteBehindTest, ALockWithoutAnEntryIsOnlyReleased) {
  WriteBehind writes(tiers_, {});
  writes.queue("k", nullptr, {}, lock("k"));
  writes.finish();
  EXPECT_FALSE(in_l2("k"));
  EXPECT_TRUE(lock_is_free("k"));
  EXPECT_TRUE(backend_->write_sizes().empty());
}

TEST_F(WriteBehindTest, WritesQueuedWhileTheL2IsBusyShareOneWrite) {
  backend_->gated = true;
  constexpr int kWrites = 20;
  std::vector<std::string> keys;
  {
    WriteBehind writes(tiers_, {});
    const OpenAtExit open_at_exit{backend_->gate};
    for (int i = 0; i < kWrites; ++i) {
      keys.push_back("k" + std::to_string(i));
      writes.queue(keys.back(), entry_for(keys.back()), 60'000ms, lock(keys.back()));
    }
    // Every write waits behind the first L2 write (held at the gate).
    ASSERT_TRUE(eventually([&] { return backend_->held_at_gate.load() == 1; }));
    for (const std::string& key : keys) EXPECT_FALSE(lock_is_free(key)) << key;
    backend_->gate.open();
  }
  // Whatever the first write took, the rest queued behind it and went in one more.
  EXPECT_LE(backend_->write_sizes().size(), 2U);
  for (const std::string& key : keys) {
    EXPECT_TRUE(in_l2(key)) << key;
    EXPECT_TRUE(lock_is_free(key)) << key;
    EXPECT_TRUE(backend_->landed_before_unlock(key)) << key;
  }
}

TEST_F(WriteBehindTest, BeyondItsLimitNothingIsQueuedAndTheLockStaysWithTheCaller) {
  backend_->gated = true;
  WriteBehind writes(tiers_, {.limit = 2});
  const OpenAtExit open_at_exit{backend_->gate};
  std::vector<std::optional<std::string>> tokens;
  for (const std::string key : {"a", "b", "c"}) {
    tokens.emplace_back(lock(key));
    const bool queued = writes.try_queue(key, entry_for(key), 60'000ms, tokens.back());
    EXPECT_EQ(queued, key != "c") << key;
    // A queued write took the lock with it; a refused one left it with the caller.
    EXPECT_EQ(tokens.back().has_value(), key == "c") << key;
  }
  backend_->gate.open();
  writes.finish();
  EXPECT_TRUE(in_l2("a"));
  EXPECT_TRUE(in_l2("b"));
  EXPECT_FALSE(in_l2("c"));
  EXPECT_TRUE(lock_is_free("a"));
  EXPECT_FALSE(lock_is_free("c"));  // the caller's to release
  // Once the queue has room again, writes are taken again.
  std::optional<std::string> token = lock("d");
  EXPECT_TRUE(writes.try_queue("d", entry_for("d"), 60'000ms, token));
  writes.finish();
  EXPECT_TRUE(in_l2("d"));
}

TEST_F(WriteBehindTest, AFailedWriteStillReleasesItsLock) {
  backend_->fail_writes = true;  // the tiering absorbs and counts it (not strict)
  for (const bool batches : {true, false}) {
    backend_->batches = batches;
    const std::string key = batches ? "batched" : "each";
    WriteBehind writes(tiers_, {});
    writes.queue(key, entry_for(key), 60'000ms, lock(key));
    writes.finish();
    EXPECT_FALSE(in_l2(key));
    EXPECT_TRUE(lock_is_free(key)) << key;
  }
  EXPECT_EQ(cache::run_blocking(tiers_->stats()).backend_errors, 2U);
}

TEST_F(WriteBehindTest, TheIdleWriterTakesAtMost64WritesAtATimeAtIdlePriority) {
  backend_->gated = true;
  constexpr int kWrites = 200;
  // No catch-up writer (it would take up to 1,024): the idle writer writes them all, in chunks.
  WriteBehind writes(tiers_, {.catch_up = 1h});
  const OpenAtExit open_at_exit{backend_->gate};
  for (int i = 0; i < kWrites; ++i) {
    writes.queue("k" + std::to_string(i), entry_for("a"), 60'000ms, std::nullopt);
  }
  backend_->gate.open();
  ASSERT_TRUE(eventually([&] { return backend_->store.stats_now().entries == kWrites; }, 60s));
  const auto sizes = backend_->write_sizes();
  EXPECT_GE(sizes.size(), 4U);  // 200 writes in chunks of 64 at most
  for (const std::size_t size : sizes) EXPECT_LE(size, 64U);
  for (const std::string& thread : backend_->writer_threads()) EXPECT_EQ(thread, "llmc-l2-writer");
}

TEST_F(WriteBehindTest, WritesThatWaitForAStalledIdleWriterAreWrittenAtNormalPriority) {
  backend_->gate_idle_only = true;
  WriteBehind writes(tiers_, {.catch_up = 50ms});
  const OpenAtExit open_at_exit{backend_->gate};
  // The idle writer takes the first write and stalls (as when a busy machine starves it). On a
  // busy machine the catch-up writer may get there first: then the next write.
  std::vector<std::string> keys;
  while (backend_->held_at_gate.load() == 0) {
    ASSERT_LT(keys.size(), 20U);
    keys.push_back("k" + std::to_string(keys.size()));
    writes.queue(keys.back(), entry_for("a"), 60'000ms, lock(keys.back()));
    ASSERT_TRUE(
        eventually([&] { return backend_->held_at_gate.load() == 1 || in_l2(keys.back()); }));
  }
  const std::string stalled = keys.back();
  const std::string later = "later";
  writes.queue(later, entry_for("b"), 60'000ms, lock(later));
  // Written once it has waited 50 ms, by the catch-up writer, while the idle writer still stalls.
  ASSERT_TRUE(eventually([&] { return in_l2(later) && lock_is_free(later); }));
  EXPECT_FALSE(in_l2(stalled));
  EXPECT_FALSE(lock_is_free(stalled));
  const auto threads = backend_->writer_threads();
  ASSERT_FALSE(threads.empty());
  EXPECT_EQ(threads.back(), "llmc-l2-catchup");
  backend_->gate.open();
  writes.finish();
  EXPECT_TRUE(in_l2(stalled));
  EXPECT_TRUE(lock_is_free(stalled));
  EXPECT_TRUE(backend_->landed_before_unlock(later));
}

TEST_F(WriteBehindTest, FinishWritesWhatIsQueuedWithoutWaitingForTheCatchUpDelay) {
  backend_->gate_idle_only = true;
  constexpr int kQueued = 5;
  auto writes = std::make_unique<WriteBehind>(tiers_, WriteBehindOptions{.catch_up = 1h});
  const OpenAtExit open_at_exit{backend_->gate};
  writes->queue("first", entry_for("a"), 60'000ms, std::nullopt);
  ASSERT_TRUE(eventually([&] { return backend_->held_at_gate.load() == 1; }));
  for (int i = 0; i < kQueued; ++i) {
    writes->queue("k" + std::to_string(i), entry_for("a"), 60'000ms, std::nullopt);
  }
  // Were the catch-up writer not woken by finish(), the queued writes would wait an hour.
  std::atomic<bool> queued_landed_before_the_gate{false};
  std::thread gatekeeper([&] {
    queued_landed_before_the_gate =
        eventually([&] { return backend_->store.stats_now().entries == kQueued; });
    backend_->gate.open();
  });
  const bool finished = finishes_within(writes, 30s);
  gatekeeper.join();
  ASSERT_TRUE(finished);
  EXPECT_TRUE(queued_landed_before_the_gate.load());
  EXPECT_EQ(backend_->store.stats_now().entries, kQueued + 1);
}

}  // namespace

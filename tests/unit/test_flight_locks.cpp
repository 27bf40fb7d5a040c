// Cross-process single-flight (docs/SINGLE_FLIGHT.md): the lock primitives of each backend
// (memory, SQLite from two connections and from several processes), the tiering's failure policy
// for locks, and the exchange's behaviour around them (waiting for another holder's answer,
// taking over a dead or failed holder's lock, the bounded wait, write-behind).
#include "cache/memory_backend.hpp"
#include "cache/run_blocking.hpp"
#include "cache/sqlite_backend.hpp"
#include "cache/tiered_cache.hpp"
#include "core/thread_name.hpp"
#include "exchange/exchange.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/runtime.hpp"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <functional>
#include <future>
#include <set>
#include <thread>

#include "support/memory_backed_backend.hpp"
#include "support/scripted_model.hpp"
#include "support/test_env.hpp"

namespace llm_caching {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

struct FakeClock {
  std::shared_ptr<std::atomic<std::int64_t>> now =
      std::make_shared<std::atomic<std::int64_t>>(1'700'000'000'000);
  cache::NowMs fn() const {
    return [now = now] { return now->load(); };
  }
  void advance(std::int64_t ms) { *now += ms; }
};

// ---- the primitives, run against each backend that keeps locks ----

/// The lock contract every backend keeps, whatever holds the locks.
void expect_lock_contract(cache::Backend& first, cache::Backend& second, FakeClock& clock) {
  using cache::run_blocking;
  // One holder at a time, whichever connection asks.
  EXPECT_TRUE(run_blocking(first.try_lock("lock:a", "token-1", 1000ms)));
  EXPECT_FALSE(run_blocking(second.try_lock("lock:a", "token-2", 1000ms)));
  EXPECT_FALSE(run_blocking(first.try_lock("lock:a", "token-3", 1000ms)));
  // Other keys are independent.
  EXPECT_TRUE(run_blocking(second.try_lock("lock:b", "token-2", 1000ms)));

  // A wrong token never deletes the lock.
  run_blocking(second.unlock("lock:a", "token-2"));
  EXPECT_FALSE(run_blocking(second.try_lock("lock:a", "token-2", 1000ms)));
  // The holder's token does.
  run_blocking(second.unlock("lock:a", "token-1"));
  EXPECT_TRUE(run_blocking(second.try_lock("lock:a", "token-2", 1000ms)));

  // A lock whose ttl passed is taken over; its late holder cannot delete the successor's.
  clock.advance(1000);
  EXPECT_TRUE(run_blocking(first.try_lock("lock:a", "token-4", 1000ms)));
  run_blocking(second.unlock("lock:a", "token-2"));
  EXPECT_FALSE(run_blocking(second.try_lock("lock:a", "token-5", 1000ms)));
  clock.advance(999);
  EXPECT_FALSE(run_blocking(second.try_lock("lock:a", "token-5", 1000ms)));
  run_blocking(first.unlock("lock:a", "token-4"));
  EXPECT_TRUE(run_blocking(second.try_lock("lock:a", "token-5", 1000ms)));
}

TEST(MemoryBackendLocks, KeepTheLockContract) {
  FakeClock clock;
  cache::MemoryBackend backend(MemoryOptions{}, clock.fn());
  expect_lock_contract(backend, backend, clock);
}

TEST(MemoryBackendLocks, LocksAreNotEntries) {
  cache::MemoryBackend backend(MemoryOptions{});
  EXPECT_TRUE(backend.try_lock_now("k", "token", 1000ms));
  EXPECT_EQ(backend.get_now("k"), std::nullopt);
  EXPECT_EQ(backend.stats_now().entries, 0u);
  backend.put_now("k", "value", 0ms);
  EXPECT_FALSE(backend.try_lock_now("k", "other", 1000ms));  // the entry did not free the lock
}

class SqliteLocks : public ::testing::Test {
 protected:
  llmc_test::TempDir dir_;
  std::filesystem::path path_ = dir_.path() / "cache.db";
  FakeClock clock_;

  std::unique_ptr<cache::SqliteBackend> open() {
    return std::make_unique<cache::SqliteBackend>(SqliteOptions{.path = path_}, clock_.fn());
  }
  std::int64_t query_int(const std::string& sql) const {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK);
    const std::int64_t value =
        sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
  }
  void exec(const std::string& sql) const {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
};

TEST_F(SqliteLocks, TwoBackendsOnOneFileKeepTheLockContract) {
  auto first = open();
  auto second = open();
  using cache::run_blocking;
  // One holder at a time, whichever backend asks.
  EXPECT_TRUE(run_blocking(first->try_lock("lock:a", "token-1", 1000ms)));
  EXPECT_FALSE(run_blocking(second->try_lock("lock:a", "token-2", 1000ms)));
  EXPECT_FALSE(run_blocking(first->try_lock("lock:a", "token-3", 1000ms)));
  // Other keys are independent.
  EXPECT_TRUE(run_blocking(second->try_lock("lock:b", "token-2", 1000ms)));

  // A wrong token never releases the lock, nor does another backend that knows the token.
  run_blocking(first->unlock("lock:a", "token-2"));
  run_blocking(second->unlock("lock:a", "token-1"));
  EXPECT_FALSE(run_blocking(second->try_lock("lock:a", "token-2", 1000ms)));
  // The holder's token, through the holder's backend, does.
  run_blocking(first->unlock("lock:a", "token-1"));
  EXPECT_TRUE(run_blocking(second->try_lock("lock:a", "token-2", 1000ms)));

  // Inside one backend a token past its ttl is taken over; the late holder cannot release its
  // successor's lock.
  clock_.advance(1000);
  EXPECT_TRUE(run_blocking(second->try_lock("lock:a", "token-4", 1000ms)));
  run_blocking(second->unlock("lock:a", "token-2"));
  EXPECT_FALSE(run_blocking(first->try_lock("lock:a", "token-5", 1000ms)));
  // Across backends (processes) a live holder keeps its lock whatever its ttl: a waiter's
  // bounded wait (lock_wait) is what limits how long it holds others back.
  clock_.advance(10'000);
  EXPECT_FALSE(run_blocking(first->try_lock("lock:a", "token-5", 1000ms)));
  run_blocking(second->unlock("lock:a", "token-4"));
  EXPECT_TRUE(run_blocking(first->try_lock("lock:a", "token-5", 1000ms)));
}

TEST_F(SqliteLocks, ALockEndsWithItsHolder) {
  auto holder = open();
  auto survivor = open();
  ASSERT_TRUE(holder->try_lock_now("lock:k", "holder", 60'000ms));
  EXPECT_FALSE(survivor->try_lock_now("lock:k", "next", 60'000ms));
  holder.reset();  // what a process that dies does: its descriptors close, no unlock
  EXPECT_TRUE(survivor->try_lock_now("lock:k", "next", 60'000ms));
}

TEST_F(SqliteLocks, LocksLiveInAPrivateSideFileAndNeverInTheDatabase) {
  auto backend = open();
  ASSERT_TRUE(backend->try_lock_now("lock:k", "token", 1000ms));
  const auto side = std::filesystem::path(path_.string() + "-locks");
  struct stat st {};
  ASSERT_EQ(::stat(side.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 0);  // the locks are byte ranges, not data
  EXPECT_EQ(query_int("SELECT count(*) FROM sqlite_schema WHERE name = 'locks'"), 0);
  EXPECT_EQ(backend->stats_now().entries, 0u);
}

TEST_F(SqliteLocks, AFileFromThePreviousBuildWithALocksTableStillOpensAndLocks) {
  {
    auto backend = open();
    backend->put_now("entry", "value", 0ms);
  }
  // The previous build kept its locks in this table; a row left there by a dead holder.
  exec(
      "CREATE TABLE locks(key TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at INTEGER NOT "
      "NULL) WITHOUT ROWID; INSERT INTO locks VALUES ('lock:k', 'old', 9999999999999)");
  auto backend = open();
  EXPECT_EQ(backend->get_now("entry"), "value");
  EXPECT_TRUE(backend->try_lock_now("lock:k", "token", 500ms));
  EXPECT_EQ(query_int("SELECT value FROM meta WHERE name = 'schema_version'"),
            cache::kSqliteSchemaVersion);
}

TEST_F(SqliteLocks, AWaitEndsWhenTheHolderReleasesOrAtItsBound) {
  auto holder = open();
  auto waiter = open();
  ASSERT_TRUE(holder->try_lock_now("lock:k", "holder", 60'000ms));
  // Still held: the wait lasts its bound.
  const auto start = std::chrono::steady_clock::now();
  cache::run_blocking(waiter->wait_for_unlock("lock:k", 30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  EXPECT_TRUE(waiter->notifies_unlock());
  // Released during the wait: it ends, well before its 60 s bound.
  asio::io_context io;
  bool done = false;
  asio::co_spawn(io, waiter->wait_for_unlock("lock:k", 60'000ms),
                 [&](std::exception_ptr e) { done = !e; });
  asio::steady_timer release(io, 20ms);
  release.async_wait([&](boost::system::error_code) { holder->unlock_now("lock:k", "holder"); });
  io.run();
  EXPECT_TRUE(done);
  EXPECT_TRUE(waiter->try_lock_now("lock:k", "waiter", 1000ms));
}

TEST_F(SqliteLocks, OfProcessesRacingForOneLockExactlyOneWins) {
  open();  // the file exists before the race
  constexpr int kProcesses = 6;
  // Every child reports its outcome, then holds on (and so keeps a won lock) until the parent
  // closes `release`: a winner that exited early would free the lock for a late starter.
  int outcomes[2];
  int release[2];
  ASSERT_EQ(::pipe(outcomes), 0);
  ASSERT_EQ(::pipe(release), 0);
  std::vector<pid_t> children;
  for (int i = 0; i < kProcesses; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(release[1]);
      char outcome = '3';
      try {
        cache::SqliteBackend backend(SqliteOptions{.path = path_});
        outcome =
            backend.try_lock_now("lock:race", "token-" + std::to_string(i), 60'000ms) ? '0' : '1';
        (void)!::write(outcomes[1], &outcome, 1);
        char ignored;
        (void)!::read(release[0], &ignored, 1);  // returns at EOF: the parent closed it
      } catch (...) {
        (void)!::write(outcomes[1], &outcome, 1);
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  ::close(outcomes[1]);
  ::close(release[0]);
  int winners = 0;
  int losers = 0;
  for (int i = 0; i < kProcesses; ++i) {
    char outcome = 0;
    ASSERT_EQ(::read(outcomes[0], &outcome, 1), 1);
    winners += outcome == '0';
    losers += outcome == '1';
  }
  ::close(release[1]);
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  }
  ::close(outcomes[0]);
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(losers, kProcesses - 1);
}

// ---- the tiering's failure policy ----

using llmc_test::MemoryBackedBackend;

/// A backend whose locks fail (the store is down); everything else works.
class LockFailingBackend final : public MemoryBackedBackend {
 public:
  asio::awaitable<bool> try_lock(std::string, std::string, milliseconds) override {
    throw CacheError("lock store down");
    co_return false;
  }
  asio::awaitable<void> unlock(std::string, std::string) override {
    throw CacheError("lock store down");
    co_return;
  }
};

TEST(TieredCacheLocks, LockFailuresDegradeToNoLockOrRaiseWhenStrict) {
  auto backend = std::make_shared<LockFailingBackend>();
  cache::TieredCache degrading(backend, kMiB, false);
  EXPECT_EQ(cache::run_blocking(degrading.try_lock("k", "t", 1000ms)),
            cache::TieredCache::LockOutcome::unavailable);
  EXPECT_NO_THROW(cache::run_blocking(degrading.unlock("k", "t")));
  EXPECT_EQ(cache::run_blocking(degrading.stats()).backend_errors, 2u);

  cache::TieredCache strict(backend, kMiB, true);
  EXPECT_THROW(cache::run_blocking(strict.try_lock("k", "t", 1000ms)), CacheError);
}

TEST(TieredCacheLocks, LockKeysLiveBesideEntriesNotAmongThem) {
  auto backend = std::make_shared<cache::MemoryBackend>(MemoryOptions{});
  cache::TieredCache tiers(backend, kMiB, false);
  EXPECT_EQ(cache::run_blocking(tiers.try_lock("llm-caching:v1:ns:abc", "t", 1000ms)),
            cache::TieredCache::LockOutcome::acquired);
  EXPECT_FALSE(backend->try_lock_now("llm-caching:lock:llm-caching:v1:ns:abc", "u", 1000ms));
  EXPECT_EQ(cache::run_blocking(tiers.try_lock("llm-caching:v1:ns:abc", "u", 1000ms)),
            cache::TieredCache::LockOutcome::held_elsewhere);
}

// ---- the exchange across "processes": two Exchanges, each with its own tiers (and L1) over
// one SQLite file, as two processes would have ----

exchange::ExchangeRequest request_for(const std::string& prompt) {
  exchange::ExchangeRequest r;
  r.native.provider = Provider::openai;
  r.native.model = "gpt-4o-mini";
  r.native.body = {
      {"model", "gpt-4o-mini"},
      {"messages", boost::json::array{boost::json::object{{"role", "user"}, {"content", prompt}}}}};
  r.retry.initial_wait = 1ms;
  r.retry.max_wait = 0ms;
  return r;
}

class CrossProcessExchange : public ::testing::Test {
 protected:
  llmc_test::TempDir dir_;
  SqliteOptions file_{.path = dir_.path() / "shared.db"};
  exchange::ExchangeOptions options_{.lock_ttl = 30'000ms, .lock_wait = 60'000ms};

  std::shared_ptr<cache::TieredCache> tiers(bool strict = false) {
    return std::make_shared<cache::TieredCache>(std::make_shared<cache::SqliteBackend>(file_), kMiB,
                                                strict);
  }
  std::shared_ptr<cache::SqliteBackend> raw() {
    return std::make_shared<cache::SqliteBackend>(file_);
  }
  /// The storage key the exchange uses for request_for(prompt).
  static std::string storage_key_of(const std::string& prompt) {
    const auto request = request_for(prompt);
    return storage_key(
        "", derive_key(request.native.provider, request.native.model, request.native.body, "").hex);
  }
};

TEST_F(CrossProcessExchange, AWaiterInAnotherProcessGetsTheHoldersAnswerBilledZero) {
  // Whether the L2 is read before the lock and after it, or once under it (the gateway).
  for (const bool under_lock : {false, true}) {
    SCOPED_TRACE(under_lock ? "read under the lock" : "read before the lock");
    exchange::Exchange a(tiers(), exchange::system_now_ms, options_);
    exchange::Exchange b(tiers(), exchange::system_now_ms, options_);
    testing::ScriptedModel model;
    model.set_delay(300ms);
    asio::io_context io;
    std::vector<exchange::ExchangeResult> results;  // in the order they were answered
    for (exchange::Exchange* e : {&a, &b}) {
      auto request = request_for(under_lock ? "shared under lock" : "shared");
      request.read_l2_under_lock = under_lock;
      asio::co_spawn(io, e->run(model, std::move(request)),
                     [&](std::exception_ptr error, exchange::ExchangeResult r) {
                       ASSERT_FALSE(error);
                       results.push_back(std::move(r));
                     });
    }
    io.run();
    ASSERT_EQ(results.size(), 2u);
    const exchange::ExchangeResult& holder = results[0];
    const exchange::ExchangeResult& waiter = results[1];
    EXPECT_EQ(model.calls(), 1);
    EXPECT_FALSE(holder.coalesced);
    EXPECT_GT(holder.cost_nano_usd, 0);
    EXPECT_TRUE(waiter.coalesced);
    EXPECT_FALSE(waiter.cache_hit);
    EXPECT_EQ(waiter.cost_nano_usd, 0);
    EXPECT_EQ(waiter.avoided_nano_usd, holder.cost_nano_usd);
    EXPECT_EQ(waiter.entry->response, holder.entry->response);
    // The lock is gone once the answer landed.
    EXPECT_TRUE(raw()->try_lock_now(cache::TieredCache::lock_key(holder.storage_key), "x", 1000ms));
  }
}

TEST_F(CrossProcessExchange, ALockLeftByAHolderThatEndedIsFreedWithIt) {
  exchange::Exchange survivor(tiers(), exchange::system_now_ms, options_);
  const std::string key = storage_key_of("orphaned");
  // A holder that died mid-call (its backend is gone as soon as the statement ends): the lock
  // went with it, so the survivor calls at once instead of waiting out the 30 s ttl.
  ASSERT_TRUE(raw()->try_lock_now(cache::TieredCache::lock_key(key), "dead", 30'000ms));
  testing::ScriptedModel model;
  const auto result = cache::run_blocking(survivor.run(model, request_for("orphaned")));
  EXPECT_EQ(model.calls(), 1);
  EXPECT_FALSE(result.coalesced);
  EXPECT_EQ(result.storage_key, key);
  EXPECT_NE(raw()->get_now(key), std::nullopt);
}

TEST_F(CrossProcessExchange, AFailedHolderReleasesItsLockAndAWaiterCallsItself) {
  exchange::Exchange a(tiers(), exchange::system_now_ms, options_);
  exchange::Exchange b(tiers(), exchange::system_now_ms, options_);
  testing::ScriptedModel model;
  model.set_delay(200ms);
  model.script(NativeResponse{400, R"({"error": {"message": "bad", "type": "invalid"}})"});
  asio::io_context io;
  std::exception_ptr first_error;
  std::optional<exchange::ExchangeResult> second;
  asio::co_spawn(io, a.run(model, request_for("fails once")),
                 [&](std::exception_ptr e, exchange::ExchangeResult) { first_error = e; });
  asio::co_spawn(io, b.run(model, request_for("fails once")),
                 [&](std::exception_ptr e, exchange::ExchangeResult r) {
                   ASSERT_FALSE(e);
                   second = std::move(r);
                 });
  io.run();
  EXPECT_TRUE(first_error);
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->coalesced);
  EXPECT_EQ(model.calls(), 2);
}

TEST_F(CrossProcessExchange, AfterTheBoundedWaitAWaiterCallsWithoutTheLock) {
  exchange::Exchange waiter(tiers(), exchange::system_now_ms,
                            {.lock_ttl = 30'000ms, .lock_wait = 100ms});
  const std::string key = storage_key_of("stuck");
  const auto holder = raw();  // a live holder in another process
  ASSERT_TRUE(holder->try_lock_now(cache::TieredCache::lock_key(key), "slow-holder", 60'000ms));
  testing::ScriptedModel model;
  const auto result = cache::run_blocking(waiter.run(model, request_for("stuck")));
  EXPECT_EQ(model.calls(), 1);
  EXPECT_FALSE(result.coalesced);
  EXPECT_NE(raw()->get_now(key), std::nullopt);
  // It never touched the other holder's lock.
  EXPECT_FALSE(raw()->try_lock_now(cache::TieredCache::lock_key(key), "someone", 1000ms));
}

TEST_F(CrossProcessExchange, ZeroLockTtlTurnsCrossProcessLockingOff) {
  exchange::Exchange plain(tiers(), exchange::system_now_ms,
                           {.lock_ttl = 0ms, .lock_wait = 60'000ms});
  const std::string key = storage_key_of("unlocked");
  const auto holder = raw();  // a live holder in another process
  ASSERT_TRUE(holder->try_lock_now(cache::TieredCache::lock_key(key), "other", 60'000ms));
  testing::ScriptedModel model;
  const auto result = cache::run_blocking(plain.run(model, request_for("unlocked")));
  EXPECT_EQ(model.calls(), 1);  // did not wait for the other lock
  EXPECT_FALSE(result.coalesced);
}

TEST_F(CrossProcessExchange, LockStoreDownStillAnswers) {
  auto backend = std::make_shared<LockFailingBackend>();
  exchange::Exchange e(std::make_shared<cache::TieredCache>(backend, kMiB, false),
                       exchange::system_now_ms, options_);
  testing::ScriptedModel model;
  const auto result = cache::run_blocking(e.run(model, request_for("no locks")));
  EXPECT_EQ(model.calls(), 1);
  EXPECT_NE(backend->store.get_now(result.storage_key), std::nullopt);

  exchange::Exchange strict(std::make_shared<cache::TieredCache>(backend, kMiB, true),
                            exchange::system_now_ms, options_);
  EXPECT_THROW(cache::run_blocking(strict.run(model, request_for("strict no locks"))), CacheError);
}

TEST(ExchangeOptions, EnvironmentOverridesTheDefaultsAndBadValuesAreRefused) {
  {
    llmc_test::ScopedEnv ttl("LLM_CACHE_LOCK_TTL_MS", std::nullopt);
    llmc_test::ScopedEnv wait("LLM_CACHE_LOCK_WAIT_MS", std::nullopt);
    const auto defaults = RuntimeOptions::from_environment();
    EXPECT_EQ(defaults.lock_ttl, 30'000ms);
    EXPECT_EQ(defaults.lock_wait, 60'000ms);
  }
  {
    llmc_test::ScopedEnv ttl("LLM_CACHE_LOCK_TTL_MS", "1500");
    llmc_test::ScopedEnv wait("LLM_CACHE_LOCK_WAIT_MS", std::nullopt);
    const auto options = RuntimeOptions::from_environment();
    EXPECT_EQ(options.lock_ttl, 1500ms);
    EXPECT_EQ(options.lock_wait, 3000ms);
  }
  {
    llmc_test::ScopedEnv ttl("LLM_CACHE_LOCK_TTL_MS", "1500");
    llmc_test::ScopedEnv wait("LLM_CACHE_LOCK_WAIT_MS", "10");
    EXPECT_EQ(RuntimeOptions::from_environment().lock_wait, 10ms);
  }
  for (const char* bad : {"", "-1", "12ms", "99999999999"}) {
    llmc_test::ScopedEnv ttl("LLM_CACHE_LOCK_TTL_MS", bad);
    try {
      RuntimeOptions::from_environment();
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const ConfigurationError& e) {
      EXPECT_NE(std::string(e.what()).find("LLM_CACHE_LOCK_TTL_MS"), std::string::npos);
    }
  }
}

// ---- write-behind ----

/// Holds the L2 writes that wait at it until the test opens it, once.
class Gate {
 public:
  void open() { promise_.set_value(); }
  void wait() const { opened_.wait(); }

 private:
  std::promise<void> promise_;
  std::shared_future<void> opened_ = promise_.get_future().share();
};

/// A memory L2 whose writes wait until the test opens the gate.
class GatedBackend final : public MemoryBackedBackend {
 public:
  Gate gate;
  std::atomic<int> puts{0};

  asio::awaitable<void> put(std::string key, std::string value, milliseconds ttl) override {
    gate.wait();
    store.put_now(std::move(key), std::move(value), ttl);
    ++puts;
    co_return;
  }
};

TEST(WriteBehind, AnswersFromTheL1ThenLandsTheEntryBeforeReleasingTheLock) {
  auto backend = std::make_shared<GatedBackend>();
  auto tiers = std::make_shared<cache::TieredCache>(backend, kMiB, false);
  testing::ScriptedModel model;
  exchange::ExchangeResult result;
  {
    exchange::Exchange e(tiers, exchange::system_now_ms,
                         {.lock_ttl = 30'000ms, .lock_wait = 60'000ms});
    auto request = request_for("behind");
    request.write_behind = true;
    result = cache::run_blocking(e.run(model, std::move(request)));
    const std::string lock = cache::TieredCache::lock_key(result.storage_key);
    // Answered while the L2 write still waits: the L1 has it, the L2 not yet, the lock is held.
    EXPECT_EQ(backend->puts.load(), 0);
    EXPECT_EQ(backend->store.get_now(result.storage_key), std::nullopt);
    EXPECT_NE(cache::run_blocking(tiers->get(result.storage_key, exchange::system_now_ms())),
              nullptr);
    EXPECT_FALSE(backend->store.try_lock_now(lock, "other-process", 1000ms));
    backend->gate.open();
  }  // ~Exchange waits for the write-behind
  EXPECT_EQ(backend->puts.load(), 1);
  EXPECT_NE(backend->store.get_now(result.storage_key), std::nullopt);
  EXPECT_TRUE(backend->store.try_lock_now(cache::TieredCache::lock_key(result.storage_key),
                                          "other-process", 1000ms));
  EXPECT_EQ(model.calls(), 1);
}

/// Counts the unlocks that came before their entry landed in the store.
class UnlockCheckingBackend : public MemoryBackedBackend {
 public:
  std::atomic<int> unlocked_before_landing{0};

  asio::awaitable<void> unlock(std::string k, std::string t) override {
    // The lock key is "llm-caching:lock:<storage key>": that entry must be in the store now.
    const std::string storage_key = k.substr(std::string_view("llm-caching:lock:").size());
    if (!store.get_now(storage_key)) ++unlocked_before_landing;
    store.unlock_now(k, t);
    co_return;
  }
};

/// Counts the L2 writes that arrive together (put_many) and holds each until `gate` opens.
class BatchCountingBackend final : public UnlockCheckingBackend {
 public:
  Gate gate;
  std::atomic<int> batches{0};
  std::atomic<int> items{0};
  std::atomic<std::size_t> largest{0};

  bool writes_batches() const noexcept override { return true; }
  asio::awaitable<void> put_many(std::vector<PutItem> batch) override {
    gate.wait();
    ++batches;
    for (std::size_t seen = largest.load(); seen < batch.size();) {
      largest.compare_exchange_weak(seen, batch.size());
    }
    for (PutItem& item : batch) {
      ++items;
      store.put_now(std::move(item.key), std::move(item.value), item.ttl);
    }
    co_return;
  }
};

/// A backend with a round trip per write (as Redis): puts take 20 ms on a timer.
class RoundTripBackend final : public UnlockCheckingBackend {
 public:
  int in_flight = 0;  // the writer is one thread
  int most_in_flight = 0;

  asio::awaitable<void> put(std::string key, std::string value, milliseconds ttl) override {
    most_in_flight = std::max(most_in_flight, ++in_flight);
    asio::steady_timer round_trip(co_await asio::this_coro::executor, 20ms);
    co_await round_trip.async_wait(asio::use_awaitable);
    store.put_now(std::move(key), std::move(value), ttl);
    --in_flight;
  }
};

/// Polls `done` every millisecond for up to `patience`; whether it became true.
bool eventually(const std::function<bool()>& done,
                std::chrono::seconds patience = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

/// `count` distinct write-behind misses at once through one Exchange over `backend`; `after_run`
/// runs once every caller is answered, before ~Exchange waits for the writes. Returns the keys.
std::vector<std::string> write_behind_misses(std::shared_ptr<cache::Backend> backend,
                                             testing::ScriptedModel& model, int count,
                                             const std::function<void()>& after_run,
                                             exchange::ExchangeOptions options = {
                                                 .lock_ttl = 30'000ms, .lock_wait = 60'000ms}) {
  auto tiers = std::make_shared<cache::TieredCache>(std::move(backend), kMiB, false);
  std::vector<std::string> keys;
  {
    exchange::Exchange e(tiers, exchange::system_now_ms, options);
    asio::io_context io;
    for (int i = 0; i < count; ++i) {
      auto request = request_for("write-behind " + std::to_string(i));
      request.write_behind = true;
      asio::co_spawn(io, e.run(model, std::move(request)),
                     [&](std::exception_ptr error, exchange::ExchangeResult r) {
                       ASSERT_FALSE(error);
                       keys.push_back(r.storage_key);
                     });
    }
    io.run();
    after_run();
  }  // ~Exchange waits for the write-behinds
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(count));
  return keys;
}

TEST(WriteBehind, MissesThatEndTogetherShareOneL2WriteAndEachLandsBeforeItsUnlock) {
  auto backend = std::make_shared<BatchCountingBackend>();
  testing::ScriptedModel model;
  constexpr int kMisses = 20;
  // Every caller is answered while the first L2 write is still held at the gate.
  const auto keys = write_behind_misses(backend, model, kMisses, [&] { backend->gate.open(); });
  EXPECT_EQ(model.calls(), kMisses);
  EXPECT_EQ(backend->items.load(), kMisses);
  // Whatever the first write took, the rest queued behind it and went in one more.
  EXPECT_LE(backend->batches.load(), 2);
  EXPECT_EQ(backend->unlocked_before_landing.load(), 0);
  for (const std::string& key : keys) {
    EXPECT_NE(backend->store.get_now(key), std::nullopt);
    EXPECT_TRUE(backend->store.try_lock_now(cache::TieredCache::lock_key(key), "next", 1000ms));
  }
}

TEST(WriteBehind, TheIdleWriterTakesAtMost64WritesAtATime) {
  auto backend = std::make_shared<BatchCountingBackend>();
  testing::ScriptedModel model;
  constexpr int kMisses = 200;
  // No catch-up writer (it would take up to 1,024): the idle writer lands them all, in chunks,
  // before ~Exchange (which would hand what is left to the catch-up writer).
  bool all_landed = false;
  write_behind_misses(backend, model, kMisses,
                      [&] {
                        backend->gate.open();
                        all_landed =
                            eventually([&] { return backend->items.load() == kMisses; }, 60s);
                      },
                      {.lock_ttl = 30'000ms, .lock_wait = 60'000ms, .write_behind_catch_up = 1h});
  EXPECT_TRUE(all_landed);
  EXPECT_EQ(backend->items.load(), kMisses);
  EXPECT_LE(backend->largest.load(), 64U);
  EXPECT_GE(backend->batches.load(), 4);  // 200 writes in chunks of 64 at most
  EXPECT_EQ(backend->unlocked_before_landing.load(), 0);
}

TEST(WriteBehind, WithoutBatchedWritesTheWritesOfABatchRunTogether) {
  auto backend = std::make_shared<RoundTripBackend>();
  testing::ScriptedModel model;
  model.set_delay(50ms);  // the ten answers arrive together, so they queue within one linger
  const auto keys = write_behind_misses(backend, model, 10, [] {});
  EXPECT_GT(backend->most_in_flight, 1);  // not one round trip after the other
  EXPECT_EQ(backend->unlocked_before_landing.load(), 0);
  for (const std::string& key : keys) EXPECT_NE(backend->store.get_now(key), std::nullopt);
}

TEST(WriteBehind, WithoutTheFlagOrWhenStrictTheL2HasTheEntryWhenTheCallReturns) {
  for (const bool strict : {false, true}) {
    auto backend = std::make_shared<cache::MemoryBackend>(MemoryOptions{});
    auto tiers = std::make_shared<cache::TieredCache>(backend, kMiB, strict);
    exchange::Exchange e(tiers, exchange::system_now_ms,
                         {.lock_ttl = 30'000ms, .lock_wait = 60'000ms});
    testing::ScriptedModel model;
    auto request = request_for("through");
    request.write_behind = strict;  // strict overrides the flag: a failed write must raise
    const auto result = cache::run_blocking(e.run(model, std::move(request)));
    EXPECT_NE(backend->get_now(result.storage_key), std::nullopt) << "strict " << strict;
    EXPECT_TRUE(
        backend->try_lock_now(cache::TieredCache::lock_key(result.storage_key), "next", 1000ms))
        << "strict " << strict;
  }
}

TEST(WriteBehind, BeyondItsLimitAMissStaysInTheL1AndReleasesItsLockAtOnce) {
  auto backend = std::make_shared<GatedBackend>();  // every L2 write waits at the gate
  auto tiers = std::make_shared<cache::TieredCache>(backend, kMiB, false);
  testing::ScriptedModel model;
  constexpr int kMisses = 5;
  constexpr std::size_t kLimit = 3;
  std::vector<std::string> keys;
  const auto lock_is_free = [&](const std::string& key) {
    const std::string lock = cache::TieredCache::lock_key(key);
    if (!backend->store.try_lock_now(lock, "other-process", 1000ms)) return false;
    backend->store.unlock_now(lock, "other-process");
    return true;
  };
  {
    exchange::Exchange e(
        tiers, exchange::system_now_ms,
        {.lock_ttl = 30'000ms, .lock_wait = 60'000ms, .write_behind_limit = kLimit});
    for (int i = 0; i < kMisses; ++i) {
      auto request = request_for("limit " + std::to_string(i));
      request.write_behind = true;
      keys.push_back(cache::run_blocking(e.run(model, std::move(request))).storage_key);
    }
    // Every miss was answered and is in the L1. The first three wait for their L2 write and
    // hold their locks; the others were not queued, and their locks are already free.
    for (int i = 0; i < kMisses; ++i) {
      EXPECT_NE(tiers->get_l1(keys[i], exchange::system_now_ms()), nullptr) << i;
      EXPECT_EQ(lock_is_free(keys[i]), i >= static_cast<int>(kLimit)) << i;
    }
    backend->gate.open();
  }  // ~Exchange waits for the queued writes
  EXPECT_EQ(backend->puts.load(), static_cast<int>(kLimit));
  for (int i = 0; i < kMisses; ++i) {
    EXPECT_EQ(backend->store.get_now(keys[i]).has_value(), i < static_cast<int>(kLimit)) << i;
    EXPECT_TRUE(lock_is_free(keys[i])) << i;
  }
  EXPECT_EQ(model.calls(), kMisses);
}

/// A batching L2 whose writes from an idle-priority thread wait at the gate, as the idle writer
/// does on a machine whose CPUs stay busy; writes from any other thread land at once.
class StarvedIdleBackend final : public UnlockCheckingBackend {
 public:
  Gate gate;
  std::atomic<int> idle_batches_waiting{0};
  std::atomic<int> landed_at_normal_priority{0};

  bool writes_batches() const noexcept override { return true; }
  asio::awaitable<void> put_many(std::vector<PutItem> batch) override {
    const bool idle = core::this_thread_is_idle;
    if (idle) {
      ++idle_batches_waiting;
      gate.wait();
    }
    for (PutItem& item : batch) {
      store.put_now(std::move(item.key), std::move(item.value), item.ttl);
      if (!idle) ++landed_at_normal_priority;
    }
    co_return;
  }
};

TEST(WriteBehind, WritesThatWaitForAStarvedIdleWriterAreWrittenAtNormalPriority) {
  auto backend = std::make_shared<StarvedIdleBackend>();
  auto tiers = std::make_shared<cache::TieredCache>(backend, kMiB, false);
  testing::ScriptedModel model;
  constexpr int kLater = 15;
  const auto lock_is_free = [&](const std::string& key) {
    const std::string lock = cache::TieredCache::lock_key(key);
    if (!backend->store.try_lock_now(lock, "other-process", 1000ms)) return false;
    backend->store.unlock_now(lock, "other-process");
    return true;
  };
  std::vector<std::string> keys;
  const auto miss = [&](exchange::Exchange& e) {
    auto request = request_for("starved " + std::to_string(keys.size()));
    request.write_behind = true;
    keys.push_back(cache::run_blocking(e.run(model, std::move(request))).storage_key);
  };
  {
    // A limit below the misses: without the catch-up writer, the ones past it would be dropped.
    exchange::Exchange e(tiers, exchange::system_now_ms,
                         {.lock_ttl = 30'000ms,
                          .lock_wait = 60'000ms,
                          .write_behind_limit = 10,
                          .write_behind_catch_up = 50ms});
    // The idle writer takes a write and stalls. (On a busy machine the catch-up writer can get
    // there first: then the next miss.)
    while (backend->idle_batches_waiting.load() == 0) {
      ASSERT_LT(keys.size(), 20U);
      miss(e);
      ASSERT_TRUE(eventually([&] {
        return backend->idle_batches_waiting.load() == 1 ||
               backend->landed_at_normal_priority.load() == static_cast<int>(keys.size());
      }));
    }
    const std::size_t held = keys.size() - 1;
    // The later misses come one at a time, each after the previous landed.
    for (int i = 1; i <= kLater; ++i) {
      miss(e);
      ASSERT_TRUE(eventually([&] {
        return backend->landed_at_normal_priority.load() == static_cast<int>(held) + i;
      })) << i;
    }
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (i == held) continue;
      EXPECT_NE(backend->store.get_now(keys[i]), std::nullopt) << i;
      EXPECT_TRUE(lock_is_free(keys[i])) << i;
    }
    // The idle writer's is still with it, its lock held.
    EXPECT_EQ(backend->store.get_now(keys[held]), std::nullopt);
    EXPECT_FALSE(lock_is_free(keys[held]));
    EXPECT_EQ(backend->idle_batches_waiting.load(), 1);
    backend->gate.open();
  }  // ~Exchange waits for the idle writer's batch
  for (const std::string& key : keys) {
    EXPECT_NE(backend->store.get_now(key), std::nullopt);
    EXPECT_TRUE(lock_is_free(key));
  }
  EXPECT_EQ(backend->unlocked_before_landing.load(), 0);
  EXPECT_EQ(model.calls(), static_cast<int>(keys.size()));
}

TEST(WriteBehind, AnExchangeThatEndsWritesWhatIsQueuedWithoutWaitingForTheCatchUpDelay) {
  auto backend = std::make_shared<StarvedIdleBackend>();
  auto tiers = std::make_shared<cache::TieredCache>(backend, kMiB, false);
  testing::ScriptedModel model;
  constexpr int kQueued = 5;
  std::atomic<bool> queued_landed_before_the_gate{false};
  std::thread gatekeeper;
  {
    // Were the catch-up not woken by ~Exchange, the queued writes would wait an hour (and the
    // test time out).
    exchange::Exchange e(
        tiers, exchange::system_now_ms,
        {.lock_ttl = 30'000ms, .lock_wait = 60'000ms, .write_behind_catch_up = 1h});
    for (int i = 0; i <= kQueued; ++i) {
      auto request = request_for("ending " + std::to_string(i));
      request.write_behind = true;
      cache::run_blocking(e.run(model, std::move(request)));
      if (i == 0)
        ASSERT_TRUE(eventually([&] { return backend->idle_batches_waiting.load() == 1; }));
    }
    gatekeeper = std::thread([&] {
      queued_landed_before_the_gate =
          eventually([&] { return backend->landed_at_normal_priority.load() == kQueued; });
      backend->gate.open();
    });
  }  // ~Exchange: the catch-up writer writes the queued five while the idle writer still waits
  gatekeeper.join();
  EXPECT_TRUE(queued_landed_before_the_gate.load());
  EXPECT_EQ(backend->store.stats_now().entries, kQueued + 1);
  EXPECT_EQ(backend->unlocked_before_landing.load(), 0);
}

TEST(WriteBehind, InProcessWaitersAreAnsweredWithTheLeader) {
  auto backend = std::make_shared<GatedBackend>();
  auto tiers = std::make_shared<cache::TieredCache>(backend, kMiB, false);
  testing::ScriptedModel model;
  model.set_delay(100ms);
  {
    exchange::Exchange e(tiers, exchange::system_now_ms,
                         {.lock_ttl = 30'000ms, .lock_wait = 60'000ms});
    asio::io_context io;
    int answered = 0;
    int coalesced = 0;
    for (int i = 0; i < 20; ++i) {
      auto request = request_for("burst");
      request.write_behind = true;
      asio::co_spawn(io, e.run(model, std::move(request)),
                     [&](std::exception_ptr error, exchange::ExchangeResult r) {
                       ASSERT_FALSE(error);
                       ++answered;
                       coalesced += r.coalesced ? 1 : 0;
                     });
    }
    io.run();  // returns while the L2 write is still held at the gate
    EXPECT_EQ(answered, 20);
    EXPECT_EQ(coalesced, 19);
    EXPECT_EQ(backend->puts.load(), 0);
    backend->gate.open();
  }
  EXPECT_EQ(backend->puts.load(), 1);
  EXPECT_EQ(model.calls(), 1);
}

// ---- read_l2_under_lock (the gateway): an L1 miss reads the L2 once, under the lock ----

/// Counts L2 reads, lock takes and releases; a read can be made to take `read_delay` on a
/// timer (so that other callers arrive while it is out); locks can claim to be round trips.
class ReadCountingBackend final : public MemoryBackedBackend {
 public:
  std::atomic<int> reads{0};
  std::atomic<int> locks{0};
  std::atomic<int> unlocks{0};
  milliseconds read_delay{0};
  bool remote_locks = false;

  asio::awaitable<std::optional<std::string>> get(std::string key) override {
    ++reads;
    if (read_delay.count() > 0) {
      asio::steady_timer wait(co_await asio::this_coro::executor, read_delay);
      co_await wait.async_wait(asio::use_awaitable);
    }
    co_return store.get_now(key);
  }
  asio::awaitable<bool> try_lock(std::string k, std::string t, milliseconds ttl) override {
    ++locks;
    co_return store.try_lock_now(k, t, ttl);
  }
  asio::awaitable<void> unlock(std::string k, std::string t) override {
    ++unlocks;
    store.unlock_now(k, t);
    co_return;
  }
  bool locks_cost_a_round_trip() const noexcept override { return remote_locks; }
};

exchange::ExchangeRequest under_lock(const std::string& prompt) {
  auto request = request_for(prompt);
  request.read_l2_under_lock = true;
  return request;
}

constexpr exchange::ExchangeOptions kLocking{.lock_ttl = 30'000ms, .lock_wait = 60'000ms};

/// A "process": an Exchange with its own (empty) L1 over the shared `backend`.
exchange::Exchange process_over(std::shared_ptr<cache::Backend> backend) {
  return exchange::Exchange(std::make_shared<cache::TieredCache>(std::move(backend), kMiB, false),
                            exchange::system_now_ms, kLocking);
}

TEST(ReadL2UnderLock, AMissReadsTheL2OnceWhereItOtherwiseReadsItTwice) {
  auto backend = std::make_shared<ReadCountingBackend>();
  exchange::Exchange e = process_over(backend);
  testing::ScriptedModel model;
  const auto once = cache::run_blocking(e.run(model, under_lock("one read")));
  EXPECT_FALSE(once.cache_hit);
  EXPECT_EQ(backend->reads.load(), 1);
  EXPECT_EQ(backend->locks.load(), 1);
  EXPECT_EQ(backend->unlocks.load(), 1);
  // The same miss without the flag: a read before the lock, and one after it.
  const auto twice = cache::run_blocking(e.run(model, request_for("two reads")));
  EXPECT_FALSE(twice.cache_hit);
  EXPECT_EQ(backend->reads.load(), 3);
  EXPECT_EQ(model.calls(), 2);
  EXPECT_NE(backend->store.get_now(once.storage_key), std::nullopt);
}

TEST(ReadL2UnderLock, AnL2HitIsAHitThatReleasesItsLock) {
  auto backend = std::make_shared<ReadCountingBackend>();
  testing::ScriptedModel model;
  const auto stored = cache::run_blocking(process_over(backend).run(model, under_lock("stored")));
  // Another process: its own, empty L1 over the same L2.
  exchange::Exchange other = process_over(backend);
  backend->reads = 0;
  const auto hit = cache::run_blocking(other.run(model, under_lock("stored")));
  EXPECT_TRUE(hit.cache_hit);
  EXPECT_FALSE(hit.coalesced);
  EXPECT_EQ(hit.cost_nano_usd, 0);
  EXPECT_EQ(hit.avoided_nano_usd, stored.cost_nano_usd);
  EXPECT_EQ(hit.entry->response, stored.entry->response);
  EXPECT_EQ(backend->reads.load(), 1);
  EXPECT_EQ(model.calls(), 1);
  EXPECT_TRUE(
      backend->store.try_lock_now(cache::TieredCache::lock_key(hit.storage_key), "next", 1000ms));
  // Now in that process's L1: no L2 read, no lock.
  const int locks = backend->locks.load();
  EXPECT_TRUE(cache::run_blocking(other.run(model, under_lock("stored"))).cache_hit);
  EXPECT_EQ(backend->reads.load(), 1);
  EXPECT_EQ(backend->locks.load(), locks);
}

TEST(ReadL2UnderLock, CallersThatJoinTheReadOfAnL2HitAreHitsToo) {
  auto backend = std::make_shared<ReadCountingBackend>();
  testing::ScriptedModel model;
  cache::run_blocking(process_over(backend).run(model, under_lock("joined")));
  backend->reads = 0;
  backend->read_delay = 20ms;  // the others arrive while the first caller reads
  exchange::Exchange e = process_over(backend);
  asio::io_context io;
  int hits = 0;
  int coalesced = 0;
  for (int i = 0; i < 5; ++i) {
    asio::co_spawn(io, e.run(model, under_lock("joined")),
                   [&](std::exception_ptr error, exchange::ExchangeResult r) {
                     ASSERT_FALSE(error);
                     hits += r.cache_hit ? 1 : 0;
                     coalesced += r.coalesced ? 1 : 0;
                     EXPECT_EQ(r.cost_nano_usd, 0);
                   });
  }
  io.run();
  EXPECT_EQ(hits, 5);
  EXPECT_EQ(coalesced, 0);
  EXPECT_EQ(backend->reads.load(), 1);
  EXPECT_EQ(model.calls(), 1);
}

TEST(ReadL2UnderLock, LocksThatAreRoundTripsKeepTheReadBeforeTheLock) {
  auto backend = std::make_shared<ReadCountingBackend>();
  backend->remote_locks = true;  // as Redis
  testing::ScriptedModel model;
  cache::run_blocking(process_over(backend).run(model, under_lock("remote")));
  EXPECT_EQ(backend->reads.load(), 2);  // before the lock and after it, as without the flag
  // An L2 hit then takes no lock at all.
  exchange::Exchange other = process_over(backend);
  const int locks = backend->locks.load();
  EXPECT_TRUE(cache::run_blocking(other.run(model, under_lock("remote"))).cache_hit);
  EXPECT_EQ(backend->locks.load(), locks);
  EXPECT_EQ(model.calls(), 1);
}

TEST_F(CrossProcessExchange, UnderLockAnEntryAnotherHolderCannotChangeIsServedWithoutWaiting) {
  // The entry is in the file, and another process holds the key's lock (it refreshes it, say):
  // the read that meets the held lock serves the entry at once, as a read before the lock would.
  testing::ScriptedModel model;
  const auto stored =
      cache::run_blocking(exchange::Exchange(tiers(), exchange::system_now_ms, options_)
                              .run(model, under_lock("held")));
  const auto holder = raw();
  ASSERT_TRUE(holder->try_lock_now(cache::TieredCache::lock_key(stored.storage_key), "refresher",
                                   60'000ms));
  exchange::Exchange reader(tiers(), exchange::system_now_ms,
                            {.lock_ttl = 30'000ms, .lock_wait = 2'000ms});
  const auto hit = cache::run_blocking(reader.run(model, under_lock("held")));
  EXPECT_TRUE(hit.cache_hit);
  EXPECT_FALSE(hit.coalesced);
  EXPECT_EQ(model.calls(), 1);  // neither waited out the lock nor called the provider
  EXPECT_EQ(hit.entry->response, stored.entry->response);
}

}  // namespace
}  // namespace llm_caching

// The ledger's writer (exchange/ledger_writer.hpp): spills while the store is down and replays
// in order, folds hits, takes every calling thread's records, and flushes on destruction.
#include "cache/run_blocking.hpp"
#include "core/ledger.hpp"
#include "exchange/ledger_writer.hpp"
#include "llm_caching/errors.hpp"
#include "support/ledger_records.hpp"
#include "support/memory_backed_backend.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace llm_caching;
using core::LedgerOutcome;
using core::LedgerRecord;
using llmc_test::kDay;
using llmc_test::kDec1;
using llmc_test::record;

/// A ledger that fails while `down` is set, as a store that is unreachable, and that stores the
/// next `lose_replies` batches before it fails, as Redis killed between a script and its reply.
/// The memory store under it skips a named batch it has stored, as Redis does.
class FlakyLedger : public llmc_test::MemoryBackedBackend {
 public:
  std::atomic<bool> down{false};
  std::atomic<int> lose_replies{0};
  std::vector<core::LedgerBatchId> sent;  ///< every batch's name, in the order sent
  bool keeps_ledger() const noexcept override { return true; }
  boost::asio::awaitable<void> ledger_append(std::vector<LedgerRecord> records,
                                             core::LedgerBatchId batch) override {
    sent.push_back(batch);
    if (down) throw CacheError("the ledger is down");
    co_await store.ledger_append(std::move(records), std::move(batch));
    if (lose_replies > 0) {
      --lose_replies;
      throw CacheError("the connection dropped before the reply");
    }
  }
  boost::asio::awaitable<std::vector<LedgerRecord>> ledger_read(std::int64_t since,
                                                                std::int64_t until) override {
    co_return co_await store.ledger_read(since, until);
  }
  /// The calls the stored records stand for.
  std::int64_t count() {
    std::int64_t calls = 0;
    for (const LedgerRecord& r : cache::run_blocking(store.ledger_read(0, INT64_MAX))) {
      calls += r.calls;
    }
    return calls;
  }
};

TEST(LedgerWriter, NamesAreSixteenHexDigitsAndDiffer) {
  std::set<std::string> names;
  for (int i = 0; i < 100; ++i) {
    const std::string name = exchange::new_ledger_writer_name();
    EXPECT_EQ(name.size(), 16u);
    EXPECT_EQ(name.find_first_not_of("0123456789abcdef"), std::string::npos) << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 100u);
}

TEST(LedgerWriter, SpillsWhileTheStoreIsDownAndReplaysInOrderWhenItIsBack) {
  llmc_test::TempDir dir;
  auto backend = std::make_shared<FlakyLedger>();
  exchange::LedgerOptions options{.enabled = true, .spill_dir = dir.path() / "spill"};
  exchange::LedgerWriter writer(backend, options);
  for (int i = 0; i < 10; ++i) writer.record(record(kDec1 + i, "up", LedgerOutcome::miss, 1));
  writer.flush();
  EXPECT_EQ(backend->count(), 10);

  backend->down = true;
  for (int i = 10; i < 30; ++i) writer.record(record(kDec1 + i, "down", LedgerOutcome::miss, 1));
  writer.flush();
  EXPECT_EQ(backend->count(), 10);
  EXPECT_EQ(writer.stats().spilled, 20u);
  ASSERT_TRUE(std::filesystem::exists(writer.spill_file()));

  backend->down = false;
  writer.record(record(kDec1 + 30, "back", LedgerOutcome::miss, 1));
  writer.flush();  // replays the spill first, then the new record
  const auto stored = cache::run_blocking(backend->ledger_read(0, INT64_MAX));
  ASSERT_EQ(stored.size(), 31u);
  for (int i = 0; i < 31; ++i) EXPECT_EQ(stored[i].time_ms, kDec1 + i);
  EXPECT_EQ(writer.stats().replayed, 20u);
  EXPECT_FALSE(std::filesystem::exists(writer.spill_file()));
}

TEST(LedgerWriter, ABatchStoredBeforeItsReplyWasLostIsReplayedUnderItsNameAndStoredOnce) {
  llmc_test::TempDir dir;
  auto backend = std::make_shared<FlakyLedger>();
  // Rounds only when flushed: a timed round could take the lost batch before the flush, whose
  // own round would then replay it at once, before the spill file is looked at.
  exchange::LedgerOptions options{
      .enabled = true, .spill_dir = dir.path() / "spill", .flush_interval = std::chrono::hours(1)};
  exchange::LedgerWriter writer(backend, options);
  writer.record(record(kDec1, "first", LedgerOutcome::miss, 1));
  writer.flush();
  backend->lose_replies = 1;
  for (int i = 1; i < 11; ++i) writer.record(record(kDec1 + i, "lost", LedgerOutcome::miss, 1));
  writer.flush();
  // Stored, but the writer saw a failure: the batch waits in the spill file, under its name.
  EXPECT_EQ(backend->count(), 11);
  EXPECT_EQ(writer.stats().spilled, 10u);
  ASSERT_TRUE(std::filesystem::exists(writer.spill_file()));

  writer.record(record(kDec1 + 11, "after", LedgerOutcome::miss, 1));
  writer.flush();  // replays the batch (skipped: stored already), then stores the new one
  EXPECT_EQ(backend->count(), 12);
  const auto stored = cache::run_blocking(backend->ledger_read(0, INT64_MAX));
  ASSERT_EQ(stored.size(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(stored[i].time_ms, kDec1 + i);
  EXPECT_FALSE(std::filesystem::exists(writer.spill_file()));
  // One writer's names, in order; the lost batch sent twice under one name.
  ASSERT_GE(backend->sent.size(), 4u);
  const auto& sent = backend->sent;
  EXPECT_EQ(sent[1], sent[2]);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(sent[i].writer, sent[0].writer);
    EXPECT_TRUE(sent[i].named());
    if (i > 0 && i != 2) EXPECT_EQ(sent[i].sequence, sent[i - 1].sequence + 1) << i;
  }
}

TEST(LedgerWriter, FoldsTheHitsOfABatchAndCountsTheirCalls) {
  llmc_test::TempDir dir;
  auto backend = std::make_shared<FlakyLedger>();
  // Written only when flushed: the 1,000 hits are one batch.
  exchange::LedgerOptions options{
      .enabled = true, .spill_dir = dir.path() / "spill", .flush_interval = std::chrono::hours(1)};
  exchange::LedgerWriter writer(backend, options);
  for (int i = 0; i < 1000; ++i) writer.record(record(kDec1 + i % 100, "t", LedgerOutcome::hit, 0));
  writer.record(record(kDec1, "t", LedgerOutcome::miss, 3));
  writer.flush();
  const auto stored = cache::run_blocking(backend->ledger_read(0, INT64_MAX));
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].calls, 1000);
  EXPECT_EQ(stored[1].calls, 1);
  EXPECT_EQ(writer.stats().stored, 1001u);
  backend->down = true;
  for (int i = 0; i < 10; ++i) writer.record(record(kDec1, "t", LedgerOutcome::hit, 0));
  writer.flush();
  EXPECT_EQ(writer.stats().spilled, 10u);
  backend->down = false;
  writer.flush();
  EXPECT_EQ(writer.stats().replayed, 10u);
  EXPECT_EQ(backend->count(), 1011);
}

TEST(LedgerWriter, EveryThreadsRecordsArriveAndEndedThreadsQueuesAreDropped) {
  auto backend = std::make_shared<FlakyLedger>();
  exchange::LedgerWriter writer(backend, exchange::LedgerOptions{.enabled = true});
  const LedgerRecord like = record(kDec1, "memo", LedgerOutcome::hit, 0, 7);
  const auto record_from_threads = [&](int threads) {
    std::vector<std::thread> running;
    for (int t = 0; t < threads; ++t) {
      running.emplace_back([&, t] {
        for (int i = 0; i < 500; ++i) {
          // Runs of hits (folded per thread), misses between them, and memo-style records.
          if (i % 50 == 49) {
            writer.record(record(kDec1 + i, "t" + std::to_string(t), LedgerOutcome::miss, 2));
          } else if (i % 2 == 0) {
            writer.record(record(kDec1 + i, "t" + std::to_string(t), LedgerOutcome::hit, 0, 3));
          } else {
            writer.record_like(like, kDec1 + i, 11);
          }
        }
      });
    }
    for (std::thread& thread : running) thread.join();
  };
  record_from_threads(6);
  writer.flush();
  EXPECT_EQ(backend->count(), 3000);
  EXPECT_EQ(writer.stats().stored, 3000u);
  EXPECT_EQ(writer.stats().shards, 0u);  // the threads ended: their queues are gone
  record_from_threads(4);
  writer.record(record(kDec1, "this thread", LedgerOutcome::miss, 1));
  writer.flush();
  EXPECT_EQ(backend->count(), 5001);
  EXPECT_EQ(writer.stats().shards, 1u);  // this thread's, which still runs
  core::CostReport report =
      core::build_report(cache::run_blocking(backend->ledger_read(0, INT64_MAX)), kDec1 - kDay,
                         kDec1 + kDay, core::ReportBy::task);
  EXPECT_EQ(report.total.spent_nano_usd, 10 * 10 * 2 + 1);  // 10 threads' 10 misses, and one
  EXPECT_EQ(report.total.avoided_nano_usd, 10 * (250 * 3 + 240 * 7));
}

TEST(LedgerWriter, FlushesEverythingOnDestructionAndReplaysAnotherProcesssLeftovers) {
  llmc_test::TempDir dir;
  auto backend = std::make_shared<FlakyLedger>();
  exchange::LedgerOptions options{.enabled = true, .spill_dir = dir.path() / "spill"};
  std::filesystem::path left_behind;
  {
    backend->down = true;
    exchange::LedgerWriter writer(backend, options);
    for (int i = 0; i < 5; ++i) writer.record(record(kDec1 + i, "t", LedgerOutcome::miss, 1));
    left_behind = writer.spill_file();
  }  // the store is down: the records wait in the spill file
  ASSERT_TRUE(std::filesystem::exists(left_behind));
  // As if its process had ended: another pid's name, nobody holds it.
  const auto orphan = left_behind.parent_path() / (left_behind.stem().string() + "0.jsonl");
  std::filesystem::rename(left_behind, orphan);
  std::ofstream(orphan, std::ios::app) << R"({"t":1,"o":"mis)";  // a line cut by a crash
  backend->down = false;
  {
    exchange::LedgerWriter writer(backend, options);
    for (int i = 5; i < 8; ++i) writer.record(record(kDec1 + i, "t", LedgerOutcome::hit, 0));
  }
  EXPECT_EQ(backend->count(), 8);
  EXPECT_FALSE(std::filesystem::exists(orphan));
}

TEST(LedgerWriter, ASpillFileFromBeforeBatchNamesIsReplayedWhole) {
  llmc_test::TempDir dir;
  auto backend = std::make_shared<FlakyLedger>();
  exchange::LedgerOptions options{
      .enabled = true, .spill_dir = dir.path() / "spill", .batch_limit = 2};
  std::filesystem::path orphan;
  {
    exchange::LedgerWriter writer(backend, options);
    orphan = writer.spill_file().parent_path() / (writer.spill_file().stem().string() + "0.jsonl");
  }
  std::filesystem::create_directories(orphan.parent_path());
  {
    std::ofstream file(orphan);  // one record a line, no batch line: the old format
    for (int i = 0; i < 5; ++i) {
      file << core::encode_ledger_line(record(kDec1 + i, "old", LedgerOutcome::miss, 1)) << "\n";
    }
  }
  { exchange::LedgerWriter writer(backend, options); }
  EXPECT_EQ(backend->count(), 5);
  EXPECT_FALSE(std::filesystem::exists(orphan));
  // Unnamed (never skipped), in pieces of batch_limit.
  ASSERT_EQ(backend->sent.size(), 3u);
  for (const core::LedgerBatchId& id : backend->sent) EXPECT_FALSE(id.named());
}

}  // namespace

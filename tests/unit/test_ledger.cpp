// The ledger (docs/COSTS.md): a record's line, the report's sums and formats, the SQLite table,
// and the writer's spill file while the backend fails, replayed when it answers again.
#include "cache/run_blocking.hpp"
#include "cache/sqlite_backend.hpp"
#include "core/ledger.hpp"
#include "exchange/ledger_writer.hpp"
#include "llm_caching/errors.hpp"
#include "support/memory_backed_backend.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include <atomic>
#include <filesystem>
#include <fstream>

namespace {

using namespace llm_caching;
using core::LedgerOutcome;
using core::LedgerRecord;

constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kDec1 = 1'796'083'200'000;  // 2026-12-01T00:00:00Z

LedgerRecord record(std::int64_t time_ms, std::string task, LedgerOutcome outcome,
                    std::int64_t cost, std::int64_t avoided = 0, std::string tags = {}) {
  LedgerRecord r;
  r.time_ms = time_ms;
  r.task = std::move(task);
  r.model = "gpt-4o-mini";
  r.provider = "openai";
  r.tenant = "key:0123";
  r.tags = std::move(tags);
  r.input_tokens = 10;
  r.output_tokens = 5;
  r.cost_nano_usd = cost;
  r.avoided_nano_usd = avoided;
  r.latency_us = 1234;
  r.outcome = outcome;
  return r;
}

TEST(LedgerLine, RoundTripsEveryField) {
  LedgerRecord r = record(kDec1 + 5, "nightly \"eval\"", LedgerOutcome::coalesced, 0, 5550, "a,b");
  r.namespace_ = "tests";
  r.cache_write_tokens = 7;
  r.cache_read_tokens = 9;
  const auto back = core::decode_ledger_line(core::encode_ledger_line(r));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, r);
}

TEST(LedgerLine, RefusesCutAndForeignLines) {
  const std::string line = core::encode_ledger_line(record(kDec1, "t", LedgerOutcome::miss, 1));
  EXPECT_FALSE(core::decode_ledger_line(line.substr(0, line.size() - 3)));
  EXPECT_FALSE(core::decode_ledger_line(R"({"t":1,"o":"exploded"})"));
  EXPECT_FALSE(core::decode_ledger_line(R"({"o":"miss"})"));
  EXPECT_FALSE(core::decode_ledger_line(R"({"t":1,"o":"miss","cost":"5"})"));
}

TEST(LedgerTime, ReadsDurationsDatesAndMilliseconds) {
  const std::int64_t now = kDec1 + 3 * kDay;
  EXPECT_EQ(core::parse_report_time("7d", now), now - 7 * kDay);
  EXPECT_EQ(core::parse_report_time("12h", now), now - 12 * 3'600'000LL);
  EXPECT_EQ(core::parse_report_time("2w", now), now - 14 * kDay);
  EXPECT_EQ(core::parse_report_time("90s", now), now - 90'000);
  EXPECT_EQ(core::parse_report_time("2026-12-01", now), kDec1);
  EXPECT_EQ(core::parse_report_time("12345", now), 12345);
  EXPECT_FALSE(core::parse_report_time("7y", now));
  EXPECT_FALSE(core::parse_report_time("2026-13-01", now));
  EXPECT_FALSE(core::parse_report_time("", now));
  EXPECT_FALSE(core::parse_report_time("-5d", now));
  EXPECT_EQ(core::utc_day(kDec1 + kDay - 1), "2026-12-01");
  EXPECT_EQ(core::utc_day(kDec1 + kDay), "2026-12-02");
}

TEST(LedgerReport, SumsByTaskWithinTheWindow) {
  const std::vector<LedgerRecord> records = {
      record(kDec1, "a", LedgerOutcome::miss, 100),
      record(kDec1 + 1, "a", LedgerOutcome::hit, 0, 100),
      record(kDec1 + 2, "b", LedgerOutcome::miss, 300),
      record(kDec1 + 3, "b", LedgerOutcome::failed, 0),
      record(kDec1 + kDay, "a", LedgerOutcome::miss, 1000),  // at until: excluded
      record(kDec1 - 1, "a", LedgerOutcome::miss, 1000),     // before since: excluded
  };
  const auto report = core::build_report(records, kDec1, kDec1 + kDay, core::ReportBy::task);
  EXPECT_EQ(report.total.calls, 4);
  EXPECT_EQ(report.total.hits, 1);
  EXPECT_EQ(report.total.failed, 1);
  EXPECT_EQ(report.total.spent_nano_usd, 400);
  EXPECT_EQ(report.total.avoided_nano_usd, 100);
  ASSERT_EQ(report.rows.size(), 2u);
  EXPECT_EQ(report.rows[0].key, "b");  // the larger spender first
  EXPECT_EQ(report.rows[0].spent_nano_usd, 300);
  EXPECT_EQ(report.rows[1].key, "a");
  EXPECT_DOUBLE_EQ(report.rows[1].hit_ratio(), 0.5);
}

TEST(LedgerReport, ATagRowPerTagAndDaysInOrder) {
  const std::vector<LedgerRecord> records = {
      record(kDec1 + kDay, "t", LedgerOutcome::miss, 10, 0, "x,y"),
      record(kDec1, "t", LedgerOutcome::miss, 20, 0, "y"),
      record(kDec1, "t", LedgerOutcome::miss, 40),
  };
  const auto by_tag = core::build_report(records, 0, kDec1 + 2 * kDay, core::ReportBy::tag);
  ASSERT_EQ(by_tag.rows.size(), 3u);
  EXPECT_EQ(by_tag.rows[0].key, "");  // untagged: 40
  EXPECT_EQ(by_tag.rows[1].key, "y");
  EXPECT_EQ(by_tag.rows[1].spent_nano_usd, 30);
  EXPECT_EQ(by_tag.rows[2].key, "x");
  EXPECT_EQ(by_tag.total.spent_nano_usd, 70);
  const auto by_day = core::build_report(records, 0, kDec1 + 2 * kDay, core::ReportBy::day);
  ASSERT_EQ(by_day.rows.size(), 2u);
  EXPECT_EQ(by_day.rows[0].key, "2026-12-01");
  EXPECT_EQ(by_day.rows[1].key, "2026-12-02");
}

TEST(LedgerReport, FormatsAsJsonCsvAndATableWithBars) {
  const std::vector<LedgerRecord> records = {record(kDec1, "a,b", LedgerOutcome::miss, 5550),
                                             record(kDec1, "c", LedgerOutcome::miss, 2775)};
  const auto report = core::build_report(records, kDec1, kDec1 + 1, core::ReportBy::task);
  const std::string json = core::report_json(report);
  EXPECT_NE(json.find(R"("spent_usd":"0.000008325")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("spent_nano_usd":8325)"), std::string::npos) << json;
  const std::string csv = core::report_csv(report);
  EXPECT_NE(csv.find("\"a,b\",1,0,0,0.0000,0.00000555,0.00,10,5\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("TOTAL,2,"), std::string::npos) << csv;
  const std::string table = core::report_table(report, 10);
  EXPECT_NE(table.find("##########\n"), std::string::npos) << table;  // the largest: full
  EXPECT_NE(table.find(" #####\n"), std::string::npos) << table;      // half of it
}

TEST(SqliteLedger, StoresAndReadsRecordsBesideTheEntries) {
  llmc_test::TempDir dir;
  SqliteOptions options;
  options.path = dir.file("cache.db");
  const std::vector<LedgerRecord> records = {record(kDec1, "a", LedgerOutcome::miss, 7),
                                             record(kDec1 + 10, "b", LedgerOutcome::stale, 0, 7)};
  {
    cache::SqliteBackend backend(options);
    backend.put_now("llm-caching:v1:default:ab", "value", std::chrono::milliseconds(0));
    backend.ledger_append_now(records);
  }
  cache::SqliteBackend reopened(options);
  EXPECT_EQ(reopened.ledger_read_now(kDec1, kDec1 + 11), records);
  EXPECT_EQ(reopened.ledger_read_now(kDec1 + 1, kDec1 + 11).size(), 1u);
  EXPECT_TRUE(reopened.get_now("llm-caching:v1:default:ab").has_value());
}

TEST(SqliteLedger, ABatchOfManyRowsKeepsEveryRecordInOrder) {
  // 70 records: two 32-row inserts and six one-row ones, in one transaction.
  llmc_test::TempDir dir;
  SqliteOptions options;
  options.path = dir.file("cache.db");
  std::vector<LedgerRecord> records;
  for (int i = 0; i < 70; ++i) {
    records.push_back(record(kDec1 + i, "task-" + std::to_string(i),
                             i % 3 == 0 ? LedgerOutcome::hit : LedgerOutcome::miss, i * 1000));
  }
  cache::SqliteBackend backend(options);
  backend.ledger_append_now(records);
  backend.ledger_append_now({records.front()});
  std::vector<LedgerRecord> read = backend.ledger_read_now(kDec1, kDec1 + 70);
  ASSERT_EQ(read.size(), 71u);
  std::stable_sort(read.begin(), read.end(), [](const LedgerRecord& a, const LedgerRecord& b) {
    return a.time_ms < b.time_ms;
  });
  read.erase(read.begin());  // the one appended again
  EXPECT_EQ(read, records);
}

/// A ledger that fails while `down` is set, as a store that is unreachable.
class FlakyLedger : public llmc_test::MemoryBackedBackend {
 public:
  std::atomic<bool> down{false};
  bool keeps_ledger() const noexcept override { return true; }
  boost::asio::awaitable<void> ledger_append(std::vector<LedgerRecord> records) override {
    if (down) throw CacheError("the ledger is down");
    co_await store.ledger_append(std::move(records));
  }
  boost::asio::awaitable<std::vector<LedgerRecord>> ledger_read(std::int64_t since,
                                                                std::int64_t until) override {
    co_return co_await store.ledger_read(since, until);
  }
  std::size_t count() { return cache::run_blocking(store.ledger_read(0, INT64_MAX)).size(); }
};

TEST(LedgerWriter, SpillsWhileTheStoreIsDownAndReplaysInOrderWhenItIsBack) {
  llmc_test::TempDir dir;
  auto backend = std::make_shared<FlakyLedger>();
  exchange::LedgerOptions options{.enabled = true, .spill_dir = dir.path() / "spill"};
  exchange::LedgerWriter writer(backend, options);
  for (int i = 0; i < 10; ++i) writer.record(record(kDec1 + i, "up", LedgerOutcome::miss, 1));
  writer.flush();
  EXPECT_EQ(backend->count(), 10u);

  backend->down = true;
  for (int i = 10; i < 30; ++i) writer.record(record(kDec1 + i, "down", LedgerOutcome::hit, 0));
  writer.flush();
  EXPECT_EQ(backend->count(), 10u);
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
  EXPECT_EQ(backend->count(), 8u);
  EXPECT_FALSE(std::filesystem::exists(orphan));
}

}  // namespace

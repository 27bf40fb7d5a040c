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
#include <sqlite3.h>

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

TEST(LedgerLine, CarriesTheCallsOfAFoldedRecord) {
  LedgerRecord r = record(kDec1, "t", LedgerOutcome::hit, 0, 70);
  r.calls = 7;
  const std::string line = core::encode_ledger_line(r);
  EXPECT_NE(line.find(R"("n":7)"), std::string::npos);
  EXPECT_EQ(core::decode_ledger_line(line), r);
  // One call: no field, as lines written before records were folded.
  const std::string one = core::encode_ledger_line(record(kDec1, "t", LedgerOutcome::hit, 0));
  EXPECT_EQ(one.find(R"("n")"), std::string::npos);
  EXPECT_EQ(core::decode_ledger_line(one)->calls, 1);
  EXPECT_FALSE(core::decode_ledger_line(R"({"t":1,"o":"hit","n":0})"));
  EXPECT_FALSE(core::decode_ledger_line(R"({"t":1,"o":"hit","n":"2"})"));
}

TEST(LedgerCoalesce, FoldsServedCallsOfOneGroupAndSecondOnly) {
  std::vector<LedgerRecord> records = {
      record(kDec1 + 500, "a", LedgerOutcome::hit, 0, 10),
      record(kDec1 + 100, "a", LedgerOutcome::miss, 10),
      record(kDec1 + 200, "a", LedgerOutcome::hit, 0, 10),
      record(kDec1 + 999, "a", LedgerOutcome::hit, 0, 10),
      record(kDec1 + 1000, "a", LedgerOutcome::hit, 0, 10),   // the next second
      record(kDec1 + 300, "b", LedgerOutcome::hit, 0, 10),    // another task
      record(kDec1 + 300, "a", LedgerOutcome::stale, 0, 10),  // another outcome
      record(kDec1 + 400, "a", LedgerOutcome::failed, 0),     // spends nothing, but failed
      record(kDec1 + 400, "a", LedgerOutcome::failed, 0),
  };
  records.push_back(records.front());
  records.back().tenant = "user:ann";  // another tenant
  const std::vector<LedgerRecord> rows = core::coalesce_served_records(records);
  EXPECT_TRUE(records.empty());
  ASSERT_EQ(rows.size(), 8u);
  EXPECT_EQ(rows[0].calls, 3);
  EXPECT_EQ(rows[0].time_ms, kDec1 + 200);  // the earliest
  EXPECT_EQ(rows[0].avoided_nano_usd, 30);
  EXPECT_EQ(rows[0].input_tokens, 30);
  EXPECT_EQ(rows[0].output_tokens, 15);
  EXPECT_EQ(rows[0].latency_us, 3 * 1234);
  EXPECT_EQ(rows[1].outcome, LedgerOutcome::miss);
  for (std::size_t i = 1; i < rows.size(); ++i) EXPECT_EQ(rows[i].calls, 1) << i;
  EXPECT_EQ(rows[6].outcome, LedgerOutcome::failed);
  EXPECT_EQ(rows[7].tenant, "user:ann");
}

TEST(LedgerCoalesce, EveryReportIsTheSameFoldedOrNot) {
  // 3,000 calls over 3 tasks, 2 tenants, tag sets, every outcome and 5 seconds either side of
  // midnight: folded, every report by every dimension is byte for byte the same.
  std::vector<LedgerRecord> records;
  std::uint64_t seed = 42;
  const auto next = [&seed](std::uint64_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (seed >> 33) % n;
  };
  constexpr LedgerOutcome kOutcomes[] = {LedgerOutcome::miss,      LedgerOutcome::hit,
                                         LedgerOutcome::coalesced, LedgerOutcome::stale,
                                         LedgerOutcome::failed,    LedgerOutcome::refresh};
  for (int i = 0; i < 3000; ++i) {
    const LedgerOutcome outcome = kOutcomes[next(6)];
    const bool spends = outcome == LedgerOutcome::miss || outcome == LedgerOutcome::refresh;
    LedgerRecord r = record(
        kDec1 - 5000 + static_cast<std::int64_t>(next(10'000)), "task-" + std::to_string(next(3)),
        outcome, spends ? static_cast<std::int64_t>(next(5000)) : 0,
        spends ? 0 : static_cast<std::int64_t>(next(5000)), next(2) == 0 ? "" : "a,b");
    r.tenant = next(2) == 0 ? "key:0123" : "user:ann";
    r.input_tokens = static_cast<std::int64_t>(next(100));
    r.cache_read_tokens = static_cast<std::int64_t>(next(100));
    records.push_back(std::move(r));
  }
  std::vector<LedgerRecord> copy = records;
  const std::vector<LedgerRecord> rows = core::coalesce_served_records(copy);
  EXPECT_LT(rows.size(), 2000u);  // 1,500 that spend or failed, and at most 360 groups
  for (const core::ReportBy by :
       {core::ReportBy::total, core::ReportBy::task, core::ReportBy::model, core::ReportBy::tenant,
        core::ReportBy::day, core::ReportBy::tag, core::ReportBy::outcome, core::ReportBy::provider,
        core::ReportBy::namespace_}) {
    EXPECT_EQ(core::report_json(core::build_report(rows, kDec1 - kDay, kDec1 + kDay, by)),
              core::report_json(core::build_report(records, kDec1 - kDay, kDec1 + kDay, by)))
        << core::report_by_name(by);
    // A window that starts within the folded seconds: a folded row's time is its earliest call's.
    EXPECT_EQ(core::build_report(rows, kDec1, kDec1 + kDay, by).total.calls,
              core::build_report(records, kDec1, kDec1 + kDay, by).total.calls);
  }
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

TEST(SqliteLedger, ATableFromBeforeFoldedRecordsGainsTheCallsColumn) {
  llmc_test::TempDir dir;
  SqliteOptions options;
  options.path = dir.file("cache.db");
  {
    cache::SqliteBackend backend(options);  // the entries' schema
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(options.path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE ledger (time_ms INTEGER NOT NULL, outcome TEXT NOT NULL, "
                         "task TEXT NOT NULL, namespace TEXT NOT NULL, model TEXT NOT NULL, "
                         "provider TEXT NOT NULL, tenant TEXT NOT NULL, tags TEXT NOT NULL, "
                         "input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, "
                         "cache_write_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, "
                         "cost_nano_usd INTEGER NOT NULL, avoided_nano_usd INTEGER NOT NULL, "
                         "latency_us INTEGER NOT NULL);"
                         "INSERT INTO ledger VALUES (1796083200000, 'hit', 'old', '', 'm', 'p', "
                         "'', '', 1, 2, 0, 0, 0, 5, 10);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  cache::SqliteBackend backend(options);
  LedgerRecord folded = record(kDec1 + 1, "new", LedgerOutcome::hit, 0, 50);
  folded.calls = 5;
  backend.ledger_append_now({folded});
  const std::vector<LedgerRecord> read = backend.ledger_read_now(kDec1, kDec1 + 2);
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[0].task, "old");
  EXPECT_EQ(read[0].calls, 1);
  EXPECT_EQ(read[1], folded);
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
  /// The calls the stored records stand for.
  std::int64_t count() {
    std::int64_t calls = 0;
    for (const LedgerRecord& r : cache::run_blocking(store.ledger_read(0, INT64_MAX))) {
      calls += r.calls;
    }
    return calls;
  }
};

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

}  // namespace

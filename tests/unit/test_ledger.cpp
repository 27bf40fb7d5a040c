// The ledger (docs/COSTS.md): a record's line, folding, the report's sums and formats, and the
// SQLite table. The writer's tests: test_ledger_writer.cpp.
#include "cache/run_blocking.hpp"
#include "cache/sqlite_backend.hpp"
#include "core/ledger.hpp"
#include "support/ledger_records.hpp"
#include "support/memory_backed_backend.hpp"
#include "support/test_env.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>

namespace {

using namespace llm_caching;
using core::LedgerOutcome;
using core::LedgerRecord;
using llmc_test::kDay;
using llmc_test::kDec1;
using llmc_test::record;

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

TEST(LedgerCoalesce, FoldServedIntoFoldsOnlyServedCallsOfOneGroupAndSecond) {
  LedgerRecord into = record(kDec1 + 500, "a", LedgerOutcome::hit, 0, 10);
  EXPECT_TRUE(core::fold_served_into(into, record(kDec1 + 200, "a", LedgerOutcome::hit, 0, 10)));
  EXPECT_EQ(into.calls, 2);
  EXPECT_EQ(into.time_ms, kDec1 + 200);
  EXPECT_EQ(into.avoided_nano_usd, 20);
  const LedgerRecord before = into;
  for (const LedgerRecord& other : {
           record(kDec1 + 1000, "a", LedgerOutcome::hit, 0, 10),   // the next second
           record(kDec1 + 300, "b", LedgerOutcome::hit, 0, 10),    // another task
           record(kDec1 + 300, "a", LedgerOutcome::stale, 0, 10),  // another outcome
           record(kDec1 + 300, "a", LedgerOutcome::miss, 10),      // spent
           record(kDec1 + 300, "a", LedgerOutcome::failed, 0),     // failed
       }) {
    EXPECT_FALSE(core::fold_served_into(into, other));
    EXPECT_EQ(into, before);
  }
  LedgerRecord miss = record(kDec1 + 300, "a", LedgerOutcome::miss, 10);
  EXPECT_FALSE(core::fold_served_into(miss, before));  // into a record that spent: never
}

TEST(LedgerCoalesce, FoldingEachRecordIntoTheLastOfItsThreadChangesNoReport) {
  // How the ledger's writer queues records: per calling thread, a served call of the same group
  // and second as that thread's last record folds into it. Three threads, 3,000 calls in runs
  // of repeats, as a cache under load sees them: every report is what the calls make unfolded.
  std::vector<LedgerRecord> calls;
  std::array<std::vector<LedgerRecord>, 3> threads;
  std::uint64_t seed = 7;
  const auto next = [&seed](std::uint64_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (seed >> 33) % n;
  };
  LedgerRecord current = record(kDec1 - 3000, "task-0", LedgerOutcome::hit, 0, 10);
  for (int i = 0; i < 3000; ++i) {
    if (next(8) == 0) {  // a new kind of call
      const std::array<LedgerOutcome, 4> outcomes = {
          LedgerOutcome::hit, LedgerOutcome::miss, LedgerOutcome::coalesced, LedgerOutcome::stale};
      const LedgerOutcome outcome = outcomes.at(next(4));
      current = record(current.time_ms, "task-" + std::to_string(next(3)), outcome,
                       outcome == LedgerOutcome::miss ? 1000 : 0, 10, next(2) == 0 ? "" : "a,b");
      current.tenant = next(2) == 0 ? "key:0123" : "user:ann";
    }
    current.time_ms += static_cast<std::int64_t>(next(5));  // crosses seconds and midnight
    calls.push_back(current);
    std::vector<LedgerRecord>& queue = threads.at(next(3));
    if (queue.empty() || !core::fold_served_into(queue.back(), current)) queue.push_back(current);
  }
  std::vector<LedgerRecord> queued;
  for (auto& queue : threads) queued.insert(queued.end(), queue.begin(), queue.end());
  EXPECT_LT(queued.size(), calls.size() / 2);
  for (const core::ReportBy by :
       {core::ReportBy::total, core::ReportBy::task, core::ReportBy::tenant, core::ReportBy::day,
        core::ReportBy::tag, core::ReportBy::outcome}) {
    EXPECT_EQ(core::report_json(core::build_report(queued, kDec1 - kDay, kDec1 + kDay, by)),
              core::report_json(core::build_report(calls, kDec1 - kDay, kDec1 + kDay, by)))
        << core::report_by_name(by);
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

TEST(SqliteLedger, ANamedBatchReplayedTwiceIsStoredOnceAndItsWriterGoesAfterThirtyDays) {
  llmc_test::TempDir dir;
  SqliteOptions options;
  options.path = dir.file("cache.db");
  std::int64_t now = kDec1;
  cache::SqliteBackend backend(options, [&now] { return now; });
  const std::vector<LedgerRecord> records = {record(kDec1, "a", LedgerOutcome::miss, 7),
                                             record(kDec1 + 1, "b", LedgerOutcome::miss, 8)};
  const core::LedgerBatchId first{"00000000000000aa", 1};
  backend.ledger_append_now(records, first);
  backend.ledger_append_now(records, first);  // a spill file replayed again after a crash
  EXPECT_EQ(backend.ledger_read_now(0, INT64_MAX).size(), 2u);
  backend.ledger_append_now({records[0]}, {"00000000000000aa", 2});
  backend.ledger_append_now(records, first);  // late: the writer is past it
  backend.ledger_append_now({records[1]}, {"00000000000000bb", 1});
  backend.ledger_append_now({records[1]}, {});  // unnamed: stored each time
  backend.ledger_append_now({records[1]}, {});
  EXPECT_EQ(backend.ledger_read_now(0, INT64_MAX).size(), 6u);
  // 31 days on, a new writer's first batch forgets both: "aa" 1 is stored again.
  now += 31 * kDay;
  backend.ledger_append_now({records[0]}, {"00000000000000cc", 1});
  backend.ledger_append_now(records, first);
  EXPECT_EQ(backend.ledger_read_now(0, INT64_MAX).size(), 9u);
}

}  // namespace

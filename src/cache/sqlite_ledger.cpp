// The SQLite backend's ledger (core/ledger.hpp) and budget counters (core/budget.hpp): the
// tables `ledger` and `budgets` in the cache's file, beside the entries. They are not part of the
// entries' schema version: a file without them gets them on first use, and builds that do not
// know them leave them alone.
#include "cache/sqlite_backend.hpp"
#include "cache/sqlite_connection.hpp"

#include <algorithm>
#include <mutex>

namespace llm_caching::cache {

namespace {

constexpr const char* kCreateLedger =
    "CREATE TABLE IF NOT EXISTS ledger ("
    "time_ms INTEGER NOT NULL, outcome TEXT NOT NULL, task TEXT NOT NULL, "
    "namespace TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, "
    "tenant TEXT NOT NULL, tags TEXT NOT NULL, input_tokens INTEGER NOT NULL, "
    "output_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL, "
    "cache_read_tokens INTEGER NOT NULL, cost_nano_usd INTEGER NOT NULL, "
    "avoided_nano_usd INTEGER NOT NULL, latency_us INTEGER NOT NULL, "
    "calls INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX IF NOT EXISTS ledger_time ON ledger(time_ms);"
    "CREATE TABLE IF NOT EXISTS budgets (key TEXT PRIMARY KEY, used INTEGER NOT NULL, "
    "expires_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS ledger_writers (writer TEXT PRIMARY KEY, "
    "sequence INTEGER NOT NULL, seen_ms INTEGER NOT NULL);";

/// The last batch each writer stored (core/ledger_batch.hpp): a batch replayed twice from a
/// spill file (the process died before it could cut the file) is skipped. A writer's row goes
/// core::kLedgerWriterKept after its last batch.
constexpr const char* kLastBatch = "SELECT sequence FROM ledger_writers WHERE writer = ?1";
constexpr const char* kMarkBatch = "INSERT OR REPLACE INTO ledger_writers VALUES (?1, ?2, ?3)";
constexpr const char* kForgetWriters = "DELETE FROM ledger_writers WHERE seen_ms < ?1";

constexpr const char* kSelectBudget = "SELECT used, expires_at FROM budgets WHERE key = ?1";
constexpr const char* kWriteBudget = "INSERT OR REPLACE INTO budgets VALUES (?1, ?2, ?3)";

/// A table made before records could stand for several calls gets the column (its rows: 1 each).
constexpr const char* kHasCalls = "SELECT 1 FROM pragma_table_info('ledger') WHERE name = 'calls'";
constexpr const char* kAddCalls = "ALTER TABLE ledger ADD COLUMN calls INTEGER NOT NULL DEFAULT 1";

constexpr int kColumns = 16;
/// Records per INSERT statement: one statement step per row costs more than the row itself, so a
/// batch goes in rows of this many (and one-row inserts for the rest).
constexpr std::size_t kRowsPerInsert = 32;

/// "INSERT INTO ledger VALUES (?,...,?), ... (?,...,?)" with `rows` rows.
std::string insert_sql(std::size_t rows) {
  std::string row = "(?";
  for (int c = 1; c < kColumns; ++c) row += ",?";
  row += ")";
  std::string sql =
      "INSERT INTO ledger (time_ms, outcome, task, namespace, model, provider, tenant, tags, "
      "input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, cost_nano_usd, "
      "avoided_nano_usd, latency_us, calls) VALUES " +
      row;
  for (std::size_t r = 1; r < rows; ++r) sql += "," + row;
  return sql;
}

constexpr const char* kSelect =
    "SELECT time_ms, outcome, task, namespace, model, provider, tenant, tags, input_tokens, "
    "output_tokens, cache_write_tokens, cache_read_tokens, cost_nano_usd, avoided_nano_usd, "
    "latency_us, calls FROM ledger WHERE time_ms >= ?1 AND time_ms < ?2";

/// Finalizes a statement prepared for one batch or one read.
struct Statement {
  sqlite3_stmt* stmt;
  ~Statement() { sqlite3_finalize(stmt); }
};

std::string text_column(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  return text == nullptr
             ? std::string()
             : std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
}

/// Binds `r` as the row whose first parameter is `first` (1-based).
void bind_record(const SqliteConnection& db, sqlite3_stmt* stmt, int first,
                 const core::LedgerRecord& r) {
  db.bind_int(stmt, first, r.time_ms);
  db.bind_text(stmt, first + 1, core::outcome_name(r.outcome));
  db.bind_text(stmt, first + 2, r.task);
  db.bind_text(stmt, first + 3, r.namespace_);
  db.bind_text(stmt, first + 4, r.model);
  db.bind_text(stmt, first + 5, r.provider);
  db.bind_text(stmt, first + 6, r.tenant);
  db.bind_text(stmt, first + 7, r.tags);
  db.bind_int(stmt, first + 8, r.input_tokens);
  db.bind_int(stmt, first + 9, r.output_tokens);
  db.bind_int(stmt, first + 10, r.cache_write_tokens);
  db.bind_int(stmt, first + 11, r.cache_read_tokens);
  db.bind_int(stmt, first + 12, r.cost_nano_usd);
  db.bind_int(stmt, first + 13, r.avoided_nano_usd);
  db.bind_int(stmt, first + 14, r.latency_us);
  db.bind_int(stmt, first + 15, r.calls);
}

core::LedgerRecord read_record(sqlite3_stmt* stmt) {
  core::LedgerRecord r;
  r.time_ms = sqlite3_column_int64(stmt, 0);
  r.outcome = core::outcome_from_name(text_column(stmt, 1)).value_or(core::LedgerOutcome::miss);
  r.task = text_column(stmt, 2);
  r.namespace_ = text_column(stmt, 3);
  r.model = text_column(stmt, 4);
  r.provider = text_column(stmt, 5);
  r.tenant = text_column(stmt, 6);
  r.tags = text_column(stmt, 7);
  r.input_tokens = sqlite3_column_int64(stmt, 8);
  r.output_tokens = sqlite3_column_int64(stmt, 9);
  r.cache_write_tokens = sqlite3_column_int64(stmt, 10);
  r.cache_read_tokens = sqlite3_column_int64(stmt, 11);
  r.cost_nano_usd = sqlite3_column_int64(stmt, 12);
  r.avoided_nano_usd = sqlite3_column_int64(stmt, 13);
  r.latency_us = sqlite3_column_int64(stmt, 14);
  r.calls = std::max<std::int64_t>(1, sqlite3_column_int64(stmt, 15));
  return r;
}

}  // namespace

void SqliteBackend::ensure_ledger_table() {
  if (ledger_table_ready_) return;
  db_->exec(kCreateLedger, "creating the ledger table");
  const Statement has_calls{db_->prepare(kHasCalls)};
  if (!db_->step(has_calls.stmt, "reading the ledger table's columns")) {
    db_->exec(kAddCalls, "adding the calls column to the ledger table");
  }
  ledger_table_ready_ = true;
}

bool SqliteBackend::mark_ledger_batch(const core::LedgerBatchId& batch) {
  if (!batch.named()) return true;
  SqliteConnection& db = *db_;
  const std::int64_t now = now_ms_();
  const Statement last{db.prepare(kLastBatch)};
  db.bind_text(last.stmt, 1, batch.writer);
  if (!db.step(last.stmt, "reading a ledger writer's last batch")) {
    // A writer's first batch here: the time to forget the writers long gone.
    const Statement forget{db.prepare(kForgetWriters)};
    db.bind_int(forget.stmt, 1, now - std::chrono::milliseconds(core::kLedgerWriterKept).count());
    db.step(forget.stmt, "forgetting old ledger writers");
  } else if (batch.sequence <= static_cast<std::uint64_t>(sqlite3_column_int64(last.stmt, 0))) {
    return false;
  }
  const Statement mark{db.prepare(kMarkBatch)};
  db.bind_text(mark.stmt, 1, batch.writer);
  db.bind_int(mark.stmt, 2, static_cast<std::int64_t>(batch.sequence));
  db.bind_int(mark.stmt, 3, now);
  db.step(mark.stmt, "marking a ledger writer's last batch");
  return true;
}

void SqliteBackend::ledger_append_now(const std::vector<core::LedgerRecord>& records,
                                      const core::LedgerBatchId& batch) {
  if (records.empty()) return;
  std::lock_guard lock(mutex_);
  try {
    ensure_ledger_table();
    SqliteConnection& db = *db_;
    const std::size_t full = records.size() / kRowsPerInsert * kRowsPerInsert;
    const Statement many{full > 0 ? db.prepare(insert_sql(kRowsPerInsert).c_str()) : nullptr};
    const Statement one{db.prepare(insert_sql(1).c_str())};
    db.write_transaction([&] {
      if (!mark_ledger_batch(batch)) return;  // stored before
      for (std::size_t i = 0; i < records.size();) {
        const bool whole_rows = i < full;
        sqlite3_stmt* stmt = whole_rows ? many.stmt : one.stmt;
        StatementUse use(stmt);
        const std::size_t rows = whole_rows ? kRowsPerInsert : 1;
        for (std::size_t r = 0; r < rows; ++r) {
          bind_record(db, stmt, static_cast<int>(r) * kColumns + 1, records[i + r]);
        }
        db.step(stmt, "writing ledger records");
        i += rows;
      }
    });
  } catch (...) {
    ++counters_.errors;
    throw;
  }
}

std::vector<core::LedgerRecord> SqliteBackend::ledger_read_now(std::int64_t since_ms,
                                                               std::int64_t until_ms) {
  std::lock_guard lock(mutex_);
  ensure_ledger_table();
  SqliteConnection& db = *db_;
  const Statement select{db.prepare(kSelect)};
  StatementUse use(select.stmt);
  db.bind_int(select.stmt, 1, since_ms);
  db.bind_int(select.stmt, 2, until_ms);
  std::vector<core::LedgerRecord> out;
  while (db.step(select.stmt, "reading the ledger")) out.push_back(read_record(select.stmt));
  return out;
}

Backend::BudgetVerdict SqliteBackend::budget_reserve_now(const std::vector<BudgetCharge>& charges,
                                                         std::int64_t amount) {
  const std::int64_t now = now_ms_();
  std::lock_guard lock(mutex_);
  ensure_ledger_table();
  SqliteConnection& db = *db_;
  const Statement select{db.prepare(kSelectBudget)};
  const Statement write{db.prepare(kWriteBudget)};
  // Read and charge in one write transaction: another process's reservation waits for it.
  return db.write_transaction([&] {
    BudgetVerdict verdict;
    std::vector<std::int64_t> used;
    for (std::size_t i = 0; i < charges.size(); ++i) {
      StatementUse use(select.stmt);
      db.bind_text(select.stmt, 1, charges[i].key);
      std::int64_t current = 0;
      if (db.step(select.stmt, "reading a budget")) {
        const std::int64_t expires_at = sqlite3_column_int64(select.stmt, 1);
        if (expires_at == 0 || expires_at > now) current = sqlite3_column_int64(select.stmt, 0);
      }
      if (amount > 0 && current > charges[i].limit_nano_usd - amount) {
        verdict.granted = false;
        verdict.refused = i;
        verdict.used = {current};
        return verdict;
      }
      used.push_back(current + amount);
    }
    for (std::size_t i = 0; i < charges.size(); ++i) {
      StatementUse use(write.stmt);
      db.bind_text(write.stmt, 1, charges[i].key);
      db.bind_int(write.stmt, 2, used[i]);
      db.bind_int(write.stmt, 3, charges[i].ttl.count() > 0 ? now + charges[i].ttl.count() : 0);
      db.step(write.stmt, "charging a budget");
    }
    verdict.used = std::move(used);
    return verdict;
  });
}

asio::awaitable<Backend::BudgetVerdict> SqliteBackend::budget_reserve(
    std::vector<BudgetCharge> charges, std::int64_t amount) {
  co_return budget_reserve_now(charges, amount);
}

asio::awaitable<void> SqliteBackend::budget_adjust(std::vector<BudgetCharge> charges,
                                                   std::int64_t delta) {
  // A negative amount is never refused.
  budget_reserve_now(charges, delta);
  co_return;
}

asio::awaitable<void> SqliteBackend::ledger_append(std::vector<core::LedgerRecord> records,
                                                   core::LedgerBatchId batch) {
  ledger_append_now(records, batch);
  co_return;
}

asio::awaitable<std::vector<core::LedgerRecord>> SqliteBackend::ledger_read(std::int64_t since_ms,
                                                                            std::int64_t until_ms) {
  co_return ledger_read_now(since_ms, until_ms);
}

}  // namespace llm_caching::cache

// The SQLite backend's ledger (core/ledger.hpp) and budget counters (core/budget.hpp): the
// tables `ledger` and `budgets` in the cache's file, beside the entries. They are not part of the
// entries' schema version: a file without them gets them on first use, and builds that do not
// know them leave them alone.
#include "cache/sqlite_backend.hpp"
#include "cache/sqlite_connection.hpp"

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
    "avoided_nano_usd INTEGER NOT NULL, latency_us INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS ledger_time ON ledger(time_ms);"
    "CREATE TABLE IF NOT EXISTS budgets (key TEXT PRIMARY KEY, used INTEGER NOT NULL, "
    "expires_at INTEGER NOT NULL);";

constexpr const char* kSelectBudget = "SELECT used, expires_at FROM budgets WHERE key = ?1";
constexpr const char* kWriteBudget = "INSERT OR REPLACE INTO budgets VALUES (?1, ?2, ?3)";

constexpr const char* kInsert =
    "INSERT INTO ledger VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

constexpr const char* kSelect =
    "SELECT time_ms, outcome, task, namespace, model, provider, tenant, tags, input_tokens, "
    "output_tokens, cache_write_tokens, cache_read_tokens, cost_nano_usd, avoided_nano_usd, "
    "latency_us FROM ledger WHERE time_ms >= ?1 AND time_ms < ?2";

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

void bind_record(const SqliteConnection& db, sqlite3_stmt* stmt, const core::LedgerRecord& r) {
  db.bind_int(stmt, 1, r.time_ms);
  db.bind_text(stmt, 2, core::outcome_name(r.outcome));
  db.bind_text(stmt, 3, r.task);
  db.bind_text(stmt, 4, r.namespace_);
  db.bind_text(stmt, 5, r.model);
  db.bind_text(stmt, 6, r.provider);
  db.bind_text(stmt, 7, r.tenant);
  db.bind_text(stmt, 8, r.tags);
  db.bind_int(stmt, 9, r.input_tokens);
  db.bind_int(stmt, 10, r.output_tokens);
  db.bind_int(stmt, 11, r.cache_write_tokens);
  db.bind_int(stmt, 12, r.cache_read_tokens);
  db.bind_int(stmt, 13, r.cost_nano_usd);
  db.bind_int(stmt, 14, r.avoided_nano_usd);
  db.bind_int(stmt, 15, r.latency_us);
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
  return r;
}

}  // namespace

void SqliteBackend::ensure_ledger_table() {
  if (ledger_table_ready_) return;
  db_->exec(kCreateLedger, "creating the ledger table");
  ledger_table_ready_ = true;
}

void SqliteBackend::ledger_append_now(const std::vector<core::LedgerRecord>& records) {
  if (records.empty()) return;
  std::lock_guard lock(mutex_);
  try {
    ensure_ledger_table();
    SqliteConnection& db = *db_;
    const Statement insert{db.prepare(kInsert)};
    db.write_transaction([&] {
      for (const core::LedgerRecord& record : records) {
        StatementUse use(insert.stmt);
        bind_record(db, insert.stmt, record);
        db.step(insert.stmt, "writing a ledger record");
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

asio::awaitable<void> SqliteBackend::ledger_append(std::vector<core::LedgerRecord> records) {
  ledger_append_now(records);
  co_return;
}

asio::awaitable<std::vector<core::LedgerRecord>> SqliteBackend::ledger_read(std::int64_t since_ms,
                                                                            std::int64_t until_ms) {
  co_return ledger_read_now(since_ms, until_ms);
}

}  // namespace llm_caching::cache

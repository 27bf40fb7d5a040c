// The Redis backend's ledger (core/ledger.hpp): every record in the stream llm-caching:{ledger},
// capped at about RedisOptions::ledger_max_records (XADD MAXLEN ~), and per-day counters (calls,
// hits, spent, avoided: in total and by task, model, tenant and outcome) in the hashes
// llm-caching:{ledger}:day:<YYYY-MM-DD>, kept 400 days, for dashboards that outlive the stream.
// One script per batch: the batch is stored whole or not at all, and once: the script keeps the
// last batch each writer stored (llm-caching:{ledger}:writer:<name>, kept 30 days) and skips a
// batch not above it, as one sent again after its reply was lost (core/ledger_batch.hpp). The
// names carry the hash tag {ledger} (the budget counters {budget}): on a cluster, what one
// script touches lies in one slot.
#include "cache/redis_backend.hpp"

#include "llm_caching/errors.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>
#include <utility>

namespace llm_caching::cache {

namespace {

constexpr const char* kLedgerStream = "llm-caching:{ledger}";
constexpr std::string_view kDayPrefix = "llm-caching:{ledger}:day:";
constexpr std::string_view kWriterPrefix = "llm-caching:{ledger}:writer:";
constexpr std::int64_t kCounterSeconds = 400LL * 86'400;
constexpr std::size_t kReadPage = 5000;

/// KEYS: the stream, the writer's last batch. ARGV: record count n, MAXLEN, counter TTL (s),
/// the batch's sequence (0: unnamed, never skipped), the writer key's TTL (s), the n record
/// lines, then triples of (hash, field, increment). Returns n, or -1 for a batch skipped.
constexpr const char* kAppendScript =
    "local n = tonumber(ARGV[1]) local seq = tonumber(ARGV[4]) "
    "if seq > 0 then "
    "if seq <= tonumber(redis.call('get', KEYS[2]) or '0') then return -1 end "
    "redis.call('set', KEYS[2], ARGV[4], 'EX', ARGV[5]) end "
    "for i = 1, n do redis.call('xadd', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'r', ARGV[5 + i]) "
    "end "
    "local i = 6 + n local seen = {} "
    "while i <= #ARGV do redis.call('hincrby', ARGV[i], ARGV[i + 1], ARGV[i + 2]) "
    "if not seen[ARGV[i]] then seen[ARGV[i]] = true redis.call('expire', ARGV[i], ARGV[3]) end "
    "i = i + 3 end return n";

/// KEYS: the counters; ARGV[1]: the amount, then per counter its limit and TTL (ms). Refused:
/// {0, index (0-based), used}; granted: {1, 0, used after...}.
constexpr const char* kReserveScript =
    "local amount = tonumber(ARGV[1]) "
    "for i = 1, #KEYS do local used = tonumber(redis.call('get', KEYS[i]) or '0') "
    "if amount > 0 and used + amount > tonumber(ARGV[2 * i]) then return {0, i - 1, used} end "
    "end "
    "local out = {1, 0} "
    "for i = 1, #KEYS do out[i + 2] = redis.call('incrby', KEYS[i], amount) "
    "local ttl = tonumber(ARGV[2 * i + 1]) "
    "if ttl > 0 then redis.call('pexpire', KEYS[i], ttl) end end return out";

RedisCommand budget_command(const std::vector<Backend::BudgetCharge>& charges,
                            std::int64_t amount) {
  RedisCommand command{"EVAL", kReserveScript, std::to_string(charges.size())};
  for (const Backend::BudgetCharge& charge : charges) command.push_back(charge.key);
  command.push_back(std::to_string(amount));
  for (const Backend::BudgetCharge& charge : charges) {
    command.push_back(std::to_string(charge.limit_nano_usd));
    command.push_back(std::to_string(charge.ttl.count()));
  }
  return command;
}

using Counters = std::map<std::pair<std::string, std::string>, std::int64_t>;

void count(Counters& counters, const core::LedgerRecord& r) {
  const std::string hash = std::string(kDayPrefix) + core::utc_day(r.time_ms);
  const bool hit = core::served_from_cache(r.outcome);
  const std::pair<std::string_view, std::string_view> dims[] = {
      {"total", ""},
      {"task", r.task},
      {"model", r.model},
      {"tenant", r.tenant},
      {"outcome", core::outcome_name(r.outcome)}};
  for (const auto& [dim, value] : dims) {
    const std::string field = fmt::format("{}:{}:", dim, value);
    counters[{hash, field + "calls"}] += r.calls;
    if (hit) counters[{hash, field + "hits"}] += r.calls;
    if (r.cost_nano_usd != 0) counters[{hash, field + "spent_nano_usd"}] += r.cost_nano_usd;
    if (r.avoided_nano_usd != 0) {
      counters[{hash, field + "avoided_nano_usd"}] += r.avoided_nano_usd;
    }
  }
}

}  // namespace

asio::awaitable<void> RedisBackend::ledger_append(std::vector<core::LedgerRecord> records,
                                                  core::LedgerBatchId batch) {
  if (records.empty()) co_return;
  RedisCommand command{"EVAL",
                       kAppendScript,
                       "2",
                       kLedgerStream,
                       std::string(kWriterPrefix) + batch.writer,
                       std::to_string(records.size()),
                       std::to_string(options().ledger_max_records),
                       std::to_string(kCounterSeconds),
                       std::to_string(batch.named() ? batch.sequence : 0),
                       std::to_string(std::chrono::seconds(core::kLedgerWriterKept).count())};
  Counters counters;
  for (const core::LedgerRecord& record : records) {
    command.push_back(core::encode_ledger_line(record));
    count(counters, record);
  }
  for (const auto& [where, amount] : counters) {
    command.push_back(where.first);
    command.push_back(where.second);
    command.push_back(std::to_string(amount));
  }
  const RedisReply reply = co_await run(std::move(command));
  if (reply.kind == RedisReply::Kind::integer && reply.integer < 0) {
    spdlog::info("ledger: batch {} of writer {} was stored before (its reply was lost); skipped",
                 batch.sequence, batch.writer);
  }
}

asio::awaitable<std::vector<core::LedgerRecord>> RedisBackend::ledger_read(std::int64_t since_ms,
                                                                           std::int64_t until_ms) {
  std::vector<core::LedgerRecord> out;
  std::string start = std::to_string(since_ms);
  while (true) {
    RedisCommand command{"XRANGE", kLedgerStream, start, "+", "COUNT", std::to_string(kReadPage)};
    const RedisReply reply = co_await run(std::move(command));
    if (reply.kind != RedisReply::Kind::array || reply.elements.empty()) break;
    for (const RedisReply& item : reply.elements) {
      if (item.elements.size() != 2 || item.elements[1].elements.size() < 2) continue;
      const auto record = core::decode_ledger_line(item.elements[1].elements[1].text);
      if (record && record->time_ms >= since_ms && record->time_ms < until_ms) {
        out.push_back(*record);
      }
    }
    const std::string& last = reply.elements.back().elements.front().text;
    // Read on to the end: a record replayed from a spill file has a later id than its time.
    if (reply.elements.size() < kReadPage) break;
    start = "(" + last;
  }
  co_return out;
}

asio::awaitable<Backend::BudgetVerdict> RedisBackend::budget_reserve(
    std::vector<BudgetCharge> charges, std::int64_t amount) {
  BudgetVerdict verdict;
  if (charges.empty()) co_return verdict;
  const RedisReply reply = co_await run(budget_command(charges, amount));
  if (reply.kind != RedisReply::Kind::array || reply.elements.size() < 3) {
    throw CacheError("Redis budget script gave an unexpected reply on " + describe());
  }
  verdict.granted = reply.elements[0].integer == 1;
  verdict.refused = static_cast<std::size_t>(reply.elements[1].integer);
  for (std::size_t i = 2; i < reply.elements.size(); ++i) {
    verdict.used.push_back(reply.elements[i].integer);
  }
  co_return verdict;
}

asio::awaitable<void> RedisBackend::budget_adjust(std::vector<BudgetCharge> charges,
                                                  std::int64_t delta) {
  if (charges.empty() || delta == 0) co_return;
  // A negative amount is never refused: the same script gives it back.
  co_await run(budget_command(charges, delta));
}

}  // namespace llm_caching::cache

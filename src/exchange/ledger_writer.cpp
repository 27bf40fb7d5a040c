// The ledger's writer thread, its batches and its spill files (ledger_writer.hpp).
#include "exchange/ledger_writer.hpp"

#include "exchange/exchange.hpp"

#include "cache/fnv1a.hpp"
#include "cache/run_blocking.hpp"
#include "core/thread_name.hpp"
#include "exchange/cross_process_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <system_error>

namespace llm_caching::exchange {

namespace fs = std::filesystem;

namespace {

std::atomic<std::uint64_t> next_writer_id{1};

std::uint64_t calls_in(const std::vector<core::LedgerRecord>& records) {
  std::uint64_t calls = 0;
  for (const core::LedgerRecord& r : records) calls += static_cast<std::uint64_t>(r.calls);
  return calls;
}

/// "ledger-<16 hex of the store>-": the spill files of one store (any process's).
std::string spill_prefix(const cache::Backend& backend) {
  return fmt::format("ledger-{:016x}-", cache::fnv1a64(backend.describe()));
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string read_all(int fd) {
  std::string out;
  char buffer[65536];
  off_t at = 0;
  while (true) {
    const ssize_t n = ::pread(fd, buffer, sizeof buffer, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
    at += n;
  }
  return out;
}

}  // namespace

std::string new_ledger_writer_name() {
  return new_lock_token().substr(0, 16);
}

LedgerWriter::LedgerWriter(std::shared_ptr<cache::Backend> backend, LedgerOptions options)
    : backend_(std::move(backend)), options_(std::move(options)), id_(next_writer_id++) {
  if (!options_.spill_dir.empty()) {
    spill_file_ = options_.spill_dir /
                  fmt::format("{}{}.jsonl", spill_prefix(*backend_), static_cast<long>(::getpid()));
  }
  thread_ = std::thread([this] { run(); });
}

LedgerWriter::~LedgerWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (spill_fd_ >= 0) ::close(spill_fd_);
}

LedgerWriter::Shard& LedgerWriter::shard() {
  struct Slot {
    std::uint64_t writer = 0;
    std::shared_ptr<Shard> shard;
  };
  // This thread's shards of the writers it recorded to last: a process has one writer, tests
  // make a few in turn. A slot given up (the thread ended, or the slot went to a fifth writer)
  // leaves its shard to the writer, which takes its records and drops it.
  thread_local std::array<Slot, 4> slots;
  thread_local std::size_t replaced = 0;
  for (const Slot& slot : slots) {
    if (slot.writer == id_) return *slot.shard;
  }
  auto made = std::make_shared<Shard>();
  {
    std::lock_guard lock(mutex_);
    shards_.push_back(made);
  }
  Slot& slot = slots.at(replaced++ % slots.size());
  slot = Slot{id_, std::move(made)};
  return *slot.shard;
}

void LedgerWriter::wake_if_full(std::size_t queued) {
  if (queued < options_.batch_limit) return;
  full_.store(true, std::memory_order_relaxed);
  wake_.notify_one();
}

template <class MakeRecord>
void LedgerWriter::queue(const core::LedgerRecord& like, std::int64_t time_ms,
                         std::int64_t latency_us, MakeRecord make_record) {
  Shard& own = shard();
  std::size_t queued = 0;
  {
    std::lock_guard lock(own.mutex);
    if (!own.queue.empty() && core::fold_served_into(own.queue.back(), like, time_ms, latency_us)) {
      return;
    }
    own.queue.push_back(make_record());
    queued = own.queue.size();
  }
  wake_if_full(queued);
}

void LedgerWriter::record(core::LedgerRecord record) {
  queue(record, record.time_ms, record.latency_us, [&record] { return std::move(record); });
}

void LedgerWriter::record_like(const core::LedgerRecord& like, std::int64_t time_ms,
                               std::int64_t latency_us) {
  queue(like, time_ms, latency_us, [&] {
    core::LedgerRecord copy = like;
    copy.time_ms = time_ms;
    copy.latency_us = latency_us;
    return copy;
  });
}

void LedgerWriter::take_shards(std::vector<core::LedgerRecord>& batch) {
  std::erase_if(shards_, [&batch](const std::shared_ptr<Shard>& shard) {
    // Read before the records are taken: a thread that gave its shard up adds none after.
    const bool given_up = shard.use_count() == 1;
    std::lock_guard lock(shard->mutex);
    std::move(shard->queue.begin(), shard->queue.end(), std::back_inserter(batch));
    shard->queue.clear();  // its capacity stays: the thread's next records need no allocation
    return given_up;
  });
}

void LedgerWriter::flush() {
  std::unique_lock lock(mutex_);
  // The next round to start sees the queue as it is now, and tries the spill files.
  const std::uint64_t round = rounds_started_ + 1;
  flush_round_ = std::max(flush_round_, round);
  wake_.notify_one();
  flushed_.wait(lock, [&] { return rounds_finished_ >= round; });
}

LedgerWriter::Stats LedgerWriter::stats() const {
  std::lock_guard lock(mutex_);
  Stats stats = stats_;
  stats.shards = shards_.size();
  return stats;
}

void LedgerWriter::run() {
  core::name_this_thread("llmc-ledger");
  std::vector<core::LedgerRecord> batch;  // keeps its capacity from round to round
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, options_.flush_interval, [&] {
      return stopping_ || rounds_started_ < flush_round_ || full_.load(std::memory_order_relaxed);
    });
    ++rounds_started_;
    full_.store(false, std::memory_order_relaxed);
    batch.clear();
    take_shards(batch);
    const bool urgent = stopping_ || rounds_started_ <= flush_round_;
    const bool stop = stopping_;
    lock.unlock();
    if (spill_pending_ && (urgent || std::chrono::steady_clock::now() >= next_replay_)) {
      spill_pending_ = !replay_spills();
      if (spill_pending_) next_replay_ = std::chrono::steady_clock::now() + options_.retry_interval;
    }
    std::vector<core::LedgerRecord> rows = core::coalesce_served_records(batch);
    for (std::size_t at = 0; at < rows.size(); at += options_.batch_limit) {
      const auto first = rows.begin() + static_cast<std::ptrdiff_t>(at);
      const auto last = rows.begin() + static_cast<std::ptrdiff_t>(
                                           std::min(rows.size(), at + options_.batch_limit));
      write(std::vector<core::LedgerRecord>(std::make_move_iterator(first),
                                            std::make_move_iterator(last)));
    }
    lock.lock();
    ++rounds_finished_;
    flushed_.notify_all();
    if (stop && rows.empty()) return;
  }
}

void LedgerWriter::write(std::vector<core::LedgerRecord> batch) {
  if (batch.empty()) return;
  const core::LedgerBatchId id{batch_writer_, ++last_sequence_};
  // Behind a pending spill, batches join it: they reach the backend in order, after it.
  const std::uint64_t calls = calls_in(batch);
  if (!spill_pending_ && store(batch, id)) {
    std::lock_guard lock(mutex_);
    stats_.stored += calls;
    return;
  }
  spill(batch, id);
  if (!spill_pending_) {
    spill_pending_ = true;
    next_replay_ = std::chrono::steady_clock::now() + options_.retry_interval;
  }
}

bool LedgerWriter::store(std::vector<core::LedgerRecord> batch, core::LedgerBatchId id) {
  try {
    cache::run_blocking(backend_->ledger_append(std::move(batch), std::move(id)));
    return true;
  } catch (const std::exception& e) {
    spdlog::warn(
        "ledger: cannot write to {} ({}); records go to {} until it answers", backend_->describe(),
        e.what(),
        spill_file_.empty() ? std::string("nowhere (no spill dir)") : spill_file_.string());
    return false;
  }
}

void LedgerWriter::spill(const std::vector<core::LedgerRecord>& batch,
                         const core::LedgerBatchId& id) {
  bool written = false;
  if (!spill_file_.empty()) {
    if (spill_fd_ < 0) {
      std::error_code ec;
      fs::create_directories(options_.spill_dir, ec);
      spill_fd_ = ::open(spill_file_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      // Held while this process lives: another process replays only files nobody holds.
      if (spill_fd_ >= 0) ::flock(spill_fd_, LOCK_EX);
    }
    written = spill_fd_ >= 0 && write_all(spill_fd_, core::encode_spill_batch(id, batch));
  }
  const std::uint64_t calls = calls_in(batch);
  std::lock_guard lock(mutex_);
  if (written) {
    stats_.spilled += calls;
  } else {
    stats_.dropped += calls;
    spdlog::error(
        "ledger: {} calls' records lost: cannot write them to {} nor to a spill file ({})", calls,
        backend_->describe(), spill_file_.empty() ? "no spill dir" : std::strerror(errno));
  }
}

bool LedgerWriter::replay_spills() {
  if (spill_file_.empty()) return true;
  if (spill_fd_ >= 0 && !replay_file(spill_file_, true)) return false;
  // Files of processes that ended before they could replay theirs.
  const std::string prefix = spill_prefix(*backend_);
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(options_.spill_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix) || !name.ends_with(".jsonl") || entry.path() == spill_file_) {
      continue;
    }
    if (!replay_file(entry.path(), false)) return false;
  }
  return true;
}

bool LedgerWriter::replay_file(const fs::path& file, bool own) {
  int fd = own ? spill_fd_ : ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return true;  // gone meanwhile
  if (!own && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return true;  // its process still runs, and replays it itself
  }
  core::SpillText spilled = core::decode_spill_text(read_all(fd));
  if (spilled.unreadable != 0) {
    spdlog::warn("ledger: {} unreadable lines in the spill file {} skipped", spilled.unreadable,
                 file.string());
  }
  std::uint64_t stored_calls = 0;
  const std::size_t stored = replay_batches(spilled.batches, stored_calls);
  const bool ok = stored == spilled.batches.size();
  // What was stored leaves the file; the rest stays, each batch under its name.
  std::string rest;
  for (std::size_t i = stored; i < spilled.batches.size(); ++i) {
    rest += core::encode_spill_batch(spilled.batches[i].id, spilled.batches[i].records);
  }
  if (::ftruncate(fd, 0) != 0 || !write_all(fd, rest)) {
    spdlog::error("ledger: cannot rewrite the spill file {}: {}", file.string(),
                  std::strerror(errno));
  }
  if (ok) ::unlink(file.c_str());
  if (!own || ok) ::close(fd);
  if (own && ok) spill_fd_ = -1;
  {
    std::lock_guard lock(mutex_);
    stats_.stored += stored_calls;
    stats_.replayed += stored_calls;
  }
  if (stored_calls != 0) {
    spdlog::info("ledger: the records of {} calls replayed from {} into {}", stored_calls,
                 file.string(), backend_->describe());
  }
  return ok;
}

std::size_t LedgerWriter::replay_batches(std::vector<core::SpillBatch>& batches,
                                         std::uint64_t& stored_calls) {
  for (std::size_t done = 0; done < batches.size(); ++done) {
    core::SpillBatch& batch = batches[done];
    if (batch.id.named()) {
      const std::uint64_t calls = calls_in(batch.records);
      if (!store(batch.records, batch.id)) return done;
      stored_calls += calls;
      continue;
    }
    // Unnamed: stored a piece at a time, each piece leaving the batch once stored.
    while (!batch.records.empty()) {
      const auto end = batch.records.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                   batch.records.size(), options_.batch_limit));
      std::vector<core::LedgerRecord> piece(batch.records.begin(), end);
      const std::uint64_t calls = calls_in(piece);
      if (!store(std::move(piece), {})) return done;
      batch.records.erase(batch.records.begin(), end);
      stored_calls += calls;
    }
  }
  return batches.size();
}

void record_result(core::LedgerRecord& r, const ExchangeResult& result) {
  core::take_usage(r, result.entry->usage);
  r.cost_nano_usd = result.cost_nano_usd;
  r.avoided_nano_usd = result.avoided_nano_usd;
  r.outcome = result.stale       ? core::LedgerOutcome::stale
              : result.cache_hit ? core::LedgerOutcome::hit
              : result.coalesced ? core::LedgerOutcome::coalesced
                                 : core::LedgerOutcome::miss;
}

}  // namespace llm_caching::exchange

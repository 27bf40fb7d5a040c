// A ledger batch's name, and the spill file's text (docs/COSTS.md, "No record is lost"). A
// writer names each batch it forms (its own random name, then 1, 2, 3...) and keeps the name
// through the spill file, so that a store which ran a batch whose reply was lost (Redis killed
// between its script and its answer) skips it when the batch comes again: a writer's batches
// reach the store in order, so the store keeps the last sequence it stored per writer and skips
// any not above it. Exactly once, not at least once. No I/O here.
#pragma once

#include "core/ledger.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llm_caching::core {

struct LedgerBatchId {
  /// 16 hex digits, random per writer (exchange::new_ledger_writer_name); empty: unnamed (a spill
  /// file from before batch names), never skipped.
  std::string writer;
  /// 1, 2, 3... in the order the writer formed its batches.
  std::uint64_t sequence = 0;

  bool named() const noexcept { return !writer.empty() && sequence != 0; }
  friend bool operator==(const LedgerBatchId&, const LedgerBatchId&) = default;
};

/// How long a store remembers a writer's last batch after it: longer than any spill file waits
/// for its replay (a writer retries every second; the next process on the store replays a dead
/// one's file when it starts). Redis's key TTL and SQLite's row lifetime alike.
inline constexpr std::chrono::days kLedgerWriterKept{30};

/// One batch as spill-file text: a line "#batch <writer> <sequence>" (none when unnamed), then
/// a line per record (encode_ledger_line), each ending in a newline.
std::string encode_spill_batch(const LedgerBatchId& id, const std::vector<LedgerRecord>& records);

struct SpillBatch {
  LedgerBatchId id;
  std::vector<LedgerRecord> records;
};
struct SpillText {
  /// In file order. Records before the first batch line (a file from before batch names) make
  /// one unnamed batch.
  std::vector<SpillBatch> batches;
  /// Lines that could not be read in full (a crash cut the last one), skipped.
  std::size_t unreadable = 0;
};
SpillText decode_spill_text(std::string_view text);

}  // namespace llm_caching::core

// Batch names and the spill file's text (core/ledger_batch.hpp): a batch keeps its name through
// the file, a file from before names is one unnamed batch, and cut lines are counted, not read.
#include "core/ledger_batch.hpp"
#include "support/ledger_records.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using namespace llm_caching;
using core::LedgerBatchId;
using core::LedgerOutcome;
using core::LedgerRecord;
using llmc_test::kDec1;
using llmc_test::misses;
using llmc_test::record;

TEST(LedgerBatch, SpilledBatchesComeBackInOrderUnderTheirNames) {
  const LedgerBatchId first{"00ff00ff00ff00ff", 7};
  const LedgerBatchId second{"00ff00ff00ff00ff", 8};
  const std::string text = core::encode_spill_batch(first, misses(0, 3)) +
                           core::encode_spill_batch(second, misses(3, 2));
  EXPECT_TRUE(text.starts_with("#batch 00ff00ff00ff00ff 7\n")) << text;
  const core::SpillText read = core::decode_spill_text(text);
  EXPECT_EQ(read.unreadable, 0u);
  ASSERT_EQ(read.batches.size(), 2u);
  EXPECT_EQ(read.batches[0].id, first);
  EXPECT_EQ(read.batches[0].records, misses(0, 3));
  EXPECT_EQ(read.batches[1].id, second);
  EXPECT_EQ(read.batches[1].records, misses(3, 2));
}

TEST(LedgerBatch, RecordsBeforeAnyBatchLineAreOneUnnamedBatch) {
  std::string text;
  for (const LedgerRecord& r : misses(0, 4)) text += core::encode_ledger_line(r) + "\n";
  EXPECT_EQ(core::encode_spill_batch({}, misses(0, 4)), text);  // unnamed: no batch line
  text += core::encode_spill_batch({"0123456789abcdef", 1}, misses(4, 1));
  const core::SpillText read = core::decode_spill_text(text);
  ASSERT_EQ(read.batches.size(), 2u);
  EXPECT_FALSE(read.batches[0].id.named());
  EXPECT_EQ(read.batches[0].records, misses(0, 4));
  EXPECT_TRUE(read.batches[1].id.named());
}

TEST(LedgerBatch, CutLinesAreCountedAndACutBatchLineStartsAnUnnamedBatch) {
  std::string text = core::encode_spill_batch({"0123456789abcdef", 1}, misses(0, 2));
  text += "#batch 0123456789abcdef\n";  // cut before its sequence
  text += core::encode_ledger_line(record(kDec1 + 9, "after-cut", LedgerOutcome::hit, 0)) + "\n";
  text += "#batch NOT-HEX 3\n#batch 0123456789abcdef 12x\n";
  text +=
      core::encode_ledger_line(record(kDec1 + 10, "last", LedgerOutcome::miss, 1)).substr(0, 20);
  const core::SpillText read = core::decode_spill_text(text);
  EXPECT_EQ(read.unreadable, 4u);
  ASSERT_EQ(read.batches.size(), 4u);
  EXPECT_EQ(read.batches[0].records.size(), 2u);
  EXPECT_FALSE(read.batches[1].id.named());
  ASSERT_EQ(read.batches[1].records.size(), 1u);
  EXPECT_EQ(read.batches[1].records[0].task, "after-cut");
  EXPECT_TRUE(read.batches[3].records.empty());
}

}  // namespace

// Ledger records for the ledger's unit tests (test_ledger.cpp, test_ledger_writer.cpp).
#pragma once

#include "core/ledger.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace llmc_test {

constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kDec1 = 1'796'083'200'000;  // 2026-12-01T00:00:00Z

inline llm_caching::core::LedgerRecord record(std::int64_t time_ms, std::string task,
                                              llm_caching::core::LedgerOutcome outcome,
                                              std::int64_t cost, std::int64_t avoided = 0,
                                              std::string tags = {}) {
  llm_caching::core::LedgerRecord r;
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

/// `count` misses, one a millisecond from kDec1 + `first`: task "t<i>", cost i nano-USD.
inline std::vector<llm_caching::core::LedgerRecord> misses(int first, int count) {
  std::vector<llm_caching::core::LedgerRecord> out;
  for (int i = first; i < first + count; ++i) {
    out.push_back(
        record(kDec1 + i, "t" + std::to_string(i), llm_caching::core::LedgerOutcome::miss, i));
  }
  return out;
}

}  // namespace llmc_test

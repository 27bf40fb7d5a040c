// Batch names and the spill file's text (ledger_batch.hpp).
#include "core/ledger_batch.hpp"

#include <fmt/format.h>

#include <charconv>

namespace llm_caching::core {

namespace {

constexpr std::string_view kBatchLine = "#batch ";

bool is_hex(std::string_view text) noexcept {
  return !text.empty() && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

/// "#batch <writer> <sequence>" → its id; an unnamed id when the line is cut or foreign.
LedgerBatchId parse_batch_line(std::string_view rest) {
  const std::size_t space = rest.find(' ');
  if (space == std::string_view::npos) return {};
  const std::string_view writer = rest.substr(0, space);
  const std::string_view digits = rest.substr(space + 1);
  std::uint64_t sequence = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), sequence);
  if (!is_hex(writer) || error != std::errc() || end != digits.data() + digits.size()) return {};
  return {std::string(writer), sequence};
}

}  // namespace

std::string encode_spill_batch(const LedgerBatchId& id, const std::vector<LedgerRecord>& records) {
  std::string text;
  if (id.named()) text = fmt::format("{}{} {}\n", kBatchLine, id.writer, id.sequence);
  for (const LedgerRecord& record : records) {
    text += encode_ledger_line(record);
    text += '\n';
  }
  return text;
}

SpillText decode_spill_text(std::string_view text) {
  SpillText out;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty()) continue;
    if (line.starts_with(kBatchLine)) {
      LedgerBatchId id = parse_batch_line(line.substr(kBatchLine.size()));
      // A cut batch line still opens a batch of its own, unnamed: its records are not merged
      // into the batch before it.
      if (!id.named()) ++out.unreadable;
      out.batches.push_back({std::move(id), {}});
    } else if (auto record = decode_ledger_line(line)) {
      if (out.batches.empty()) out.batches.emplace_back();
      out.batches.back().records.push_back(std::move(*record));
    } else {
      ++out.unreadable;  // a line cut by a crash
    }
  }
  return out;
}

}  // namespace llm_caching::core

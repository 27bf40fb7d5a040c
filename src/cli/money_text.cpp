// Dollar amounts in --json output, written from the exact nano-USD integers.
#include "cli/commands.hpp"

#include <cstdlib>
#include <string>

namespace llm_caching::cli {

std::string money_text(std::int64_t nano_usd) {
  // A double serialises as 5.55E-6 or 0E0, and rounds; the integer divides exactly.
  constexpr std::int64_t kNanoPerDollar = 1'000'000'000;
  const bool negative = nano_usd < 0;
  const std::uint64_t magnitude =
      negative ? std::uint64_t(0) - static_cast<std::uint64_t>(nano_usd) : std::uint64_t(nano_usd);
  std::string fraction = std::to_string(magnitude % kNanoPerDollar);
  fraction.insert(0, 9 - fraction.size(), '0');
  // Trailing zeros say nothing, but cents are kept: "0.00", "1.50", "0.00000555".
  while (fraction.size() > 2 && fraction.back() == '0') fraction.pop_back();
  return (negative ? "-" : "") + std::to_string(magnitude / kNanoPerDollar) + "." + fraction;
}

}  // namespace llm_caching::cli

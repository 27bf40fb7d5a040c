// The SSE parser (providers/sse.hpp) over an upstream's stream, fed in two pieces split where
// the first input byte says: the events must not depend on where the bytes were split.
#include "llm_caching/errors.hpp"
#include "providers/sse.hpp"

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace llm_caching;
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t split = text.empty() ? 0 : data[0] % (text.size() + 1);
  std::vector<providers::SseEvent> whole, pieces;
  bool whole_failed = false, pieces_failed = false;
  try {
    providers::SseParser parser(4096);
    parser.feed(text, whole);
    parser.finish();
  } catch (const ProviderError&) {
    whole_failed = true;
  }
  try {
    providers::SseParser parser(4096);
    parser.feed(text.substr(0, split), pieces);
    parser.feed(text.substr(split), pieces);
    parser.finish();
  } catch (const ProviderError&) {
    pieces_failed = true;
  }
  if (!whole_failed && !pieces_failed && whole != pieces) std::abort();
  return 0;
}

// Each provider codec's response parsers (providers/codec.hpp) over an upstream's answer: the
// whole parse, the one-pass usage scan and the stream conversions. ProviderError is an answer;
// anything else (a crash, a sanitizer report, another exception) is a finding.
#include "llm_caching/errors.hpp"
#include "providers/codec.hpp"

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace llm_caching;
  if (size == 0) return 0;
  const auto provider = static_cast<Provider>(data[0] % 3);
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    (void)providers::parse_response(provider, body, (data[0] & 0x80) != 0);
  } catch (const ProviderError&) {
  }
  try {
    (void)providers::parse_usage(provider, body);
  } catch (const ProviderError&) {
  }
  try {
    (void)providers::sse_to_response(provider, body);
  } catch (const ProviderError&) {
  }
  try {
    (void)providers::response_to_sse(provider, body);
  } catch (const ProviderError&) {
  }
  return 0;
}

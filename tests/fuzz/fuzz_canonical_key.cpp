// Canonical JSON and the cache key (DESIGN §3): any request body a client sends is parsed with
// parse_json_exact and keyed for each provider; canonical JSON must be a fixed point (the
// canonical form of the canonical form is itself) and keying must never crash.
#include "llm_caching/cache_key.hpp"
#include "llm_caching/errors.hpp"

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace llm_caching;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  boost::json::error_code ec;
  const boost::json::value request = parse_json_exact(text, ec);
  if (ec) return 0;
  std::string canonical;
  try {
    canonical = canonical_json(request);
  } catch (const Error&) {
    return 0;  // a number beyond a double (1e400): refused with a ConfigurationError, a 400
  }
  boost::json::error_code again_ec;
  const boost::json::value again = parse_json_exact(canonical, again_ec);
  if (again_ec || canonical_json(again) != canonical) std::abort();
  if (!request.is_object()) return 0;
  for (const Provider provider : {Provider::openai, Provider::anthropic, Provider::gemini}) {
    try {
      (void)derive_key(provider, "fuzz-model", request.get_object(), "scope");
    } catch (const Error&) {
      // A refusal (a ConfigurationError naming the problem) is an answer, not a crash.
    }
  }
  return 0;
}

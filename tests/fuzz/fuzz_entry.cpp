// The entry decoder and the signature check (core/entry.hpp, core/entry_signature.hpp): bytes
// from a cache store are hostile. decode_entry must never crash or read out of bounds; whatever
// it accepts must encode and decode back to the same entry; check_signature must never accept
// bytes it did not sign.
#include "core/entry.hpp"
#include "core/entry_signature.hpp"

#include <cstdlib>
#include <string_view>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace llm_caching::core;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::string key = "llm-caching:v1:default:fuzz";
  const SigningKeys keys{"fuzz-signing-key-0123456789", "previous-fuzz-key-0123456789"};
  // The input is not ours, so no key of ours signed it (a MAC collision would be a finding).
  if (accepted(check_signature(bytes, key, keys))) std::abort();
  (void)entry_mac(bytes);
  (void)unsigned_entry(bytes);
  auto decoded = decode_entry(bytes);
  if (auto* entry = std::get_if<CacheEntry>(&decoded)) {
    if (!entry_fits(*entry)) return 0;
    const std::string again = encode_entry(*entry);
    auto round_trip = decode_entry(again);
    if (!std::holds_alternative<CacheEntry>(round_trip) ||
        std::get<CacheEntry>(round_trip) != *entry) {
      std::abort();
    }
    const std::string signed_bytes = sign_entry(again, key, keys.current);
    if (check_signature(signed_bytes, key, keys) != SignatureCheck::valid) std::abort();
  }
  return 0;
}

// The entry decoder and the signature check (core/entry.hpp, core/entry_signature.hpp): bytes
// from a cache store are hostile. decode_entry must never crash or read out of bounds; whatever
// it accepts must encode and decode back to the same entry; check_signature must never accept
// bytes it did not sign.
#include "core/checksum.hpp"
#include "core/entry.hpp"
#include "core/entry_signature.hpp"

#include <cstdlib>
#include <string_view>
#include <variant>

namespace {

using namespace llm_caching::core;

/// Decodes `bytes`; whatever decodes must encode, decode back the same, and sign and verify.
void decode_and_round_trip(std::string_view bytes, const std::string& key,
                           const SigningKeys& keys) {
  auto decoded = decode_entry(bytes);
  auto* entry = std::get_if<CacheEntry>(&decoded);
  if (entry == nullptr || !entry_fits(*entry)) return;
  const std::string again = encode_entry(*entry);
  auto round_trip = decode_entry(again);
  if (!std::holds_alternative<CacheEntry>(round_trip) ||
      std::get<CacheEntry>(round_trip) != *entry) {
    std::abort();
  }
  const std::string signed_bytes = sign_entry(again, key, keys.current);
  if (check_signature(signed_bytes, key, keys) != SignatureCheck::valid) std::abort();
}

/// The input with its header's length and CRC-32C made to fit its payload: without this, nearly
/// every mutation stops at bad_checksum and the payload parser is never reached.
std::string with_fitting_header(std::string_view bytes) {
  std::string fixed(bytes);
  const std::size_t payload = fixed.size() - kEntryHeaderSize;
  const std::uint32_t crc = crc32c(std::string_view(fixed).substr(kEntryHeaderSize));
  for (int i = 0; i < 4; ++i) {
    fixed[8 + i] = static_cast<char>((payload >> (8 * i)) & 0xFF);
    fixed[12 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  }
  fixed[5] =
      static_cast<char>(fixed[5] & ~kEntryFlagSigned);  // no MAC: the payload runs to the end
  return fixed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::string key = "llm-caching:v1:default:fuzz";
  const SigningKeys keys{"fuzz-signing-key-0123456789", "previous-fuzz-key-0123456789"};
  // The input is not ours, so no key of ours signed it (a MAC collision would be a finding).
  if (accepted(check_signature(bytes, key, keys))) std::abort();
  (void)entry_mac(bytes);
  (void)unsigned_entry(bytes);
  decode_and_round_trip(bytes, key, keys);
  if (size >= kEntryHeaderSize) decode_and_round_trip(with_fitting_header(bytes), key, keys);
  return 0;
}

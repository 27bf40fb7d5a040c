// Signed entries (docs/SECURITY-MODEL.md, "Poisoned caches"): an HMAC-SHA256 of the storage key
// and the encoded entry, so that bytes written into a shared store by anyone without the key
// are told apart from this deployment's own. Pure functions; the key never leaves them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace llm_caching::core {

/// The header flag of a signed entry (entry.hpp's flags byte, bit 1): the MAC follows the payload.
inline constexpr unsigned char kEntryFlagSigned = 0x02;
inline constexpr std::size_t kEntryMacBytes = 32;

/// The keys of a deployment. Raw bytes, never printed: no function here puts them in a string
/// that leaves it, and the struct has no formatter.
struct SigningKeys {
  std::string current;   ///< signs every write; empty: signing off, any entry is read
  std::string previous;  ///< still accepted on reads during a rotation; empty: none
  bool enabled() const noexcept { return !current.empty(); }
};

/// Marks encode_entry's output as signed and appends HMAC-SHA256(key, domain, storage_key,
/// bytes with the flag set). The storage key is covered so that a signed answer copied under
/// another key is refused too. Throws llm_caching::Error if OpenSSL fails.
std::string sign_entry(std::string encoded, std::string_view storage_key, std::string_view key);

enum class SignatureCheck {
  valid,           ///< signed with the current key
  valid_previous,  ///< signed with the previous key (a rotation in progress)
  unsigned_entry,  ///< no signature (written without a key, or by someone without it)
  wrong_mac,       ///< a signature no key of ours made: forged, or moved from another key
};
std::string_view to_string(SignatureCheck check) noexcept;
inline bool accepted(SignatureCheck check) noexcept {
  return check == SignatureCheck::valid || check == SignatureCheck::valid_previous;
}

/// Checks stored bytes against the keys (constant-time comparison). Bytes too short to hold a
/// header count as unsigned; whether the entry itself decodes is decode_entry's business.
SignatureCheck check_signature(std::string_view bytes, std::string_view storage_key,
                               const SigningKeys& keys);

/// The MAC of signed bytes (empty when unsigned), and the bytes without it (flag cleared):
/// for a store that keeps the entry in another form and the MAC beside it (dir://).
std::string_view entry_mac(std::string_view bytes) noexcept;
std::string unsigned_entry(std::string_view bytes);
/// Puts a MAC taken by entry_mac back on the unsigned bytes it was made for.
std::string attach_mac(std::string unsigned_bytes, std::string_view mac);

}  // namespace llm_caching::core

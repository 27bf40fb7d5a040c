#include "core/entry_signature.hpp"

#include "core/entry.hpp"
#include "llm_caching/errors.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <cstdint>
#include <memory>

namespace llm_caching::core {
namespace {

constexpr std::size_t kFlagsOffset = 5;
/// Domain separation: these MACs can never be confused with another use of the same key.
constexpr std::string_view kDomain = "llm-caching entry mac v1\n";

using Mac = std::array<unsigned char, kEntryMacBytes>;

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* c) const noexcept { EVP_MAC_CTX_free(c); }
};

EVP_MAC* hmac_algorithm() {
  // Fetched once: a fetch per call costs more than the MAC of a small entry.
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) throw Error("OpenSSL has no HMAC");
  return mac;
}

/// A context keyed with `key`, ready for a new MAC. Each thread keeps one per key it used last
/// (the current and the previous key): setting a key up (a digest fetched by name, the pads
/// hashed) cost 5 us per entry, more than the MAC of a 2 KB entry; a reset reuses it.
EVP_MAC_CTX* keyed_context(std::string_view key) {
  struct Slot {
    std::string key;
    std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx;
  };
  thread_local std::array<Slot, 2> slots;
  thread_local std::size_t next_slot = 0;
  for (Slot& slot : slots) {
    if (slot.ctx && slot.key == key) {
      if (EVP_MAC_init(slot.ctx.get(), nullptr, 0, nullptr) != 1) break;  // same key, reset
      return slot.ctx.get();
    }
  }
  Slot& slot = slots[next_slot++ % slots.size()];
  slot.ctx.reset(EVP_MAC_CTX_new(hmac_algorithm()));
  slot.key.assign(key);
  char digest_name[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
      OSSL_PARAM_construct_end()};
  const auto* key_bytes = reinterpret_cast<const unsigned char*>(key.data());
  if (!slot.ctx || EVP_MAC_init(slot.ctx.get(), key_bytes, key.size(), params) != 1) {
    slot.ctx.reset();
    throw Error("setting up an HMAC-SHA256 key failed (OpenSSL)");
  }
  return slot.ctx.get();
}

Mac compute_mac(std::string_view key, std::string_view storage_key, std::string_view signed_part) {
  EVP_MAC_CTX* const ctx = keyed_context(key);
  // The key's length framed in, so no (key, bytes) pair can pass for another.
  std::array<unsigned char, 8> key_length{};
  for (std::size_t i = 0; i < key_length.size(); ++i) {
    key_length[i] = static_cast<unsigned char>((std::uint64_t{storage_key.size()} >> (8 * i)));
  }
  auto update = [&](std::string_view part) {
    return EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(part.data()), part.size()) ==
           1;
  };
  Mac out{};
  std::size_t written = 0;
  // No message names the key or the bytes: an error here must not carry either.
  if (!update(kDomain) || EVP_MAC_update(ctx, key_length.data(), key_length.size()) != 1 ||
      !update(storage_key) || !update(signed_part) ||
      EVP_MAC_final(ctx, out.data(), &written, out.size()) != 1 || written != out.size()) {
    throw Error("computing an entry's HMAC-SHA256 failed (OpenSSL)");
  }
  return out;
}

bool is_signed(std::string_view bytes) noexcept {
  return bytes.size() >= kEntryHeaderSize + kEntryMacBytes &&
         (static_cast<unsigned char>(bytes[kFlagsOffset]) & kEntryFlagSigned) != 0;
}

bool mac_equals(const Mac& expected, std::string_view stored) noexcept {
  return CRYPTO_memcmp(expected.data(), stored.data(), kEntryMacBytes) == 0;
}

}  // namespace

std::string sign_entry(std::string encoded, std::string_view storage_key, std::string_view key) {
  if (encoded.size() < kEntryHeaderSize) throw Error("cannot sign a truncated cache entry");
  encoded[kFlagsOffset] = static_cast<char>(encoded[kFlagsOffset] | kEntryFlagSigned);
  const Mac mac = compute_mac(key, storage_key, encoded);
  encoded.append(reinterpret_cast<const char*>(mac.data()), mac.size());
  return encoded;
}

std::string_view to_string(SignatureCheck check) noexcept {
  switch (check) {
    case SignatureCheck::valid:
      return "valid";
    case SignatureCheck::valid_previous:
      return "signed with the previous key";
    case SignatureCheck::unsigned_entry:
      return "unsigned";
    case SignatureCheck::wrong_mac:
      return "wrong signature";
  }
  return "unknown";
}

SignatureCheck check_signature(std::string_view bytes, std::string_view storage_key,
                               const SigningKeys& keys) {
  if (!is_signed(bytes)) return SignatureCheck::unsigned_entry;
  const std::string_view signed_part = bytes.substr(0, bytes.size() - kEntryMacBytes);
  const std::string_view stored = bytes.substr(signed_part.size());
  if (!keys.current.empty() &&
      mac_equals(compute_mac(keys.current, storage_key, signed_part), stored)) {
    return SignatureCheck::valid;
  }
  if (!keys.previous.empty() &&
      mac_equals(compute_mac(keys.previous, storage_key, signed_part), stored)) {
    return SignatureCheck::valid_previous;
  }
  return SignatureCheck::wrong_mac;
}

std::string_view entry_mac(std::string_view bytes) noexcept {
  if (!is_signed(bytes)) return {};
  return bytes.substr(bytes.size() - kEntryMacBytes);
}

std::string unsigned_entry(std::string_view bytes) {
  if (!is_signed(bytes)) return std::string(bytes);
  std::string out(bytes.substr(0, bytes.size() - kEntryMacBytes));
  out[kFlagsOffset] = static_cast<char>(out[kFlagsOffset] & ~kEntryFlagSigned);
  return out;
}

std::string attach_mac(std::string unsigned_bytes, std::string_view mac) {
  if (unsigned_bytes.size() < kEntryHeaderSize || mac.size() != kEntryMacBytes) {
    return unsigned_bytes;
  }
  unsigned_bytes[kFlagsOffset] = static_cast<char>(unsigned_bytes[kFlagsOffset] | kEntryFlagSigned);
  unsigned_bytes.append(mac);
  return unsigned_bytes;
}

}  // namespace llm_caching::core

// Keys and signing, for hosts, bots, tests and load generators that make their own events.
// A relay only verifies; this is the other side.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "relaycore/event.hpp"
#include "relaycore/export.hpp"
#include "relaycore/status.hpp"

namespace relaycore {

using SecretKey = std::array<std::uint8_t, 32>;

class RELAYCORE_API Keypair {
 public:
  // A fresh key from the operating system's random source.
  static Keypair generate();
  // "invalid: ..." when the bytes are not a valid secp256k1 secret key.
  static Result<Keypair> from_secret(const SecretKey& secret);
  static Result<Keypair> from_secret_hex(std::string_view hex);

  const SecretKey& secret() const noexcept { return secret_; }
  const Pubkey& pubkey() const noexcept { return pubkey_; }

 private:
  Keypair(const SecretKey& secret, const Pubkey& pubkey) : secret_(secret), pubkey_(pubkey) {}
  SecretKey secret_;
  Pubkey pubkey_;
};

// What a signer fills in; the pubkey, id and signature are computed.
struct EventDraft {
  std::int64_t created_at = 0;
  std::uint16_t kind = 1;
  std::vector<Tag> tags;
  std::string content;
};

// Builds, hashes and signs an event (BIP-340, fresh auxiliary randomness).
RELAYCORE_API Result<EventPtr> sign_event(const Keypair& keys, EventDraft draft,
                                          const Limits& limits = Limits());

}  // namespace relaycore

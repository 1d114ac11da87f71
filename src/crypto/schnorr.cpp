// BIP-340 verification and signing over libsecp256k1's schnorrsig and extrakeys modules.
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>

#include "crypto/secp256k1_context.hpp"
#include "relaycore/event.hpp"
#include "relaycore/hex.hpp"
#include "relaycore/keys.hpp"

namespace relaycore {

namespace {

// The keys a thread parsed last, in 64 slots picked by the key's first byte. Parsing an x-only
// key takes a square root, about a tenth of a verification, and a relay sees the same authors
// again and again.
// Only keys that parsed are kept; a parsed key is the same whatever the event it came with.
class ParsedKeys {
 public:
  // The parsed form of `pubkey`, or null if it is not a valid x-only key.
  const secp256k1_xonly_pubkey* get(const secp256k1_context* ctx, const Pubkey& pubkey) noexcept {
    Slot& slot = slots_[pubkey[0] % kSlots];
    if (slot.used && slot.pubkey == pubkey) return &slot.parsed;
    if (secp256k1_xonly_pubkey_parse(ctx, &slot.parsed, pubkey.data()) != 1) {
      slot.used = false;
      return nullptr;
    }
    slot.pubkey = pubkey;
    slot.used = true;
    return &slot.parsed;
  }

 private:
  static constexpr std::size_t kSlots = 64;
  struct Slot {
    bool used = false;
    Pubkey pubkey{};
    secp256k1_xonly_pubkey parsed{};
  };
  Slot slots_[kSlots];
};

}  // namespace

bool verify_schnorr(const Pubkey& pubkey, const Signature& sig, const std::uint8_t* message,
                    std::size_t size) noexcept {
  const secp256k1_context* ctx = crypto::secp256k1_shared_context();
  thread_local ParsedKeys keys;
  const secp256k1_xonly_pubkey* key = keys.get(ctx, pubkey);
  if (key == nullptr) return false;
  // libsecp256k1 wants a non-null pointer even for an empty message.
  static const std::uint8_t kEmpty = 0;
  return secp256k1_schnorrsig_verify(ctx, sig.data(), size == 0 ? &kEmpty : message, size, key) ==
         1;
}

Keypair Keypair::generate() {
  for (;;) {
    SecretKey secret{};
    crypto::os_random(secret.data(), secret.size());
    Result<Keypair> keys = from_secret(secret);
    if (keys.is_ok()) return keys.value();
  }
}

Result<Keypair> Keypair::from_secret(const SecretKey& secret) {
  const secp256k1_context* ctx = crypto::secp256k1_shared_context();
  secp256k1_keypair pair;
  if (secp256k1_keypair_create(ctx, &pair, secret.data()) != 1) {
    return Status::invalid("secret key is out of range");
  }
  secp256k1_xonly_pubkey xonly;
  if (secp256k1_keypair_xonly_pub(ctx, &xonly, nullptr, &pair) != 1) {
    return Status::invalid("secret key is out of range");
  }
  Pubkey pubkey{};
  secp256k1_xonly_pubkey_serialize(ctx, pubkey.data(), &xonly);
  return Keypair(secret, pubkey);
}

Result<Keypair> Keypair::from_secret_hex(std::string_view hex) {
  SecretKey secret{};
  if (!from_hex(hex, secret)) return Status::invalid("secret key is not 64 lowercase hex");
  return from_secret(secret);
}

Result<EventPtr> sign_event(const Keypair& keys, EventDraft draft, const Limits& limits) {
  EventFields fields;
  fields.pubkey = keys.pubkey();
  fields.created_at = draft.created_at;
  fields.kind = draft.kind;
  fields.tags = std::move(draft.tags);
  fields.content = std::move(draft.content);
  // The id depends only on fields already set, so build once to hash, then fill in id and sig.
  Result<EventPtr> unsigned_event = Event::create(EventFields(fields), limits);
  if (!unsigned_event) return unsigned_event;
  fields.id = unsigned_event.value()->compute_id();

  const secp256k1_context* ctx = crypto::secp256k1_shared_context();
  secp256k1_keypair pair;
  if (secp256k1_keypair_create(ctx, &pair, keys.secret().data()) != 1) {
    return Status::error("could not load the secret key");
  }
  std::array<unsigned char, 32> aux{};
  crypto::os_random(aux.data(), aux.size());
  if (secp256k1_schnorrsig_sign32(ctx, fields.sig.data(), fields.id.data(), &pair, aux.data()) !=
      1) {
    return Status::error("signing failed");
  }
  return Event::create(std::move(fields), limits);
}

}  // namespace relaycore

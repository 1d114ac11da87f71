#include "crypto/secp256k1_context.hpp"

#include <openssl/rand.h>

#include <array>
#include <cstdlib>

namespace relaycore::crypto {

void os_random(unsigned char* out, std::size_t size) {
  if (RAND_bytes(out, static_cast<int>(size)) != 1) std::abort();
}

const secp256k1_context* secp256k1_shared_context() {
  static const secp256k1_context* ctx = [] {
    secp256k1_context* c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (c == nullptr) std::abort();
    std::array<unsigned char, 32> seed{};
    os_random(seed.data(), seed.size());
    // Randomisation blinds signing against side channels; verification does not need it.
    if (secp256k1_context_randomize(c, seed.data()) != 1) std::abort();
    return c;
  }();
  return ctx;
}

}  // namespace relaycore::crypto

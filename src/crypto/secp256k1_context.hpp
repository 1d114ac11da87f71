// The one libsecp256k1 context relaycore shares. It is created and randomised once, then only
// read, which libsecp256k1 allows from any number of threads at once.
#pragma once

#include <secp256k1.h>

#include <cstddef>

namespace relaycore::crypto {

const secp256k1_context* secp256k1_shared_context();

// Fills `out` with `size` bytes from the operating system's random source; aborts on failure,
// since nothing safe can be done without randomness.
void os_random(unsigned char* out, std::size_t size);

}  // namespace relaycore::crypto

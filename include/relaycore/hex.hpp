// Hex: lowercase hexadecimal, the only form NIP-01 allows for ids, keys and signatures.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relaycore/export.hpp"

namespace relaycore {

// Writes `size` bytes as 2*size lowercase hex characters to `out`.
RELAYCORE_API void hex_encode(const std::uint8_t* data, std::size_t size, char* out) noexcept;

template <std::size_t N>
std::string to_hex(const std::array<std::uint8_t, N>& bytes) {
  std::string out(2 * N, '\0');
  hex_encode(bytes.data(), N, out.data());
  return out;
}

// Decodes exactly 2*size lowercase hex characters. Uppercase and any other character fail.
RELAYCORE_API bool hex_decode(std::string_view hex, std::uint8_t* out, std::size_t size) noexcept;

template <std::size_t N>
bool from_hex(std::string_view hex, std::array<std::uint8_t, N>& out) noexcept {
  return hex.size() == 2 * N && hex_decode(hex, out.data(), N);
}

}  // namespace relaycore

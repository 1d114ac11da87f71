#include "relaycore/hex.hpp"

namespace relaycore {
namespace {

constexpr char kDigits[] = "0123456789abcdef";

// -1 for anything but 0-9 and a-f: NIP-01 allows lowercase only.
int nibble(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

void hex_encode(const std::uint8_t* data, std::size_t size, char* out) noexcept {
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0xf];
  }
}

bool hex_decode(std::string_view hex, std::uint8_t* out, std::size_t size) noexcept {
  if (hex.size() != 2 * size) return false;
  for (std::size_t i = 0; i < size; ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return true;
}

}  // namespace relaycore

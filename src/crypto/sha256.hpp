// SHA-256 from OpenSSL's libcrypto, behind a small incremental interface so that callers hash
// pieces of a buffer in place instead of concatenating them first.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace relaycore::crypto {

using Digest = std::array<std::uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Starts a new hash; an object can be reused for many.
  void reset();
  void update(const void* data, std::size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Digest finish();

 private:
  struct Impl;
  Impl* impl_;
};

// One-shot hash.
Digest sha256(const void* data, std::size_t size);
inline Digest sha256(std::string_view s) { return sha256(s.data(), s.size()); }

}  // namespace relaycore::crypto

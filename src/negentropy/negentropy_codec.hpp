// The wire pieces of Negentropy protocol version 1: varints, range bounds with their
// delta-encoded timestamps, and range fingerprints. negentropy.cpp builds messages from them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relaycore/negentropy.hpp"
#include "relaycore/status.hpp"

namespace relaycore::negentropy {

// The timestamp no record may have; a bound at it ends the last range.
inline constexpr std::uint64_t kInfinity = UINT64_MAX;
inline constexpr std::size_t kIdBytes = 32;
inline constexpr std::size_t kFingerprintBytes = 16;

enum class Mode : std::uint8_t { kSkip = 0, kFingerprint = 1, kIdList = 2 };

using Fingerprint = std::array<std::uint8_t, kFingerprintBytes>;

// The exclusive upper end of a range: a timestamp and the first `prefix_len` bytes of an id,
// kept zero-padded in `id`, which is how the protocol compares it with records.
struct Bound {
  std::uint64_t timestamp = 0;
  std::uint8_t prefix_len = 0;
  EventId id{};

  friend bool operator<(const Bound& a, const Bound& b) noexcept {
    if (a.timestamp != b.timestamp) return a.timestamp < b.timestamp;
    return a.id < b.id;
  }
};

inline Bound infinite_bound() noexcept { return Bound{kInfinity, 0, {}}; }

// True when the record lies below the bound.
inline bool below(const NegentropyItem& item, const Bound& bound) noexcept {
  if (item.created_at != bound.timestamp) return item.created_at < bound.timestamp;
  return item.id < bound.id;
}

// The shortest bound that is above `prev` and not above `next` (prev < next).
Bound minimal_bound(const NegentropyItem& prev, const NegentropyItem& next) noexcept;

// Base-128, most significant digit first, high bit set on every byte but the last.
void append_varint(std::string& out, std::uint64_t value);

// Reads a message front to back; every read fails with "invalid: ..." past the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool empty() const noexcept { return in_.empty(); }
  std::size_t remaining() const noexcept { return in_.size(); }
  Status varint(std::uint64_t& out);
  Status take(std::size_t n, std::string_view& out);

 private:
  std::string_view in_;
};

// Bounds in one message: each timestamp is sent as the difference from the previous one.
class BoundWriter {
 public:
  void write(std::string& out, const Bound& bound);

 private:
  std::uint64_t last_ = 0;
};

class BoundReader {
 public:
  Status read(Reader& in, Bound& out);

 private:
  std::uint64_t last_ = 0;
};

// The sum, modulo 2^256, of ids read as 32-byte little-endian numbers.
class Accumulator {
 public:
  void add(const EventId& id) noexcept;
  // SHA-256 of the sum followed by varint(count), cut to 16 bytes.
  Fingerprint fingerprint(std::uint64_t count) const;

 private:
  std::array<std::uint64_t, 4> limbs_{};
};

}  // namespace relaycore::negentropy

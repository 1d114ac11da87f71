#include "negentropy/negentropy_codec.hpp"

#include <bit>
#include <cstring>

#include "crypto/sha256.hpp"

namespace relaycore::negentropy {
namespace {

// A varint longer than this cannot hold a 64-bit value.
constexpr int kMaxVarintBytes = 10;

std::uint64_t load_le64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&v, p, sizeof v);
  } else {
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  }
  return v;
}

void store_le64(std::uint64_t v, std::uint8_t* p) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

}  // namespace

Bound minimal_bound(const NegentropyItem& prev, const NegentropyItem& next) noexcept {
  Bound b;
  b.timestamp = next.created_at;
  if (prev.created_at != next.created_at) return b;
  std::size_t shared = 0;
  while (shared < kIdBytes && prev.id[shared] == next.id[shared]) ++shared;
  b.prefix_len = static_cast<std::uint8_t>(shared < kIdBytes ? shared + 1 : kIdBytes);
  std::memcpy(b.id.data(), next.id.data(), b.prefix_len);
  return b;
}

void append_varint(std::string& out, std::uint64_t value) {
  char digits[kMaxVarintBytes];
  int n = 0;
  do {
    digits[n++] = static_cast<char>(value & 0x7f);
    value >>= 7;
  } while (value != 0);
  while (n > 1) out.push_back(static_cast<char>(digits[--n] | 0x80));
  out.push_back(digits[0]);
}

Status Reader::varint(std::uint64_t& out) {
  std::uint64_t v = 0;
  for (std::size_t i = 0;; ++i) {
    if (i >= in_.size()) return Status::invalid("negentropy message ends inside a number");
    const auto byte = static_cast<std::uint8_t>(in_[i]);
    if (v >> 57 != 0) return Status::invalid("negentropy message has a number over 64 bits");
    v = (v << 7) | (byte & 0x7f);
    if ((byte & 0x80) == 0) {
      in_.remove_prefix(i + 1);
      out = v;
      return Status::ok();
    }
  }
}

Status Reader::take(std::size_t n, std::string_view& out) {
  if (n > in_.size()) return Status::invalid("negentropy message ends early");
  out = in_.substr(0, n);
  in_.remove_prefix(n);
  return Status::ok();
}

void BoundWriter::write(std::string& out, const Bound& bound) {
  if (bound.timestamp == kInfinity) {
    append_varint(out, 0);
    last_ = kInfinity;
  } else {
    append_varint(out, bound.timestamp - last_ + 1);
    last_ = bound.timestamp;
  }
  append_varint(out, bound.prefix_len);
  out.append(reinterpret_cast<const char*>(bound.id.data()), bound.prefix_len);
}

Status BoundReader::read(Reader& in, Bound& out) {
  std::uint64_t encoded = 0;
  if (Status s = in.varint(encoded); !s) return s;
  if (encoded == 0) {
    out.timestamp = kInfinity;
  } else if (last_ == kInfinity || encoded - 1 >= kInfinity - last_) {
    return Status::invalid("negentropy bound timestamp is past the end");
  } else {
    out.timestamp = last_ + (encoded - 1);
  }
  last_ = out.timestamp;
  std::uint64_t len = 0;
  if (Status s = in.varint(len); !s) return s;
  if (len > kIdBytes) return Status::invalid("negentropy bound id prefix is over 32 bytes");
  std::string_view prefix;
  if (Status s = in.take(len, prefix); !s) return s;
  out.prefix_len = static_cast<std::uint8_t>(len);
  out.id.fill(0);
  std::memcpy(out.id.data(), prefix.data(), len);
  return Status::ok();
}

void Accumulator::add(const EventId& id) noexcept {
  unsigned carry = 0;
  for (std::size_t i = 0; i < limbs_.size(); ++i) {
    const std::uint64_t x = load_le64(id.data() + 8 * i);
    std::uint64_t sum = limbs_[i] + x;
    const unsigned c1 = sum < x;
    sum += carry;
    const unsigned c2 = sum < carry;
    limbs_[i] = sum;
    carry = c1 | c2;
  }
}

Fingerprint Accumulator::fingerprint(std::uint64_t count) const {
  std::string input(kIdBytes, '\0');
  for (std::size_t i = 0; i < limbs_.size(); ++i) {
    store_le64(limbs_[i], reinterpret_cast<std::uint8_t*>(input.data()) + 8 * i);
  }
  append_varint(input, count);
  const crypto::Digest digest = crypto::sha256(input);
  Fingerprint out;
  std::memcpy(out.data(), digest.data(), out.size());
  return out;
}

}  // namespace relaycore::negentropy

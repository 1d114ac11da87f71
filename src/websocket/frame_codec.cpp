#include "websocket/frame_codec.hpp"

#include "websocket/deflate.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace relaycore::websocket::detail {
namespace {

Inbound fail(std::uint16_t code, std::string_view error) {
  Inbound out;
  out.kind = Inbound::Kind::kFail;
  out.code = code;
  out.error = error;
  return out;
}

bool is_control(Opcode opcode) noexcept { return (static_cast<std::uint8_t>(opcode) & 0x8) != 0; }

bool is_known(std::uint8_t opcode) noexcept {
  return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA);
}

// XORs `size` bytes with the 4-byte key starting at key offset `offset` (masking and unmasking
// are the same operation). Rotating the key once keeps the loop a plain `i & 3` index, which
// the compiler vectorises.
void apply_mask(const std::uint8_t* in, char* out, std::size_t size,
                const std::array<std::uint8_t, 4>& mask, std::size_t offset) noexcept {
  std::array<std::uint8_t, 4> key{};
  for (std::size_t i = 0; i < 4; ++i) key[i] = mask[(i + offset) & 3];
  for (std::size_t i = 0; i < size; ++i) {
    out[i] = static_cast<char>(in[i] ^ key[i & 3]);
  }
}

}  // namespace

FrameHeader encode_header(Opcode opcode, std::uint64_t payload_size, bool compressed) noexcept {
  FrameHeader h;
  h.bytes[0] =
      static_cast<std::uint8_t>((compressed ? 0xC0 : 0x80) | static_cast<std::uint8_t>(opcode));
  if (payload_size < 126) {
    h.bytes[1] = static_cast<std::uint8_t>(payload_size);
    h.size = 2;
  } else if (payload_size <= 0xFFFF) {
    h.bytes[1] = 126;
    h.bytes[2] = static_cast<std::uint8_t>(payload_size >> 8);
    h.bytes[3] = static_cast<std::uint8_t>(payload_size);
    h.size = 4;
  } else {
    h.bytes[1] = 127;
    for (int i = 0; i < 8; ++i) {
      h.bytes[static_cast<std::size_t>(2 + i)] =
          static_cast<std::uint8_t>(payload_size >> (8 * (7 - i)));
    }
    h.size = 10;
  }
  return h;
}

void append_masked_frame(std::string& out, Opcode opcode, std::string_view payload,
                         std::array<std::uint8_t, 4> mask) {
  FrameHeader h = encode_header(opcode, payload.size());
  h.bytes[1] |= 0x80;
  const std::size_t old = out.size();
  out.resize(old + h.size + mask.size() + payload.size());
  char* p = out.data() + old;
  std::memcpy(p, h.bytes.data(), h.size);
  std::memcpy(p + h.size, mask.data(), mask.size());
  apply_mask(reinterpret_cast<const std::uint8_t*>(payload.data()), p + h.size + mask.size(),
             payload.size(), mask, 0);
}

std::array<std::uint8_t, 4> new_mask() {
  static thread_local std::mt19937 rng(std::random_device{}());
  const std::uint32_t r = rng();
  return {static_cast<std::uint8_t>(r), static_cast<std::uint8_t>(r >> 8),
          static_cast<std::uint8_t>(r >> 16), static_cast<std::uint8_t>(r >> 24)};
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
  std::size_t n = std::min(reason.size(), kMaxControlPayload - 2);
  // Back off to the start of a UTF-8 sequence if the cut landed inside one.
  if (n < reason.size()) {
    while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
  }
  std::string out;
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xFF));
  out.append(reason.substr(0, n));
  return out;
}

bool is_valid_close_code(std::uint16_t code) noexcept {
  if (code >= 3000 && code <= 4999) return true;
  switch (code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012:
    case 1013:
    case 1014:
      return true;
    default:
      return false;
  }
}

bool is_valid_utf8(std::string_view text) noexcept { return simdjson::validate_utf8(text); }

Inbound FrameReader::next(const std::uint8_t* data, std::size_t size, std::size_t& consumed) {
  consumed = 0;
  for (;;) {
    if (!in_frame_) {
      if (size - consumed < 2) return {};
      const std::uint8_t* p = data + consumed;
      const bool fin = (p[0] & 0x80) != 0;
      const std::uint8_t opcode = p[0] & 0x0F;
      // RSV1 is permessage-deflate's, and only on the first frame of a data message.
      const bool rsv1 = (p[0] & 0x40) != 0;
      if ((p[0] & 0x30) != 0 || (rsv1 && (deflate_ == nullptr || opcode == 0x0 || opcode >= 0x8))) {
        return fail(kCloseProtocolError, "reserved bits set");
      }
      if (!is_known(opcode)) return fail(kCloseProtocolError, "unknown opcode");
      const bool masked = (p[1] & 0x80) != 0;
      if (masked != masked_) {
        return fail(kCloseProtocolError,
                    masked_ ? "client frame not masked" : "server frame masked");
      }
      const std::uint8_t len7 = p[1] & 0x7F;
      const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
      const std::size_t mask_size = masked ? 4 : 0;
      if (size - consumed < 2 + ext + mask_size) return {};
      std::uint64_t length = len7;
      if (ext > 0) {
        length = 0;
        for (std::size_t i = 0; i < ext; ++i) length = (length << 8) | p[2 + i];
        if (ext == 8 && (length >> 63) != 0) {
          return fail(kCloseProtocolError, "64-bit length with the top bit set");
        }
      }
      mask_ = {};
      if (masked) std::copy_n(p + 2 + ext, 4, mask_.begin());
      consumed += 2 + ext + mask_size;
      Inbound checked = start_frame(fin, static_cast<Opcode>(opcode), length);
      if (rsv1 && checked.kind == Inbound::Kind::kNeedMore) message_compressed_ = true;
      if (checked.kind != Inbound::Kind::kNeedMore) return checked;
    }
    const std::size_t avail =
        static_cast<std::size_t>(std::min<std::uint64_t>(size - consumed, remaining_));
    if (avail > 0) {
      std::string& target = is_control(opcode_) ? control_ : message_;
      const std::size_t old = target.size();
      target.resize(old + avail);
      if (masked_) {
        apply_mask(data + consumed, target.data() + old, avail, mask_, mask_offset_);
      } else {
        std::memcpy(target.data() + old, data + consumed, avail);
      }
      consumed += avail;
      remaining_ -= avail;
      mask_offset_ = (mask_offset_ + avail) & 3;
    }
    if (remaining_ > 0) return {};
    in_frame_ = false;
    Inbound done = finish_frame();
    if (done.kind != Inbound::Kind::kNeedMore) return done;
  }
}

Inbound FrameReader::start_frame(bool fin, Opcode opcode, std::uint64_t length) {
  if (is_control(opcode)) {
    if (!fin) return fail(kCloseProtocolError, "fragmented control frame");
    if (length > kMaxControlPayload) return fail(kCloseProtocolError, "control frame too long");
    control_.clear();
  } else {
    if (opcode == Opcode::kContinuation) {
      if (!message_open_) return fail(kCloseProtocolError, "continuation without a message");
    } else {
      if (message_open_) return fail(kCloseProtocolError, "new message inside a fragmented one");
      if (opcode == Opcode::kBinary) {
        return fail(kCloseUnsupportedData, "binary messages are not supported");
      }
      message_open_ = true;
      message_compressed_ = false;
      message_.clear();
    }
    // message_ never exceeds max_message_, so the subtraction cannot wrap.
    if (length > max_message_ - message_.size()) {
      return fail(kCloseMessageTooBig, "message too big");
    }
    message_.reserve(message_.size() + static_cast<std::size_t>(length));
  }
  in_frame_ = true;
  fin_ = fin;
  opcode_ = opcode;
  remaining_ = length;
  mask_offset_ = 0;
  return {};
}

Inbound FrameReader::finish_frame() {
  Inbound out;
  if (is_control(opcode_)) {
    const Opcode control = opcode_;
    if (control == Opcode::kPing || control == Opcode::kPong) {
      out.kind = control == Opcode::kPing ? Inbound::Kind::kPing : Inbound::Kind::kPong;
      out.payload = std::move(control_);
      control_.clear();
      return out;
    }
    // Close: an empty payload, or a valid code and a UTF-8 reason.
    if (control_.size() == 1) return fail(kCloseProtocolError, "close payload of one byte");
    out.kind = Inbound::Kind::kClose;
    out.code = kCloseNoStatus;
    if (control_.size() >= 2) {
      out.code = static_cast<std::uint16_t>((static_cast<unsigned char>(control_[0]) << 8) |
                                            static_cast<unsigned char>(control_[1]));
      if (!is_valid_close_code(out.code)) return fail(kCloseProtocolError, "invalid close code");
      std::string_view reason = std::string_view(control_).substr(2);
      if (!is_valid_utf8(reason)) return fail(kCloseInvalidPayload, "close reason not UTF-8");
      out.payload = std::string(reason);
    }
    return out;
  }
  if (!fin_) return out;  // more fragments to come
  message_open_ = false;
  if (message_compressed_) {
    std::string text;
    const InflateResult inflated = deflate_->inflate_message(message_, max_message_, text);
    if (inflated == InflateResult::kTooBig) return fail(kCloseMessageTooBig, "message too big");
    if (inflated == InflateResult::kBadData) {
      return fail(kCloseInvalidPayload, "bad compressed data");
    }
    message_ = std::move(text);
  }
  if (!is_valid_utf8(message_)) return fail(kCloseInvalidPayload, "text message not UTF-8");
  out.kind = Inbound::Kind::kText;
  out.payload = std::move(message_);
  message_.clear();
  return out;
}

}  // namespace relaycore::websocket::detail

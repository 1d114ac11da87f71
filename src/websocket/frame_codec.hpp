// The RFC 6455 framing for both ends: frame headers out (unmasked from a server, masked from a
// client), and an incremental reader that enforces the protocol (masking, reserved bits,
// opcodes, control-frame rules, fragmentation, size and UTF-8). No sockets here, so every rule is
// testable on bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace relaycore::websocket::detail {

class Deflate;

enum class Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close codes (RFC 6455 7.4.1) the server sends or has to recognise.
constexpr std::uint16_t kCloseNormal = 1000;
constexpr std::uint16_t kCloseGoingAway = 1001;
constexpr std::uint16_t kCloseProtocolError = 1002;
constexpr std::uint16_t kCloseUnsupportedData = 1003;
constexpr std::uint16_t kCloseNoStatus = 1005;
constexpr std::uint16_t kCloseInvalidPayload = 1007;
constexpr std::uint16_t kClosePolicyViolation = 1008;
constexpr std::uint16_t kCloseMessageTooBig = 1009;
constexpr std::uint16_t kCloseInternalError = 1011;

// Control frames carry at most 125 bytes; a close payload spends two on the code.
constexpr std::size_t kMaxControlPayload = 125;

// A server frame header: FIN and opcode, then the shortest length encoding. Server frames are
// never masked, so this is at most 2 + 8 bytes.
struct FrameHeader {
  std::array<std::uint8_t, 10> bytes{};
  std::uint8_t size = 0;
};
// `compressed` sets RSV1, which marks the first frame of a permessage-deflate message.
FrameHeader encode_header(Opcode opcode, std::uint64_t payload_size,
                          bool compressed = false) noexcept;

// Appends one complete client frame (FIN set, masked with `mask`) to `out`. Clients must mask
// every frame (RFC 6455 5.3); the key should come from new_mask().
void append_masked_frame(std::string& out, Opcode opcode, std::string_view payload,
                         std::array<std::uint8_t, 4> mask);

// A masking key from a per-thread generator seeded by the operating system's random source.
std::array<std::uint8_t, 4> new_mask();

// The payload of a close frame: the code in network order, then `reason` cut to fit 125 bytes
// without splitting a UTF-8 sequence.
std::string close_payload(std::uint16_t code, std::string_view reason);

// Whether a peer may send `code` in a close frame (RFC 6455 7.4; 1005, 1006 and 1015 are only
// for reporting and never appear on the wire).
bool is_valid_close_code(std::uint16_t code) noexcept;

bool is_valid_utf8(std::string_view text) noexcept;

// What the reader found. kText, kPing, kPong and kClose carry `payload` (the message, the ping
// data, or the close reason); kClose carries the peer's `code` (kCloseNoStatus when it sent
// none). kFail carries the close `code` to answer with and a short `error` for the reason.
struct Inbound {
  enum class Kind : std::uint8_t { kNeedMore, kText, kPing, kPong, kClose, kFail };
  Kind kind = Kind::kNeedMore;
  std::string payload;
  std::uint16_t code = 0;
  std::string_view error;
};

// Which end's frames a FrameReader parses: a server reads masked client frames, a client reads
// unmasked server frames; the other kind fails with 1002.
enum class FramesFrom : std::uint8_t { kClient, kServer };

// Parses frames from whatever bytes have arrived. Message payload is unmasked straight
// into the message being assembled, so the read buffer holds at most a partial header. A
// message whose frames announce more than `max_message_bytes` in total fails with 1009 as soon
// as the header is seen, before any of its payload is buffered. After kFail the reader is done.
class FrameReader {
 public:
  explicit FrameReader(std::size_t max_message_bytes, FramesFrom from = FramesFrom::kClient)
      : max_message_(max_message_bytes), masked_(from == FramesFrom::kClient) {}

  // Reads from [data, data + size) and sets `consumed` to the bytes used, which the caller
  // drops from its buffer. Returns at most one complete item; kNeedMore when the bytes ran out.
  Inbound next(const std::uint8_t* data, std::size_t size, std::size_t& consumed);

  // Once permessage-deflate is agreed: a data message whose first frame has RSV1 set is
  // inflated with `deflate` when complete. Bad compressed data fails with 1007, and output past
  // max_message_bytes with 1009 before more than that is inflated.
  void accept_compressed(Deflate* deflate) noexcept { deflate_ = deflate; }

 private:
  // Checks a complete header and sets up the frame; returns kNeedMore to go on.
  Inbound start_frame(bool fin, Opcode opcode, std::uint64_t length);
  // Called when the current frame's payload is complete.
  Inbound finish_frame();

  std::size_t max_message_;
  bool masked_;  // frames must carry a mask (and must not, when false)
  // The frame being read. Binary is refused, so every data frame belongs to a text message.
  bool in_frame_ = false;
  bool fin_ = false;
  Opcode opcode_ = Opcode::kContinuation;
  std::uint64_t remaining_ = 0;
  std::array<std::uint8_t, 4> mask_{};
  std::size_t mask_offset_ = 0;
  std::string control_;
  // The data message being assembled across fragments.
  bool message_open_ = false;
  bool message_compressed_ = false;
  std::string message_;
  Deflate* deflate_ = nullptr;
};

}  // namespace relaycore::websocket::detail

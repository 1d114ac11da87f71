// permessage-deflate (RFC 7692) for the server: the handshake negotiation, and a shared engine
// that compresses outgoing messages and inflates incoming ones with pooled zlib streams.
//
// Memory is bounded by design. The server always answers with both server_no_context_takeover
// and client_no_context_takeover (RFC 7692 lets a server add either), so every message in both
// directions is compressed from a fresh state: no connection keeps a zlib stream, an idle
// connection costs only its negotiated parameters, and a stream (about 256 KiB to deflate,
// 40 KiB to inflate) is borrowed from a small pool only for the length of one message. The
// price is that a client's messages cannot refer to its earlier ones, which costs little for a
// relay whose clients mostly send short, unrelated REQs and EVENTs.
//
// Because the server's messages never refer to earlier ones, an EVENT's compressed bytes do not
// depend on the connection: they are compressed once and reused for every subscriber (see
// Deflate::compress_frame).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relaycore/connection.hpp"
#include "relaycore/websocket/server.hpp"

struct z_stream_s;

namespace relaycore::websocket::detail {

// What was agreed for one connection.
struct DeflateParams {
  // The window our compressor uses: 15, or less when the client limited it with
  // server_max_window_bits. 8 is never agreed (see negotiate_deflate).
  int server_window_bits = 15;
};

// Picks the first acceptable permessage-deflate offer among the request's
// Sec-WebSocket-Extensions headers; nullopt when there is none. An offer with an unknown or
// repeated parameter, or a bad window value, is declined, as is server_max_window_bits=8:
// zlib's raw deflate silently uses a 512-byte window when asked for 256 bytes, which would
// break the client's limit.
std::optional<DeflateParams> negotiate_deflate(const HttpRequest& request);

// The Sec-WebSocket-Extensions value that accepts `params`.
std::string deflate_response(const DeflateParams& params);

enum class InflateResult : std::uint8_t { kOk, kBadData, kTooBig };

// The zlib streams of a server, pooled across its connections, and a small cache of compressed
// EVENT bodies. Thread-safe.
class Deflate {
 public:
  Deflate();
  ~Deflate();
  Deflate(const Deflate&) = delete;
  Deflate& operator=(const Deflate&) = delete;

  // The payload of a compressed message carrying `frame` (raw deflate, ending in an empty
  // sync-flush block whose last four bytes are left off, RFC 7692 7.2.1). An EVENT frame's
  // event and closing bracket are compressed once per event and window size; the short head
  // that names the subscription goes in front as a stored block.
  std::string compress_frame(const Frame& frame, int window_bits);

  // The payload of one message's compressed bytes (without the final 00 00 ff ff) into `out`.
  // Output is produced in bounded chunks and counted: kTooBig as soon as it would pass
  // `limit`, so a small bomb never inflates past the limit. kBadData for anything zlib refuses.
  InflateResult inflate_message(std::string_view compressed, std::size_t limit, std::string& out);

 private:
  struct Stream;
  struct Cached {
    std::weak_ptr<const Event> event;
    int window_bits = 0;
    std::shared_ptr<const std::string> bytes;
  };
  // Direct-mapped on the event's address: a bounded memory of recent fan-outs.
  static constexpr std::size_t kCacheSlots = 256;
  // Idle streams kept per kind; a busier moment allocates more and frees them afterwards.
  static constexpr std::size_t kKeepIdle = 4;

  std::unique_ptr<Stream> take_deflater(int window_bits);
  std::unique_ptr<Stream> take_inflater();
  void give_back(std::unique_ptr<Stream> stream);
  // Appends the compressed `parts` to `out`, without the final 00 00 ff ff.
  void compress(std::initializer_list<std::string_view> parts, int window_bits, std::string& out);
  std::shared_ptr<const std::string> compressed_event(const EventPtr& event, int window_bits);

  std::mutex mu_;
  std::vector<std::unique_ptr<Stream>> deflaters_;
  std::vector<std::unique_ptr<Stream>> inflaters_;
  std::mutex cache_mu_;
  std::array<Cached, kCacheSlots> cache_;
};

}  // namespace relaycore::websocket::detail

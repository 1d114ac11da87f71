// permessage-deflate (RFC 7692) for the server: the handshake negotiation, and a shared engine
// that compresses outgoing messages and inflates incoming ones with pooled zlib streams.
//
// Memory is bounded by design. The server always answers with client_no_context_takeover (RFC
// 7692 lets a server add it), so each client message is inflated from a fresh state by a
// stream borrowed from a small pool: no connection keeps an inflater (about 40 KiB), at the
// price that a client's messages cannot refer to its earlier ones, which costs little for a
// relay whose clients mostly send short, unrelated REQs and EVENTs.
//
// Outgoing, a message may always be compressed from a fresh state: the client's window holding
// earlier messages does not oblige us to refer to them. A connection compresses so while it is
// idle, and such a payload does not depend on the connection, so an EVENT fanned out to many
// subscribers is compressed once (Deflate::compress_frame). Only in a burst (frames queued ahead,
// as when a REQ streams history, or replies one after another) does it hold a compressor of its
// own, so consecutive messages refer to each other (context takeover, unless the client asked
// for server_no_context_takeover); it goes back to the pool once the queue is written and a
// short quiet spell passed, or when the client's next message begins a new burst. An idle
// connection therefore holds no zlib state at all.
#pragma once

#include <array>
#include <atomic>
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
  // Whether our messages may refer to earlier ones: false when the client asked for
  // server_no_context_takeover.
  bool server_context_takeover = true;
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
  struct Stream;
  struct StreamDeleter {
    void operator()(Stream* stream) const noexcept;
  };
  // A compressor one connection holds for a burst of messages (see hold()).
  using Held = std::unique_ptr<Stream, StreamDeleter>;

  // Compressors held at once, server-wide; past it a burst is compressed message by message.
  static constexpr std::size_t kMaxHeld = 64;

  Deflate();
  ~Deflate();
  Deflate(const Deflate&) = delete;
  Deflate& operator=(const Deflate&) = delete;

  // The payload of a compressed message carrying `frame`, from a fresh state (raw deflate,
  // ending in an empty sync-flush block whose last four bytes are left off, RFC 7692 7.2.1). An
  // EVENT frame's event and closing bracket are compressed once per event and window size; the
  // short head that names the subscription goes in front as a stored block.
  std::string compress_frame(const Frame& frame, int window_bits);

  // A compressor for a burst on one connection, whose messages refer to the ones before them;
  // null when kMaxHeld are out. Give it back with release() when the burst is written.
  Held hold(int window_bits);
  // The payload of `frame` compressed with `held`, which remembers it for the next message.
  std::string compress_frame(Held& held, const Frame& frame);
  void release(Held held) noexcept;

  // The payload of one message's compressed bytes (without the final 00 00 ff ff) into `out`.
  // Output is produced in bounded chunks and counted: kTooBig as soon as it would pass
  // `limit`, so a small bomb never inflates past the limit. kBadData for anything zlib refuses.
  InflateResult inflate_message(std::string_view compressed, std::size_t limit, std::string& out);

  // EVENT bodies compressed so far (cache misses), which fan-out should keep at one per event.
  std::uint64_t events_compressed() const noexcept {
    return events_compressed_.load(std::memory_order_relaxed);
  }

 private:
  struct Cached {
    std::weak_ptr<const Event> event;
    int window_bits = 0;
    std::shared_ptr<const std::string> bytes;
  };
  // Direct-mapped on the event's address: a bounded memory of recent fan-outs.
  static constexpr std::size_t kCacheSlots = 256;
  // Idle streams kept per kind; a busier moment allocates more and frees them afterwards.
  static constexpr std::size_t kKeepIdle = 4;

  Held take_deflater(int window_bits);
  Held take_inflater();
  void give_back(Held stream) noexcept;
  std::shared_ptr<const std::string> compressed_event(const EventPtr& event, int window_bits);

  std::mutex mu_;
  std::vector<Held> deflaters_;
  std::vector<Held> inflaters_;
  std::size_t held_ = 0;
  std::mutex cache_mu_;
  std::array<Cached, kCacheSlots> cache_;
  std::atomic<std::uint64_t> events_compressed_{0};
};

}  // namespace relaycore::websocket::detail

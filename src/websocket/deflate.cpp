#include "websocket/deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <functional>

#include "websocket/http.hpp"

namespace relaycore::websocket::detail {
namespace {

constexpr std::string_view kExtension = "permessage-deflate";
// What a sync flush ends with; RFC 7692 leaves it off the wire and the receiver puts it back.
constexpr std::array<unsigned char, 4> kSyncTail = {0x00, 0x00, 0xff, 0xff};
// Inflate output grows by at most this much per step.
constexpr std::size_t kInflateChunk = 16 * 1024;
// Deflate's memory level: 8 is zlib's default, a 64 KiB hash table.
constexpr int kMemLevel = 8;

// A window size parameter's value: "8" to "15", optionally quoted, no leading zero.
std::optional<int> window_bits(std::string_view value) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  if (value.empty() || value.size() > 2 || value.front() == '0') return std::nullopt;
  int bits = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    bits = bits * 10 + (c - '0');
  }
  if (bits < 8 || bits > 15) return std::nullopt;
  return bits;
}

// One offer's parameters ("a; b=1; c"), or nullopt when we decline it.
std::optional<DeflateParams> accept_offer(std::string_view params) {
  DeflateParams out;
  bool seen_server_nct = false, seen_client_nct = false, seen_server_bits = false,
       seen_client_bits = false;
  while (!params.empty()) {
    const std::size_t semi = params.find(';');
    const std::string_view param = trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
    const std::size_t eq = param.find('=');
    const std::string_view name = trim(param.substr(0, eq));
    const std::optional<std::string_view> value =
        eq == std::string_view::npos ? std::nullopt
                                     : std::optional<std::string_view>(trim(param.substr(eq + 1)));
    auto once = [](bool& seen) { return !std::exchange(seen, true); };
    if (iequals(name, "server_no_context_takeover")) {
      if (value || !once(seen_server_nct)) return std::nullopt;
      out.server_context_takeover = false;
    } else if (iequals(name, "client_no_context_takeover")) {
      if (value || !once(seen_client_nct)) return std::nullopt;
    } else if (iequals(name, "server_max_window_bits")) {
      if (!value || !once(seen_server_bits)) return std::nullopt;
      const std::optional<int> bits = window_bits(*value);
      if (!bits || *bits == 8) return std::nullopt;
      out.server_window_bits = *bits;
    } else if (iequals(name, "client_max_window_bits")) {
      // A hint that the client can honour a limit; our inflater takes any window, so we set none.
      if (!once(seen_client_bits) || (value && !window_bits(*value))) return std::nullopt;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

// Appends `data` as stored (uncompressed) blocks: BFINAL 0, type 00 (at a byte boundary, so one
// zero byte), then LEN and its complement, little-endian, then the bytes.
void append_stored(std::string& out, std::string_view data) {
  while (!data.empty()) {
    const std::size_t n = std::min<std::size_t>(data.size(), 0xFFFF);
    const char block[5] = {0, static_cast<char>(n & 0xFF), static_cast<char>(n >> 8),
                           static_cast<char>(~n & 0xFF), static_cast<char>((~n >> 8) & 0xFF)};
    out.append(block, sizeof block).append(data.substr(0, n));
    data.remove_prefix(n);
  }
}

}  // namespace

std::optional<DeflateParams> negotiate_deflate(const HttpRequest& request) {
  for (const auto& [name, value] : request.headers) {
    if (name != "sec-websocket-extensions") continue;
    std::string_view offers = value;
    while (!offers.empty()) {
      const std::size_t comma = offers.find(',');
      const std::string_view offer = offers.substr(0, comma);
      offers = comma == std::string_view::npos ? std::string_view() : offers.substr(comma + 1);
      const std::size_t semi = offer.find(';');
      if (!iequals(trim(offer.substr(0, semi)), kExtension)) continue;
      std::optional<DeflateParams> accepted = accept_offer(
          semi == std::string_view::npos ? std::string_view() : offer.substr(semi + 1));
      if (accepted) return accepted;
    }
  }
  return std::nullopt;
}

std::string deflate_response(const DeflateParams& params) {
  std::string out(kExtension);
  if (!params.server_context_takeover) out.append("; server_no_context_takeover");
  out.append("; client_no_context_takeover");
  if (params.server_window_bits < 15) {
    out.append("; server_max_window_bits=").append(std::to_string(params.server_window_bits));
  }
  return out;
}

// A zlib stream; `window_bits` is 0 for an inflater.
struct Deflate::Stream {
  z_stream z{};
  int window_bits = 0;
  bool ok = false;

  explicit Stream(int bits) : window_bits(bits) {
    ok = bits == 0 ? inflateInit2(&z, -15) == Z_OK
                   : deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, kMemLevel,
                                  Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~Stream() {
    if (!ok) return;
    if (window_bits == 0) {
      inflateEnd(&z);
    } else {
      deflateEnd(&z);
    }
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Appends the compressed `parts` to `out` as one message: a sync flush after the last part,
  // whose final 00 00 ff ff is left off. The stream remembers the input for later messages.
  void compress(std::initializer_list<std::string_view> parts, std::string& out) {
    std::size_t total = 0;
    for (std::string_view p : parts) total += p.size();
    const std::size_t start = out.size();
    // deflateBound plus room for the sync flush; one pass almost always suffices.
    out.resize(start + (ok ? deflateBound(&z, static_cast<uLong>(total)) : total) + 16);
    std::size_t used = start;
    std::size_t left = parts.size();
    for (std::string_view p : parts) {
      if (!ok) break;
      const int flush = --left == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p.data()));
      z.avail_in = static_cast<uInt>(p.size());
      for (;;) {
        if (out.size() - used < 64) out.resize(out.size() * 2 + 64);
        z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
        z.avail_out = static_cast<uInt>(out.size() - used);
        const std::size_t before = z.avail_out;
        const int rc = deflate(&z, flush);
        used += before - z.avail_out;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
          ok = false;
          break;
        }
        // This part is in once its input is used and, on the flush, output room was left.
        if (z.avail_in == 0 && (flush == Z_NO_FLUSH || z.avail_out > 0)) break;
      }
    }
    out.resize(used);
    if (!ok) {
      // zlib failed (out of memory): the message goes as stored blocks, which are valid
      // deflate too. The stream stays failed, so it never refers to what it did not see.
      out.resize(start);
      for (std::string_view p : parts) append_stored(out, p);
      return;
    }
    if (used - start >= kSyncTail.size() &&
        std::equal(kSyncTail.begin(), kSyncTail.end(),
                   reinterpret_cast<const unsigned char*>(out.data() + used - kSyncTail.size()))) {
      out.resize(used - kSyncTail.size());
    }
  }
};

void Deflate::StreamDeleter::operator()(Stream* stream) const noexcept { delete stream; }

Deflate::Deflate() = default;
Deflate::~Deflate() = default;

Deflate::Held Deflate::take_deflater(int window_bits) {
  {
    std::lock_guard lock(mu_);
    for (auto it = deflaters_.begin(); it != deflaters_.end(); ++it) {
      if ((*it)->window_bits != window_bits) continue;
      Held s = std::move(*it);
      deflaters_.erase(it);
      return s;
    }
  }
  return Held(new Stream(window_bits));
}

Deflate::Held Deflate::take_inflater() {
  {
    std::lock_guard lock(mu_);
    if (!inflaters_.empty()) {
      Held s = std::move(inflaters_.back());
      inflaters_.pop_back();
      return s;
    }
  }
  return Held(new Stream(0));
}

// A stream goes back reset, so the next message starts from nothing.
void Deflate::give_back(Held stream) noexcept {
  if (!stream || !stream->ok) return;
  const bool inflater = stream->window_bits == 0;
  if ((inflater ? inflateReset(&stream->z) : deflateReset(&stream->z)) != Z_OK) return;
  std::lock_guard lock(mu_);
  std::vector<Held>& pool = inflater ? inflaters_ : deflaters_;
  if (pool.size() < kKeepIdle) {
    try {
      pool.push_back(std::move(stream));
    } catch (...) {
      // Out of memory: the stream is freed instead of pooled.
    }
  }
}

Deflate::Held Deflate::hold(int window_bits) {
  {
    std::lock_guard lock(mu_);
    if (held_ >= kMaxHeld) return nullptr;
    ++held_;
  }
  return take_deflater(window_bits);
}

void Deflate::release(Held held) noexcept {
  if (!held) return;
  {
    std::lock_guard lock(mu_);
    --held_;
  }
  give_back(std::move(held));
}

std::shared_ptr<const std::string> Deflate::compressed_event(const EventPtr& event,
                                                             int window_bits) {
  Cached& slot = cache_[std::hash<const Event*>{}(event.get()) % kCacheSlots];
  {
    std::lock_guard lock(cache_mu_);
    if (slot.window_bits == window_bits && slot.event.lock() == event) return slot.bytes;
  }
  events_compressed_.fetch_add(1, std::memory_order_relaxed);
  auto bytes = std::make_shared<std::string>();
  Held s = take_deflater(window_bits);
  s->compress({event->json(), "]"}, *bytes);
  give_back(std::move(s));
  std::lock_guard lock(cache_mu_);
  slot.event = event;
  slot.window_bits = window_bits;
  slot.bytes = bytes;
  return bytes;
}

std::string Deflate::compress_frame(const Frame& frame, int window_bits) {
  std::string out;
  if (!frame.event()) {
    Held s = take_deflater(window_bits);
    s->compress({frame.parts()[0]}, out);
    give_back(std::move(s));
    return out;
  }
  // The head as stored blocks, which leave a byte boundary for the cached body to continue from.
  const std::string_view head = frame.parts()[0];
  const std::shared_ptr<const std::string> body = compressed_event(frame.event(), window_bits);
  out.reserve(head.size() + 5 + body->size());
  append_stored(out, head);
  out.append(*body);
  return out;
}

std::string Deflate::compress_frame(Held& held, const Frame& frame) {
  std::string out;
  const auto parts = frame.parts();
  held->compress({parts[0], parts[1], parts[2]}, out);
  return out;
}

InflateResult Deflate::inflate_message(std::string_view compressed, std::size_t limit,
                                       std::string& out) {
  out.clear();
  Held s = take_inflater();
  if (!s->ok) return InflateResult::kBadData;
  InflateResult result = InflateResult::kOk;
  out.reserve(std::min(limit, compressed.size() * 4 + 64));
  s->z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  s->z.avail_in = static_cast<uInt>(compressed.size());
  bool tail_fed = false;
  for (;;) {
    if (s->z.avail_in == 0 && !tail_fed) {
      s->z.next_in = const_cast<Bytef*>(kSyncTail.data());
      s->z.avail_in = static_cast<uInt>(kSyncTail.size());
      tail_fed = true;
    }
    // One byte past the limit is enough to know the message is too big.
    const std::size_t step = std::min(kInflateChunk, limit - out.size() + 1);
    const std::size_t old = out.size();
    // Grow geometrically, but never to more than the limit allows. (reserve() on a string may
    // double its capacity whatever was asked, so the larger buffer is a fresh string.)
    if (out.capacity() < old + step) {
      std::string larger;
      larger.reserve(std::min(limit + 1, std::max(old + step, 2 * old)));
      larger.assign(out);
      out.swap(larger);
    }
    out.resize(old + step);
    s->z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    s->z.avail_out = static_cast<uInt>(step);
    const int rc = inflate(&s->z, Z_SYNC_FLUSH);
    out.resize(old + step - s->z.avail_out);
    if (out.size() > limit) {
      result = InflateResult::kTooBig;
      break;
    }
    if (rc == Z_STREAM_END) {
      // A final block ends the message; only the tail we added may follow it.
      if (!tail_fed && s->z.avail_in > 0) result = InflateResult::kBadData;
      break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      result = InflateResult::kBadData;
      break;
    }
    // All input used and output to spare: the message is complete. (Z_BUF_ERROR with input
    // left cannot happen, as each step offers fresh output space.)
    // It must end at a block boundary, as the sync tail leaves it; anything else was cut short.
    if (tail_fed && s->z.avail_in == 0 && s->z.avail_out > 0) {
      if ((s->z.data_type & 128) == 0) result = InflateResult::kBadData;
      break;
    }
    if (rc == Z_BUF_ERROR && s->z.avail_out > 0) {
      result = InflateResult::kBadData;
      break;
    }
  }
  give_back(std::move(s));
  if (result != InflateResult::kOk) out.clear();
  return result;
}

}  // namespace relaycore::websocket::detail

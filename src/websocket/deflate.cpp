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
  out.append("; server_no_context_takeover; client_no_context_takeover");
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
};

Deflate::Deflate() = default;
Deflate::~Deflate() = default;

std::unique_ptr<Deflate::Stream> Deflate::take_deflater(int window_bits) {
  {
    std::lock_guard lock(mu_);
    for (auto it = deflaters_.begin(); it != deflaters_.end(); ++it) {
      if ((*it)->window_bits != window_bits) continue;
      std::unique_ptr<Stream> s = std::move(*it);
      deflaters_.erase(it);
      return s;
    }
  }
  return std::make_unique<Stream>(window_bits);
}

std::unique_ptr<Deflate::Stream> Deflate::take_inflater() {
  {
    std::lock_guard lock(mu_);
    if (!inflaters_.empty()) {
      std::unique_ptr<Stream> s = std::move(inflaters_.back());
      inflaters_.pop_back();
      return s;
    }
  }
  return std::make_unique<Stream>(0);
}

// A stream goes back reset, so the next message starts from nothing (no context takeover).
void Deflate::give_back(std::unique_ptr<Stream> stream) {
  if (!stream->ok) return;
  const bool inflater = stream->window_bits == 0;
  if ((inflater ? inflateReset(&stream->z) : deflateReset(&stream->z)) != Z_OK) return;
  std::lock_guard lock(mu_);
  std::vector<std::unique_ptr<Stream>>& pool = inflater ? inflaters_ : deflaters_;
  if (pool.size() < kKeepIdle) pool.push_back(std::move(stream));
}

void Deflate::compress(std::initializer_list<std::string_view> parts, int window_bits,
                       std::string& out) {
  std::unique_ptr<Stream> s = take_deflater(window_bits);
  std::size_t total = 0;
  for (std::string_view p : parts) total += p.size();
  const std::size_t start = out.size();
  // deflateBound plus room for each part's sync flush; one pass almost always suffices.
  std::size_t room = (s->ok ? deflateBound(&s->z, static_cast<uLong>(total)) : total) + 16;
  out.resize(start + room);
  std::size_t used = start;
  std::size_t index = 0;
  const std::size_t count = parts.size();
  for (std::string_view p : parts) {
    ++index;
    if (!s->ok) break;
    s->z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p.data()));
    s->z.avail_in = static_cast<uInt>(p.size());
    const int flush = index == count ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    for (;;) {
      if (out.size() - used < 64) out.resize(out.size() * 2 + 64);
      s->z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
      s->z.avail_out = static_cast<uInt>(out.size() - used);
      const std::size_t before = s->z.avail_out;
      const int rc = deflate(&s->z, flush);
      used += before - s->z.avail_out;
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        s->ok = false;
        break;
      }
      // Done with this part once its input is in and, on the flush, the output had room left.
      if (s->z.avail_in == 0 && (flush == Z_NO_FLUSH || s->z.avail_out > 0)) break;
    }
  }
  out.resize(used);
  if (s->ok && used - start >= kSyncTail.size() &&
      std::equal(kSyncTail.begin(), kSyncTail.end(),
                 reinterpret_cast<const unsigned char*>(out.data() + used - kSyncTail.size()))) {
    out.resize(used - kSyncTail.size());
  }
  give_back(std::move(s));
}

std::shared_ptr<const std::string> Deflate::compressed_event(const EventPtr& event,
                                                             int window_bits) {
  Cached& slot = cache_[std::hash<const Event*>{}(event.get()) % kCacheSlots];
  {
    std::lock_guard lock(cache_mu_);
    if (slot.window_bits == window_bits && slot.event.lock() == event) return slot.bytes;
  }
  auto bytes = std::make_shared<std::string>();
  compress({event->json(), "]"}, window_bits, *bytes);
  std::lock_guard lock(cache_mu_);
  slot.event = event;
  slot.window_bits = window_bits;
  slot.bytes = bytes;
  return bytes;
}

std::string Deflate::compress_frame(const Frame& frame, int window_bits) {
  std::string out;
  if (!frame.event()) {
    const auto parts = frame.parts();
    compress({parts[0]}, window_bits, out);
    return out;
  }
  // The head as stored blocks (BFINAL 0, type 00, then LEN and its complement, little-endian):
  // at a byte boundary, which the cached body then continues from.
  std::string_view head = frame.parts()[0];
  const std::shared_ptr<const std::string> body = compressed_event(frame.event(), window_bits);
  out.reserve(head.size() + 5 + body->size());
  while (!head.empty()) {
    const std::size_t n = std::min<std::size_t>(head.size(), 0xFFFF);
    const char block[5] = {0, static_cast<char>(n & 0xFF), static_cast<char>(n >> 8),
                           static_cast<char>(~n & 0xFF), static_cast<char>((~n >> 8) & 0xFF)};
    out.append(block, sizeof block).append(head.substr(0, n));
    head.remove_prefix(n);
  }
  out.append(*body);
  return out;
}

InflateResult Deflate::inflate_message(std::string_view compressed, std::size_t limit,
                                       std::string& out) {
  out.clear();
  std::unique_ptr<Stream> s = take_inflater();
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

// A client's side of permessage-deflate for the tests, written on zlib directly so the server's
// codec is checked against an independent one: raw deflate with a sync flush and the final
// 00 00 ff ff left off, and the inverse.
#pragma once

#include <zlib.h>

#include <string>
#include <string_view>

namespace relaycore::websocket::test {

// Compresses `text` as one message (no context takeover). `final_block` ends it with a BFINAL
// block instead of a sync flush, which RFC 7692 also allows.
inline std::string peer_compress(std::string_view text, bool final_block = false) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, static_cast<uLong>(text.size())) + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, final_block ? Z_FINISH : Z_SYNC_FLUSH);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  if (!final_block && out.size() >= 4 &&
      out.substr(out.size() - 4) == std::string("\0\0\xff\xff", 4)) {
    out.resize(out.size() - 4);
  }
  return out;
}

// Inflates one message's payload into `out`; false when zlib refuses it.
inline bool peer_inflate(std::string_view payload, std::string& out) {
  z_stream z{};
  inflateInit2(&z, -15);
  std::string in(payload);
  in.append("\0\0\xff\xff", 4);
  z.next_in = reinterpret_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  out.clear();
  int rc = Z_OK;
  char buf[4096];
  while (rc == Z_OK && z.avail_in > 0) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_SYNC_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  }
  inflateEnd(&z);
  return rc == Z_OK || rc == Z_STREAM_END || (rc == Z_BUF_ERROR && z.avail_in == 0);
}

// A client's inflater with context takeover: each message may refer to the ones before it.
class PeerInflater {
 public:
  PeerInflater() { inflateInit2(&z_, -15); }
  ~PeerInflater() { inflateEnd(&z_); }
  PeerInflater(const PeerInflater&) = delete;
  PeerInflater& operator=(const PeerInflater&) = delete;

  bool inflate_message(std::string_view payload, std::string& out) {
    std::string in(payload);
    in.append("\0\0\xff\xff", 4);
    z_.next_in = reinterpret_cast<Bytef*>(in.data());
    z_.avail_in = static_cast<uInt>(in.size());
    out.clear();
    char buf[4096];
    while (z_.avail_in > 0) {
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = sizeof buf;
      const int rc = inflate(&z_, Z_SYNC_FLUSH);
      out.append(buf, sizeof buf - z_.avail_out);
      if (rc != Z_OK) return false;
    }
    return true;
  }

 private:
  z_stream z_{};
};

}  // namespace relaycore::websocket::test

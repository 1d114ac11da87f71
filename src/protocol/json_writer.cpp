#include "protocol/json_writer.hpp"

#include <charconv>

#include "relaycore/hex.hpp"
#include "relaycore/message.hpp"

namespace relaycore::json {
namespace {

// The escape for byte c, or 0 when c needs none (or needs the \u00xx form).
char short_escape(unsigned char c) noexcept {
  switch (c) {
    case '"':
      return '"';
    case '\\':
      return '\\';
    case '\n':
      return 'n';
    case '\r':
      return 'r';
    case '\t':
      return 't';
    case '\b':
      return 'b';
    case '\f':
      return 'f';
    default:
      return 0;
  }
}

bool needs_escape(unsigned char c) noexcept { return c < 0x20 || c == '"' || c == '\\'; }

}  // namespace

std::size_t quoted_size(std::string_view s) noexcept {
  std::size_t n = 2 + s.size();
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (!needs_escape(c)) continue;
    n += short_escape(c) != 0 ? 1 : 5;
  }
  return n;
}

void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run_start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (!needs_escape(c)) continue;
    out.append(s.data() + run_start, i - run_start);
    run_start = i + 1;
    char e = short_escape(c);
    if (e != 0) {
      out.push_back('\\');
      out.push_back(e);
    } else {
      const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      out.append(u, sizeof(u));
    }
  }
  out.append(s.data() + run_start, s.size() - run_start);
  out.push_back('"');
}

void append_int(std::string& out, std::int64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, static_cast<std::size_t>(end - buf));
}

void append_uint(std::string& out, std::uint64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, static_cast<std::size_t>(end - buf));
}

void append_hex_string(std::string& out, const std::uint8_t* data, std::size_t size) {
  out.push_back('"');
  std::size_t at = out.size();
  out.resize(at + 2 * size);
  hex_encode(data, size, out.data() + at);
  out.push_back('"');
}

}  // namespace relaycore::json

namespace relaycore {

void append_json_string(std::string& out, std::string_view s) { json::append_string(out, s); }

}  // namespace relaycore

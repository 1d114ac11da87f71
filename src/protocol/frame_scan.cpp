#include "protocol/frame_scan.hpp"

namespace relaycore::json {
namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The raw contents of a JSON string (between its quotes) decoded into `out`, as far as ASCII
// goes. Only ASCII can spell a verb, "id" or hex digits, so anything else (a non-ASCII
// character or escape, a bad escape) makes it false.
bool decode_ascii(std::string_view raw, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (static_cast<unsigned char>(c) >= 0x80) return false;
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= raw.size()) return false;
    switch (raw[i]) {
      case '"':
      case '\\':
      case '/':
        out.push_back(raw[i]);
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        if (raw.size() - i < 5) return false;
        int code = 0;
        for (std::size_t k = 1; k <= 4; ++k) {
          const int v = hex_value(raw[i + k]);
          if (v < 0) return false;
          code = code * 16 + v;
        }
        if (code >= 0x80) return false;
        out.push_back(static_cast<char>(code));
        i += 4;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

// A cursor over the frame. Every read skips the whitespace before it and returns false, having
// consumed an unknown amount, when the bytes are not what it reads.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  bool eat(char c) {
    skip_space();
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  // A string as written, without its quotes. It ends at the first quote not escaped by a
  // backslash, as in JSON, whether or not its escapes are valid.
  bool raw_string(std::string_view& raw) {
    skip_space();
    if (pos_ >= text_.size() || text_[pos_] != '"') return false;
    const std::size_t begin = ++pos_;
    for (;;) {
      pos_ = text_.find_first_of("\"\\", pos_);
      if (pos_ == std::string_view::npos) {
        pos_ = text_.size();
        return false;
      }
      if (text_[pos_] == '"') break;
      pos_ += 2;  // a backslash and the character it escapes
    }
    raw = text_.substr(begin, pos_ - begin);
    ++pos_;
    return true;
  }

  // Any one value. Only strings and brackets are checked, the brackets against a stack of what
  // is open, so that a value ends exactly where JSON says it does; scalars are taken as is.
  bool skip_value() {
    skip_space();
    std::string open;  // the closing bracket each open container expects
    do {
      if (pos_ >= text_.size()) return false;
      const char c = text_[pos_];
      std::string_view ignored;
      if (c == '"') {
        if (!raw_string(ignored)) return false;
      } else if (c == '[' || c == '{') {
        open.push_back(c == '[' ? ']' : '}');
        ++pos_;
      } else if (c == ']' || c == '}') {
        if (open.empty() || open.back() != c) return false;
        open.pop_back();
        ++pos_;
      } else if (open.empty()) {
        const std::size_t begin = pos_;
        while (pos_ < text_.size() && !is_space(text_[pos_]) && text_[pos_] != ',' &&
               text_[pos_] != ']' && text_[pos_] != '}') {
          ++pos_;
        }
        if (pos_ == begin) return false;
      } else {
        ++pos_;  // inside a container: separators and scalars
      }
    } while (!open.empty());
    return true;
  }

 private:
  void skip_space() {
    while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

bool is_readable_event_id(std::string_view id) noexcept {
  if (id.size() != 64) return false;
  for (char c : id) {
    if (hex_value(c) < 0) return false;
  }
  return true;
}

ScannedFrame scan_event_frame(std::string_view frame) {
  ScannedFrame out;
  Scanner in(frame);
  std::string_view raw;
  std::string text;
  if (!in.eat('[') || !in.raw_string(raw) || !decode_ascii(raw, text)) return out;
  if (text == "EVENT") {
    out.verb = Verb::kEvent;
  } else if (text == "AUTH") {
    out.verb = Verb::kAuth;
  } else {
    return out;
  }
  if (!in.eat(',') || !in.eat('{')) return out;
  // The event object's members, up to its first "id".
  for (;;) {
    if (!in.raw_string(raw) || !in.eat(':')) return out;
    if (decode_ascii(raw, text) && text == "id") {
      if (in.raw_string(raw) && decode_ascii(raw, text) && is_readable_event_id(text)) {
        out.event_id = std::move(text);
      }
      return out;
    }
    if (!in.skip_value() || !in.eat(',')) return out;
  }
}

}  // namespace relaycore::json

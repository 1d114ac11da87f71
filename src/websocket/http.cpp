#include "websocket/http.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <random>

namespace relaycore::websocket {

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

std::string HttpRequest::header_list(std::string_view name) const {
  std::string list;
  for (const auto& [key, value] : headers) {
    if (key != name || value.empty()) continue;
    if (!list.empty()) list += ", ";
    list += value;
  }
  return list;
}

namespace detail {
namespace {

constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::string_view kCrlf = "\r\n";

// RFC 9110 tchar: what a method or a header name may contain.
bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kExtra.find(c) != std::string_view::npos;
  });
}

// Header values may hold visible characters, spaces, tabs and obs-text; never CR, LF or NUL.
bool is_field_value(std::string_view s) noexcept {
  return std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

std::string_view status_text(int status) noexcept {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

// A key must be the canonical base64 of exactly 16 bytes (RFC 6455 4.1, item 7).
bool is_valid_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  std::array<unsigned char, 18> raw{};
  if (EVP_DecodeBlock(raw.data(), reinterpret_cast<const unsigned char*>(key.data()), 24) != 18) {
    return false;
  }
  return base64(raw.data(), 16) == key;
}

std::string render_head(int status, std::string_view content_type, std::size_t content_length) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out.append(status_text(status));
  out.append(kCrlf);
  out.append("Content-Type: ").append(content_type).append(kCrlf);
  out.append("Content-Length: ").append(std::to_string(content_length)).append(kCrlf);
  out.append("Connection: close\r\n");
  return out;
}

// Appends "name: value" from `line` with the name lowercased; false when the line is not a valid
// header (which also refuses obs-fold continuation lines).
bool parse_header_line(std::string_view line,
                       std::vector<std::pair<std::string, std::string>>& headers) {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view name = line.substr(0, colon);
  std::string_view value = trim(line.substr(colon + 1));
  if (!is_token(name) || !is_field_value(value)) return false;
  std::string key(name);
  std::transform(key.begin(), key.end(), key.begin(), ascii_lower);
  headers.emplace_back(std::move(key), std::string(value));
  return true;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

std::size_t find_head_end(std::string_view buffer) noexcept {
  const std::size_t at = buffer.find("\r\n\r\n");
  return at == std::string_view::npos ? at : at + 4;
}

std::optional<ParsedRequest> parse_request_head(std::string_view head) {
  if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") return std::nullopt;
  head.remove_suffix(2);  // every line, the last included, now ends with CRLF
  ParsedRequest out;
  bool first = true;
  while (!head.empty()) {
    const std::size_t eol = head.find(kCrlf);
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    // A lone CR or LF inside a line is how request smuggling starts; refuse it.
    if (line.find_first_of("\r\n") != std::string_view::npos) return std::nullopt;
    if (first) {
      first = false;
      const std::size_t sp1 = line.find(' ');
      const std::size_t sp2 = line.find(' ', sp1 == std::string_view::npos ? sp1 : sp1 + 1);
      if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return std::nullopt;
      std::string_view method = line.substr(0, sp1);
      std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      std::string_view version = line.substr(sp2 + 1);
      if (!is_token(method) || target.empty() || !is_field_value(target) ||
          target.find_first_of(" \t") != std::string_view::npos) {
        return std::nullopt;
      }
      if (version != "HTTP/1.1" && version != "HTTP/1.0") return std::nullopt;
      out.request.method = std::string(method);
      out.request.target = std::string(target);
      out.version = std::string(version);
      continue;
    }
    if (!parse_header_line(line, out.request.headers)) return std::nullopt;
  }
  if (first) return std::nullopt;
  return out;
}

bool has_token(std::string_view value, std::string_view token) noexcept {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

Result<std::string, HttpError> check_upgrade(const ParsedRequest& parsed) {
  const HttpRequest& r = parsed.request;
  if (r.method != "GET") return HttpError{400, "websocket handshake must be a GET"};
  if (parsed.version != "HTTP/1.1") return HttpError{400, "websocket handshake needs HTTP/1.1"};
  if (!has_token(r.header("upgrade"), "websocket")) {
    return HttpError{400, "unsupported upgrade (only websocket)"};
  }
  if (!has_token(r.header("connection"), "upgrade")) {
    return HttpError{400, "Connection header lacks the upgrade token"};
  }
  if (r.header("sec-websocket-version") != "13") {
    return HttpError{400, "unsupported Sec-WebSocket-Version (only 13)", true};
  }
  const std::string key = r.header("sec-websocket-key");
  if (!is_valid_key(key)) return HttpError{400, "missing or malformed Sec-WebSocket-Key"};
  return accept_key(key);
}

std::string accept_key(std::string_view key) {
  std::string input(key);
  input.append(kWebSocketGuid);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &size, EVP_sha1(), nullptr) != 1) {
    return {};
  }
  return base64(digest.data(), size);
}

std::string render_switching_protocols(std::string_view accept, std::string_view extensions) {
  std::string out =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  out.append(accept).append(kCrlf);
  if (!extensions.empty())
    out.append("Sec-WebSocket-Extensions: ").append(extensions).append(kCrlf);
  out.append(kCrlf);
  return out;
}

std::string render_response(const HttpResponse& response, bool head_only) {
  const int status = response.status >= 200 && response.status <= 999 ? response.status : 500;
  std::string_view type = response.content_type;
  if (!is_field_value(type)) type = "text/plain";
  std::string out = render_head(status, type, response.body.size());
  for (const auto& [name, value] : response.headers) {
    if (!is_token(name) || !is_field_value(value)) continue;
    if (iequals(name, "content-length") || iequals(name, "connection") ||
        iequals(name, "content-type") || iequals(name, "transfer-encoding")) {
      continue;  // ours are authoritative: the framing must match what is written
    }
    out.append(name).append(": ").append(value).append(kCrlf);
  }
  out.append(kCrlf);
  if (!head_only) out.append(response.body);
  return out;
}

std::string render_error(const HttpError& error) {
  std::string body = error.message + "\n";
  std::string out = render_head(error.status, "text/plain", body.size());
  if (error.version_hint) out.append("Sec-WebSocket-Version: 13\r\n");
  out.append(kCrlf).append(body);
  return out;
}

Result<WsUrl> parse_ws_url(std::string_view url) {
  constexpr std::string_view kScheme = "ws://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return Status::invalid("only ws:// URLs are supported: " + std::string(url));
  }
  url.remove_prefix(kScheme.size());
  WsUrl out;
  const std::size_t slash = url.find_first_of("/?");
  if (slash != std::string_view::npos) {
    out.path = std::string(url.substr(slash));
    if (out.path.front() == '?') out.path.insert(out.path.begin(), '/');
    url = url.substr(0, slash);
  }
  // "[v6]:port", "host:port" or "host".
  std::string_view port;
  if (!url.empty() && url.front() == '[') {
    const std::size_t close = url.find(']');
    if (close == std::string_view::npos) return Status::invalid("unclosed [ in the URL host");
    out.host = std::string(url.substr(1, close - 1));
    std::string_view rest = url.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return Status::invalid("junk after the URL host");
    if (!rest.empty()) port = rest.substr(1);
  } else {
    const std::size_t colon = url.find(':');
    out.host = std::string(url.substr(0, colon));
    if (colon != std::string_view::npos) port = url.substr(colon + 1);
  }
  if (out.host.empty()) return Status::invalid("the URL has no host");
  if (!port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return Status::invalid("bad port in the URL: " + std::string(port));
    }
    out.port = static_cast<std::uint16_t>(value);
  }
  if (!is_field_value(out.path) || out.path.find_first_of(" \t") != std::string::npos) {
    return Status::invalid("bad path in the URL");
  }
  return out;
}

std::string new_client_key() {
  static thread_local std::mt19937 rng(std::random_device{}());
  std::array<unsigned char, 16> nonce{};
  for (unsigned char& b : nonce) b = static_cast<unsigned char>(rng());
  return base64(nonce.data(), nonce.size());
}

Status check_extra_headers(const HeaderFields& headers) {
  for (const auto& [name, value] : headers) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(), ascii_lower);
    if (!is_token(name) || !is_field_value(value)) {
      return Status::invalid("header \"" + name + "\" is not a valid header line");
    }
    if (lower == "host" || lower == "upgrade" || lower == "connection" ||
        lower.rfind("sec-websocket-", 0) == 0) {
      return Status::invalid("header \"" + name + "\" is set by the handshake itself");
    }
  }
  return Status::ok();
}

std::string render_upgrade_request(const WsUrl& url, std::string_view key,
                                   std::string_view extensions, const HeaderFields& headers) {
  const bool v6 = url.host.find(':') != std::string::npos;
  std::string out = "GET " + url.path + " HTTP/1.1\r\nHost: ";
  out.append(v6 ? "[" + url.host + "]" : url.host).append(":").append(std::to_string(url.port));
  out.append(
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: ");
  out.append(key).append(kCrlf);
  if (!extensions.empty())
    out.append("Sec-WebSocket-Extensions: ").append(extensions).append(kCrlf);
  for (const auto& [name, value] : headers)
    out.append(name).append(": ").append(value).append(kCrlf);
  out.append(kCrlf);
  return out;
}

Status check_upgrade_response(std::string_view head, std::string_view key) {
  if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") {
    return Status::error("handshake: incomplete response head");
  }
  head.remove_suffix(2);
  const std::size_t eol = head.find(kCrlf);
  const std::string_view status_line = head.substr(0, eol);
  if (status_line.substr(0, 13) != "HTTP/1.1 101 " && status_line != "HTTP/1.1 101") {
    return Status::error("handshake refused: " + std::string(status_line));
  }
  head.remove_prefix(eol + 2);
  std::vector<std::pair<std::string, std::string>> headers;
  while (!head.empty()) {
    const std::size_t end = head.find(kCrlf);
    if (!parse_header_line(head.substr(0, end), headers)) {
      return Status::error("handshake: malformed response header");
    }
    head.remove_prefix(end + 2);
  }
  HttpRequest view;  // only for its header() lookup
  view.headers = std::move(headers);
  if (!has_token(view.header("upgrade"), "websocket") ||
      !has_token(view.header("connection"), "upgrade")) {
    return Status::error("handshake: response lacks Upgrade: websocket / Connection: upgrade");
  }
  if (view.header("sec-websocket-accept") != accept_key(key)) {
    return Status::error("handshake: wrong or missing Sec-WebSocket-Accept");
  }
  return Status::ok();
}

}  // namespace detail
}  // namespace relaycore::websocket

#include "websocket/http.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace relaycore::websocket {

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

namespace detail {
namespace {

constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::string_view kCrlf = "\r\n";

char lower(char c) noexcept {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

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

}  // namespace

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
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (!is_token(name) || !is_field_value(value)) return std::nullopt;  // also obs-fold
    std::string key(name);
    std::transform(key.begin(), key.end(), key.begin(), lower);
    out.request.headers.emplace_back(std::move(key), std::string(value));
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

std::string render_switching_protocols(std::string_view accept) {
  std::string out =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  out.append(accept).append("\r\n\r\n");
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

}  // namespace detail
}  // namespace relaycore::websocket

#include "relaycore/status.hpp"

namespace relaycore {

std::string_view status_prefix(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk:
      return {};
    case StatusCode::kInvalid:
      return "invalid";
    case StatusCode::kDuplicate:
      return "duplicate";
    case StatusCode::kBlocked:
      return "blocked";
    case StatusCode::kRateLimited:
      return "rate-limited";
    case StatusCode::kRestricted:
      return "restricted";
    case StatusCode::kAuthRequired:
      return "auth-required";
    case StatusCode::kPow:
      return "pow";
    case StatusCode::kError:
      return "error";
  }
  return "error";
}

Status::Status(StatusCode code, std::string_view detail) : code_(code) {
  if (code == StatusCode::kOk) return;
  std::string_view prefix = status_prefix(code);
  if (detail.size() > prefix.size() && detail.substr(0, prefix.size()) == prefix &&
      detail[prefix.size()] == ':') {
    message_.assign(detail);
    return;
  }
  message_.reserve(prefix.size() + 2 + detail.size());
  message_.append(prefix).append(": ").append(detail);
}

std::string_view Status::detail() const noexcept {
  std::string_view msg = message_;
  std::size_t colon = status_prefix(code_).size();
  if (msg.size() >= colon + 2 && msg[colon] == ':') return msg.substr(colon + 2);
  return msg;
}

}  // namespace relaycore

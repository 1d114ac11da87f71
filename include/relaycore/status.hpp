// Status and Result: how relaycore reports failure. No exception crosses the API; every
// operation that can fail returns one of these, and every failure carries a NIP-01 prefix.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "relaycore/export.hpp"

namespace relaycore {

// The machine-readable reasons of NIP-01. Each maps to the prefix a client sees in OK and
// CLOSED messages, so a failure deep in the pipeline reaches the client unchanged.
enum class StatusCode : std::uint8_t {
  kOk = 0,
  kInvalid,       // "invalid:"
  kDuplicate,     // "duplicate:"
  kBlocked,       // "blocked:"
  kRateLimited,   // "rate-limited:"
  kRestricted,    // "restricted:"
  kAuthRequired,  // "auth-required:"
  kPow,           // "pow:"
  kError,         // "error:"
};

// The NIP-01 prefix for a code, without the colon ("invalid"); empty for kOk.
RELAYCORE_API std::string_view status_prefix(StatusCode code) noexcept;

// A code and a human-readable message. The message already starts with the prefix
// ("invalid: id is not 64 lowercase hex characters"), so it can go to a client as it is.
class [[nodiscard]] RELAYCORE_API Status {
 public:
  // The default Status is success.
  Status() = default;

  static Status ok() { return Status(); }
  static Status invalid(std::string_view detail) { return Status(StatusCode::kInvalid, detail); }
  static Status duplicate(std::string_view detail) {
    return Status(StatusCode::kDuplicate, detail);
  }
  static Status blocked(std::string_view detail) { return Status(StatusCode::kBlocked, detail); }
  static Status rate_limited(std::string_view detail) {
    return Status(StatusCode::kRateLimited, detail);
  }
  static Status restricted(std::string_view detail) {
    return Status(StatusCode::kRestricted, detail);
  }
  static Status auth_required(std::string_view detail) {
    return Status(StatusCode::kAuthRequired, detail);
  }
  static Status pow(std::string_view detail) { return Status(StatusCode::kPow, detail); }
  static Status error(std::string_view detail) { return Status(StatusCode::kError, detail); }

  // Builds "prefix: detail". A detail that already starts with the prefix is kept as it is.
  Status(StatusCode code, std::string_view detail);

  bool is_ok() const noexcept { return code_ == StatusCode::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  StatusCode code() const noexcept { return code_; }

  // The full message with its prefix; empty for success.
  const std::string& message() const noexcept { return message_; }

  // The message without "prefix: ".
  std::string_view detail() const noexcept;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// A value or the reason there is none. E is Status unless an operation needs to say more about
// its failure (see MessageError).
template <typename T, typename E = Status>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  Result(E error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool is_ok() const noexcept { return state_.index() == 0; }
  // For a Result<bool>, `if (result)` would read as the value while it tests for success, so
  // that Result says is_ok() or value() instead.
  explicit operator bool() const noexcept requires(!std::is_same_v<T, bool>) { return is_ok(); }

  // Precondition: is_ok().
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // Precondition: !is_ok().
  const E& error() const& { return std::get<1>(state_); }
  E&& error() && { return std::get<1>(std::move(state_)); }

 private:
  std::variant<T, E> state_;
};

}  // namespace relaycore

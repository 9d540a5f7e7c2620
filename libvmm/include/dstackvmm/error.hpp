// SPDX-License-Identifier: Apache-2.0
// The one error model of libdstackvmm: every fallible call returns Result<T>.
#pragma once

#include <dstackvmm/export.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace dstackvmm {

// Stable codes: the daemon maps them once to HTTP status, vmmctl once to exit codes.
enum class ErrorCode {
  kInvalidArgument,    // the caller's input is wrong (bad id, bad config value, limit exceeded)
  kNotFound,           // the named VM, image or process does not exist
  kAlreadyExists,      // the thing to create is there already
  kFailedPrecondition, // the object is in the wrong state for the call
  kResourceExhausted,  // a pool (CIDs, ports) or a limit has no room left
  kIo,                 // the filesystem or a socket failed
  kQemu,               // QEMU or qemu-img failed
  kUnavailable,        // a peer (guest agent, supervisor, KMS) did not answer
  kInternal,           // a bug
  kUnauthenticated,    // the daemon refused the caller's credentials (client side)
};

// The inverse of error_code_name(); kInternal for a name it does not know.
DSTACKVMM_EXPORT ErrorCode error_code_from_name(std::string_view name);

DSTACKVMM_EXPORT std::string_view error_code_name(ErrorCode code);

struct DSTACKVMM_EXPORT Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // Prefix the message with context, as "context: cause" (upstream's error chain style).
  Error context(std::string_view what) const& {
    return Error{code, std::string(what) + ": " + message};
  }
};

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

// A value or an Error. Small on purpose: std::expected is C++23 and our floor is C++20.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  // By value, not T&&: `for (auto& x : *f())` would otherwise walk a destroyed temporary.
  T value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }
  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace dstackvmm

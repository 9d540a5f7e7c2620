// SPDX-License-Identifier: Apache-2.0
// A guest's serial console as the panic scanner reads it: any bytes, in pieces of any size.
// What it keeps stays bounded, and holds no control byte.
#include <cstdlib>

#include "guest/serial_watch.hpp"

using dstackvmm::internal::GuestPanic;
using dstackvmm::internal::PanicScanner;

namespace {
void check(const GuestPanic& p) {
  if (p.serial_tail.size() > PanicScanner::kLinesBefore + PanicScanner::kLinesAfter) std::abort();
  for (const auto& line : p.serial_tail) {
    if (line.size() > PanicScanner::kMaxLine) std::abort();
    for (char c : line)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t piece = 1 + data[0] % 16;  // the first byte picks how the rest is cut up
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  PanicScanner s;
  for (size_t at = 0; at < text.size(); at += piece)
    for (const auto& p : s.feed(text.substr(at, piece))) check(p);
  if (auto p = s.finish()) check(*p);
  return 0;
}

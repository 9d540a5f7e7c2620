// SPDX-License-Identifier: Apache-2.0
// Shared bits of the libFuzzer targets: a private scratch folder per process.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace dstackvmm::fuzz {

inline const std::filesystem::path& scratch() {
  static std::filesystem::path dir = [] {
    std::string tmpl = "/tmp/dvmm-fuzz.XXXXXX";
    std::filesystem::path p = ::mkdtemp(tmpl.data());
    std::atexit([] { std::error_code ec; std::filesystem::remove_all(scratch(), ec); });
    return p;
  }();
  return dir;
}

inline std::filesystem::path write_scratch(const std::string& name, const uint8_t* data, size_t size) {
  auto p = scratch() / name;
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return p;
}

}  // namespace dstackvmm::fuzz

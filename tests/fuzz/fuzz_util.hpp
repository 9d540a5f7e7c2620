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
  // The name lives in a plain array, which exit never destroys: `dir` is destroyed before the
  // atexit handler it registered runs (reverse order of registration), so the handler must not
  // read it, or the folder is left behind.
  static char name[] = "/tmp/dvmm-fuzz.XXXXXX";
  static std::filesystem::path dir = [] {
    std::filesystem::path p = ::mkdtemp(name);
    std::atexit([] { std::error_code ec; std::filesystem::remove_all(name, ec); });
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

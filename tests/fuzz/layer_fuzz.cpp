// SPDX-License-Identifier: Apache-2.0
// An image layer as bytes: unpacked into a fresh folder, it never writes outside it.
#include <fcntl.h>
#include <unistd.h>

#include "base/fs_util.hpp"
#include "fuzz_util.hpp"
#include "image/layer_extract.hpp"

using namespace dstackvmm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto layer = fuzz::write_scratch("layer", data, size);
  auto root = fuzz::scratch() / "root";
  auto outside = fuzz::scratch() / "outside";
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  std::filesystem::create_directories(root / "in");
  int fd = ::open((root / "in").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  internal::LayerLimits limits;
  limits.max_bytes = 1 << 20;
  limits.max_entries = 1000;
  internal::LayerProgress progress;
  (void)internal::extract_layer(layer, fd, limits, progress);
  ::close(fd);
  // Nothing may appear beside the target folder, nor next to the scratch folder's files.
  for (const auto& e : std::filesystem::directory_iterator(root))
    if (e.path().filename() != "in") __builtin_trap();
  if (std::filesystem::exists(outside)) __builtin_trap();
  (void)internal::check_extracted_tree(root / "in");
  return 0;
}

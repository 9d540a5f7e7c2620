// SPDX-License-Identifier: Apache-2.0
// vmm.toml: any text parses to a Config or to diagnostics, and a Config prints and re-parses.
#include <dstackvmm/config.hpp>

using namespace dstackvmm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<ConfigDiagnostic> diags;
  auto c = parse_config(text, ParseOptions{"fuzz.toml", "/srv/fuzz"}, &diags);
  if (c.ok()) {
    auto again = parse_config(print_config(*c), ParseOptions{"printed.toml", "/srv/fuzz"});
    if (!again.ok() || !(*again == *c)) __builtin_trap();  // print_config must round-trip
  }
  return 0;
}

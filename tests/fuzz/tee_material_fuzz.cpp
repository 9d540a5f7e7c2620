// SPDX-License-Identifier: Apache-2.0
// What a TEE launch parses from files others write (an image's material, a guest's
// .instance_info, a launch spec, QEMU's output): the first byte picks the parser, the rest is
// its input. What parses must print back to itself (documents are hashed as bytes).
#include <cstdlib>

#include <nlohmann/json.hpp>

#include <dstackvmm/mr_config.hpp>
#include <dstackvmm/vm_launcher.hpp>

#include "base/json_limits.hpp"
#include "qemu/qemu_version.hpp"
#include "qemu/sev_probe.hpp"
#include "tee/canonical_json.hpp"
#include "tee/image_material.hpp"
#include "tee/mr_config_plan.hpp"

using namespace dstackvmm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 8) {
    case 0:
      if (auto c = parse_mr_config(in); c.ok()) {
        auto again = parse_mr_config(mr_config_document(*c));
        if (!again.ok() || !(*again == *c)) std::abort();  // the canonical form reads back the same
      }
      break;
    case 1:
      if (auto i = internal::parse_instance_info(in); i.ok())
        if (!internal::parse_instance_info(internal::instance_info_json(*i)).ok()) std::abort();
      break;
    case 2:
      if (auto s = parse_launch_spec(in); s.ok()) {
        auto again = parse_launch_spec(launch_spec_json(*s));
        if (!again.ok() || !(*again == *s)) std::abort();
      }
      break;
    case 3: (void)internal::parse_aws_pcr_replay(in, "fuzz"); break;
    case 4: (void)internal::aws_boot_pcr_digest(in); break;
    case 5: (void)internal::parse_sev_capabilities(in); break;
    case 6: (void)internal::parse_qemu_version_output(in); break;
    case 7: {
      nlohmann::json j = internal::parse_json(in);
      if (j.is_discarded()) break;
      std::string once = internal::canonical_json(j);
      nlohmann::json back = internal::parse_json(once);
      if (back.is_discarded() || internal::canonical_json(back) != once) std::abort();  // RFC 8785 is a fixed point
      break;
    }
  }
  return 0;
}

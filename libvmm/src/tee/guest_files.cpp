// SPDX-License-Identifier: Apache-2.0
// A start's shared/ files for the guest's TEE (guest_files.hpp).
#include "tee/guest_files.hpp"

#include "tee/vm_config.hpp"

namespace dstackvmm::internal {

Result<GuestFiles> prepare_guest_files(const GuestFileInputs& in) {
  const VmManifest& m = *in.manifest;
  const ComposeFacts& facts = *in.compose_facts;
  GuestFiles out;
  auto version = select_mr_config_version(m.no_tee, m.simulated_tee, in.platform, in.cvm->use_mrconfigid,
                                          !facts.key_provider_id.empty());
  if (!version.ok()) return version.error();
  out.mr_config_version = *version;
  if (*version == MrConfigVersion::kV3) {
    bool has_gpus = m.gpus && !m.gpus->gpus.empty();  // bridges alone bind no GPU policy
    auto v3 = prepare_mr_config_v3(in.compose, facts, in.instance_info, has_gpus, in.random);
    if (!v3.ok()) return v3.error();
    out.mr_config = v3->document;
    out.instance_info = v3->instance_info;
  }
  if (m.simulated_tee && !in.cvm->tee_simulator)
    return make_error(ErrorCode::kFailedPrecondition,
                      "tee simulator credentials are not configured on this VMM (add a [cvm.tee_simulator] table)");

  VmConfigInputs vc;
  vc.cvm = in.cvm;
  vc.platform = in.platform;
  vc.manifest = &m;
  vc.image = in.image;
  vc.material = in.material;
  vc.compose = &facts;
  vc.qemu_version = in.qemu_version;
  vc.cpu_count = in.cpu_count;
  vc.num_nics = in.num_nics;
  vc.mr_config = out.mr_config;
  auto built = build_vm_config(vc);
  if (!built.ok()) return built.error();
  out.vm_config = built->vm_config;
  out.tdx_attestation_variant = built->tdx_attestation_variant;
  out.sys_config = build_sys_config(*in.cvm, m, in.host_api_url, out.vm_config, out.mr_config);
  if (m.simulated_tee)
    out.tee_simulator = build_tee_simulator_config(*in.cvm->tee_simulator, *m.simulated_tee, out.mr_config, out.vm_config);
  return out;
}

}  // namespace dstackvmm::internal

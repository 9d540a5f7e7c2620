// SPDX-License-Identifier: Apache-2.0
// What a start of a VM would run, decided without side effects: the dry run and the real
// start share it, so `dstack-vmm run --dry-run` prints exactly what the daemon launches.
#include <dstackvmm/vm_manager.hpp>

#include <cctype>

#include "base/fs_util.hpp"
#include "vm/app_compose.hpp"
#include "vm/vm_manager_impl.hpp"

namespace dstackvmm {

namespace {
Error invalid(std::string m) { return make_error(ErrorCode::kInvalidArgument, std::move(m)); }

bool image_has_tdx_material(const Image& image) {
  std::error_code ec;
  return !image.digest.empty() && std::filesystem::is_regular_file(image.dir / "sha256sum.txt", ec) &&
         std::filesystem::is_regular_file(image.dir / "measurement.tdx.cbor", ec);
}
}  // namespace

Status VmManager::Impl::check_bridges(const std::vector<NetworkSpec>& resolved) const {
  for (const auto& n : resolved) {
    if (n.mode != "bridge") continue;
    if (n.bridge.find_first_not_of(" \t") == std::string::npos)
      return invalid("bridge networking requested but no bridge is configured");
    bool name_ok = n.bridge.size() <= 15 && n.bridge != "." && n.bridge != "..";
    for (char ch : n.bridge)
      name_ok = name_ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.');
    if (!name_ok)
      return invalid("bridge interface '" + n.bridge + "' is not a valid interface name (1-15 letters, digits, '-', '_', '.')");
    std::error_code ec;
    if (!std::filesystem::exists(opt.sysfs_root / "class/net" / n.bridge, ec))
      return invalid("bridge interface '" + n.bridge + "' does not exist");
  }
  return {};
}

Result<LaunchPlan> VmManager::Impl::plan_launch(const std::string& id, const VmManifest& manifest, const Image& image) const {
  LaunchPlan plan;
  auto version = parse_image_version(image.version);
  if (!version || *version < std::array<uint16_t, 3>{0, 5, 0})
    return make_error(ErrorCode::kFailedPrecondition,
                      "Unsupported image version '" + image.version + "' of image " + image.name + " (need >= 0.5.0)");
  if (qemu.empty()) return make_error(ErrorCode::kFailedPrecondition, "Failed to find qemu executable");

  internal::VmPaths p = paths(id);
  QemuInputs& in = plan.inputs;
  in.manifest = manifest;
  in.image = image;
  in.workdir = p.dir;
  in.platform = platform;
  in.accel = accel;
  in.networks = resolve_networks(opt.config.cvm.networking, manifest.networks);
  if (auto s = check_bridges(in.networks); !s.ok()) return s.error();
  {
    std::lock_guard lock(mu);
    auto it = vms.find(id);
    if (it == vms.end()) return make_error(ErrorCode::kNotFound, "VM not found");
    in.cid = it->second->cid;
    in.channel = channel_of(*it->second, p);
  }
  if (manifest.hugepages || manifest.pin_numa) {
    auto numa = resolve_numa(opt.sysfs_root, manifest);
    if (!numa.ok()) return numa.error();
    in.numa = *numa;
  }
  const bool tdx_tee = platform == Platform::kTdx && !manifest.no_tee;
  std::string compose = internal::read_file(p.compose()).value_or("");
  if (tdx_tee && opt.config.cvm.use_mrconfigid && *version >= std::array<uint16_t, 3>{0, 5, 2})
    in.mrconfigid = mrconfigid_v1(compose);
  else if (tdx_tee && opt.config.cvm.use_mrconfigid)
    // As upstream: these images do not read MRCONFIGID, so it is left out rather than refused
    // (the host enables it for every VM; the VM did not ask). Said, not silent.
    plan.notices.push_back("image " + image.name + " " + image.version + " predates MRCONFIGID (0.5.2): the compose hash is "
                           "not put in MRCONFIGID at this start ([cvm] use_mrconfigid); the guest attests it on its own");
  bool material = image_has_tdx_material(image);
  std::string variant = internal::resolve_tdx_attestation_variant(opt.config.cvm.tdx_attestation_variant, tdx_tee,
                                                                  internal::compose_tdx_measure_acpi_tables(compose),
                                                                  manifest.memory, material);
  if (tdx_tee && variant == "lite" && !material)
    return make_error(ErrorCode::kFailedPrecondition,
                      "tdx_attestation_variant lite needs the image's TDX measurement material (digest.txt, sha256sum.txt "
                      "and measurement.tdx.cbor); use an image that has it, or the legacy variant");
  plan.facts = {in.networks.size(), effective_vcpus(manifest, in.numa), effective_memory_mb(manifest, in.numa), variant};

  Config cfg = opt.config;
  cfg.cvm.qemu_path = qemu;
  auto argv = build_qemu_command(cfg, in);
  if (!argv.ok()) return argv.error();
  plan.argv = std::move(*argv);
  return plan;
}

Result<std::vector<std::string>> VmManager::qemu_command(const std::string& id) const {
  auto vm = impl_->find(id);
  if (!vm.ok()) return vm.error();
  VmManifest manifest;
  {
    std::lock_guard lock(impl_->mu);
    manifest = (*vm)->manifest;
  }
  auto image = load_image(impl_->opt.config.image.path, manifest.image);
  if (!image.ok()) return image.error().context("Failed to load image");
  auto plan = impl_->plan_launch(id, manifest, *image);
  if (!plan.ok()) return plan.error();
  return std::move(plan->argv);
}

}  // namespace dstackvmm

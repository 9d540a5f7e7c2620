// SPDX-License-Identifier: Apache-2.0
// What a start of a VM would run and write, decided without side effects: the dry run and the
// real start share it, so `dstack-vmm run --dry-run` prints exactly what the daemon launches
// and the files it hands the guest.
#include <dstackvmm/vm_manager.hpp>

#include <pwd.h>
#include <unistd.h>

#include <cctype>

#include <dstackvmm/log.hpp>

#include "base/crypto.hpp"
#include "base/fs_util.hpp"
#include "process/spawn.hpp"
#include "qemu/qemu_version.hpp"
#include "qemu/sev_probe.hpp"
#include "tee/compose_facts.hpp"
#include "vm/vm_manager_impl.hpp"

namespace dstackvmm {

namespace {
Error invalid(std::string m) { return make_error(ErrorCode::kInvalidArgument, std::move(m)); }

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

Result<std::string> VmManager::Impl::swtpm_program() const {
  std::string path = internal::find_program(opt.swtpm);
  if (path.empty())
    return make_error(ErrorCode::kFailedPrecondition,
                      "tpm key provider requested but swtpm is not installed (" + opt.swtpm +
                          " not found); install Debian's swtpm package (apt-get install swtpm swtpm-tools), or use "
                          "another key_provider in the compose");
  return path;
}

Result<std::filesystem::path> VmManager::Impl::vm_launcher_program() const {
  namespace fs = std::filesystem;
  if (!opt.vm_launcher_exe.empty()) {
    if (::access(opt.vm_launcher_exe.c_str(), X_OK) == 0) return opt.vm_launcher_exe;
    return make_error(ErrorCode::kFailedPrecondition, "the swtpm launcher " + opt.vm_launcher_exe.string() + " is not executable");
  }
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && self.filename() == "dstack-vmm") return self;
  if (!ec)
    for (const fs::path& candidate : {self.parent_path() / "dstack-vmm", self.parent_path() / "../tools/dstack-vmm/dstack-vmm",
                                      self.parent_path() / "../../tools/dstack-vmm/dstack-vmm"})
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal();
  if (std::string found = internal::find_program("dstack-vmm"); !found.empty()) return fs::path(found);
  return make_error(ErrorCode::kFailedPrecondition,
                    "a VM with a software TPM runs under `dstack-vmm vm-launcher`, and no dstack-vmm was found beside this "
                    "program or on PATH; install it, or set ManagerOptions::vm_launcher_exe");
}

std::optional<std::string> VmManager::Impl::qemu_version_for_guest(bool tee, std::vector<std::string>* notices) const {
  if (opt.config.cvm.qemu_version) return opt.config.cvm.qemu_version;
  auto v = internal::detect_qemu_version(qemu);
  if (v.ok()) return *v;
  std::string why = "Failed to detect QEMU version of " + qemu + ": " + v.error().message +
                    "; vm_config carries no qemu_version, and a verifier then assumes 9.1.0 (set [cvm] qemu_version)";
  log_message(tee ? LogLevel::kWarn : LogLevel::kDebug, "vmm", why);
  if (tee && notices) notices->push_back(why);
  return std::nullopt;
}

Result<internal::GuestFiles> VmManager::Impl::plan_guest_files(const std::string& id, const VmManifest& manifest, const Image& image,
                                                               uint32_t cpu_count, size_t num_nics,
                                                               const std::optional<std::string>& qemu_version) const {
  internal::VmPaths p = paths(id);
  std::string compose = internal::read_file(p.compose()).value_or("");
  auto facts = internal::read_compose(compose);
  if (!facts.ok()) return facts.error().context("Failed to get app compose");
  auto material = internal::load_measurement_material(image.dir);
  if (!material.ok()) return material.error().context("Failed to load image");
  auto info = internal::read_file(p.instance_info());
  std::error_code ec;
  bool info_missing = !info.ok() && !std::filesystem::exists(p.instance_info(), ec);
  if (!info.ok() && !info_missing) return info.error().context("failed to get instance info");
  auto in = guest_inputs(manifest, image, *material, std::move(compose), *facts);
  if (!info_missing) in.instance_info = *info;
  in.qemu_version = qemu_version;
  in.cpu_count = cpu_count;
  in.num_nics = num_nics;
  in.random = [](size_t n) { return internal::random_bytes(n); };
  return internal::prepare_guest_files(in);
}

internal::GuestFileInputs VmManager::Impl::guest_inputs(const VmManifest& manifest, const Image& image,
                                                        const internal::MeasurementMaterial& material, std::string compose,
                                                        const internal::ComposeFacts& facts) const {
  internal::GuestFileInputs in;
  in.cvm = &opt.config.cvm;
  in.platform = platform;
  in.manifest = &manifest;
  in.image = &image;
  in.material = &material;
  in.compose = std::move(compose);
  in.compose_facts = &facts;
  in.host_api_url = host_api_url();
  return in;
}

namespace {

// TDX: the compose hash (V1) or the MrConfig document's hash (V3) in MRCONFIGID, for images
// that read it.
void add_mrconfigid(LaunchPlan& plan, const Image& image, const std::array<uint16_t, 3>& version, const internal::VmPaths& p) {
  if (plan.guest.mr_config_version == internal::MrConfigVersion::kNone) return;
  QemuInputs& in = plan.inputs;
  if (version >= std::array<uint16_t, 3>{0, 5, 2}) {
    in.mrconfigid = plan.guest.mr_config ? tdx_mr_config_id_v3(*plan.guest.mr_config)
                                         : mrconfigid_v1(internal::read_file(p.compose()).value_or(""));
  } else {
    // As upstream: these images do not read MRCONFIGID, so it is left out rather than refused
    // (the host enables it for every VM; the VM did not ask). Said, not silent.
    plan.notices.push_back("image " + image.name + " " + image.version + " predates MRCONFIGID (0.5.2): the compose hash is "
                           "not put in MRCONFIGID at this start ([cvm] use_mrconfigid); the guest attests it on its own");
  }
}

// SEV-SNP: HOST_DATA from the MrConfig document, and the C-bit position this host's QEMU says.
Status add_snp_params(LaunchPlan& plan, const std::string& qemu) {
  auto caps = internal::probe_sev_capabilities(qemu);
  if (!caps.ok()) return caps.error();
  plan.inputs.sev_snp = SevSnpParams{snp_host_data(*plan.guest.mr_config), caps->cbitpos, caps->reduced_phys_bits};
  return {};
}

// A TPM VM's launch.json: QEMU's argv and swtpm's, its control socket owned by the user QEMU
// runs as ([cvm] user, else us).
Result<LaunchSpec> swtpm_launch_spec(const std::string& swtpm, const std::string& user, const internal::VmPaths& p,
                                     const std::vector<std::string>& qemu_argv) {
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  if (!user.empty()) {
    passwd pw{}, *found = nullptr;
    std::string buf(16384, '\0');
    if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0)
      return make_error(ErrorCode::kFailedPrecondition, "failed to resolve QEMU user " + user);
    if (!found) return make_error(ErrorCode::kFailedPrecondition, "QEMU user " + user + " does not exist ([cvm] user)");
    uid = pw.pw_uid;
    gid = pw.pw_gid;
  }
  LaunchSpec spec;
  spec.qemu = qemu_argv;
  spec.swtpm = {swtpm, "socket", "--tpm2", "--tpmstate", "dir=" + p.swtpm_dir().string(), "--ctrl",
                "type=unixio,path=" + p.swtpm_socket().string() + ",mode=0600,uid=" + std::to_string(uid) +
                    ",gid=" + std::to_string(gid),
                "--flags", "not-need-init,startup-clear"};
  spec.swtpm_socket = p.swtpm_socket();
  return spec;
}

}  // namespace

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
  const bool tee = !manifest.no_tee && platform != Platform::kNone;
  const bool tdx_tee = tee && platform == Platform::kTdx;
  const bool snp_tee = tee && platform == Platform::kAmdSevSnp;
  // The guest's files first (upstream's order), then what QEMU gets of them.
  auto guest = plan_guest_files(id, manifest, image, effective_vcpus(manifest, in.numa), in.networks.size(),
                                qemu_version_for_guest(tee, &plan.notices));
  if (!guest.ok()) return guest.error();
  plan.guest = std::move(*guest);
  if (tdx_tee) add_mrconfigid(plan, image, *version, p);
  if (snp_tee) {
    if (auto s = add_snp_params(plan, qemu); !s.ok()) return s.error();
    if (opt.config.cvm.qgs_port) log_message(LogLevel::kDebug, "vmm", "VM " + id + ": qgs_port is ignored for amd sev-snp guests");
  }

  Config cfg = opt.config;
  cfg.cvm.qemu_path = qemu;
  auto argv = build_qemu_command(cfg, in);
  if (!argv.ok()) return argv.error();
  plan.argv = std::move(*argv);
  plan.process_argv = plan.argv;
  if (manifest.swtpm) {
    auto swtpm = swtpm_program();
    if (!swtpm.ok()) return swtpm.error();
    auto launcher_exe = vm_launcher_program();
    if (!launcher_exe.ok()) return launcher_exe.error();
    auto spec = swtpm_launch_spec(*swtpm, opt.config.cvm.user, p, plan.argv);
    if (!spec.ok()) return spec.error();
    plan.launch_spec = std::move(*spec);
    plan.process_argv = {launcher_exe->string(), "vm-launcher", "--spec", p.launch_spec().string()};
  }
  return plan;
}

Result<LaunchPreview> VmManager::launch_preview(const std::string& id) const {
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
  LaunchPreview out;
  out.argv = plan->process_argv;
  out.qemu_argv = plan->argv;
  out.sys_config = plan->guest.sys_config;
  out.vm_config = plan->guest.vm_config;
  out.mr_config = plan->guest.mr_config;
  out.tee_simulator = plan->guest.tee_simulator;
  if (plan->launch_spec) out.launch_spec = launch_spec_json(*plan->launch_spec);
  out.notices = plan->notices;
  return out;
}

Result<std::vector<std::string>> VmManager::qemu_command(const std::string& id) const {
  auto preview = launch_preview(id);
  if (!preview.ok()) return preview.error();
  return std::move(preview->argv);
}

}  // namespace dstackvmm

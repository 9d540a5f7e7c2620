// SPDX-License-Identifier: Apache-2.0
// The host check, one function a subject: each turns what was found into ok, warn or fail,
// judged against the config (a check fails only for what the config asks for).
#include "host/host_check.hpp"

#include <algorithm>
#include <fstream>
#include <future>
#include <sstream>

#include <dstackvmm/image.hpp>

#include "base/fs_util.hpp"
#include "host/kvm_probe.hpp"
#include "host/url_probe.hpp"
#include "process/run_command.hpp"

namespace dstackvmm {

std::string_view check_level_name(CheckLevel level) {
  switch (level) {
    case CheckLevel::kOk: return "ok";
    case CheckLevel::kWarn: return "warn";
    case CheckLevel::kFail: return "fail";
  }
  return "fail";
}

namespace internal {
namespace {

namespace fs = std::filesystem;
constexpr auto kKvmProbeTimeout = std::chrono::seconds(3);
constexpr auto kConnectTimeout = std::chrono::milliseconds(2000);
constexpr auto kQemuTimeout = std::chrono::seconds(10);

HostCheck ok(std::string name, std::string detail) { return {std::move(name), CheckLevel::kOk, std::move(detail), ""}; }
HostCheck warn(std::string name, std::string detail, std::string fix) {
  return {std::move(name), CheckLevel::kWarn, std::move(detail), std::move(fix)};
}
HostCheck failed(std::string name, std::string detail, std::string fix) {
  return {std::move(name), CheckLevel::kFail, std::move(detail), std::move(fix)};
}

HostCheck check_urls(const std::string& name, const std::vector<std::string>& urls, const std::string& key, std::stop_token stop) {
  if (urls.empty()) return ok(name, "not configured");
  std::vector<std::future<std::string>> probes;
  for (const auto& u : urls)
    probes.push_back(std::async(std::launch::async, [u, stop] {
      auto ep = url_endpoint(u);
      return ep ? try_connect(ep->first, ep->second, kConnectTimeout, stop) : std::string("not an http(s) URL");
    }));
  std::string bad;
  for (size_t i = 0; i < urls.size(); ++i)
    if (std::string why = probes[i].get(); !why.empty()) bad += (bad.empty() ? "" : "; ") + urls[i] + ": " + why;
  if (bad.empty()) return ok(name, std::to_string(urls.size()) + " URL(s) reachable");
  return warn(name, bad, "start the service or fix " + key + "; guests that need it cannot boot until it answers");
}

// TCP and UDP ports bound on the host, from <proc>/net/{tcp,tcp6,udp,udp6}: listeners for
// TCP, any bound socket for UDP.
std::set<std::pair<std::string, uint32_t>> bound_ports(const fs::path& proc) {
  std::set<std::pair<std::string, uint32_t>> out;
  for (const auto& [file, proto] : {std::pair{"tcp", "tcp"}, {"tcp6", "tcp"}, {"udp", "udp"}, {"udp6", "udp"}}) {
    std::ifstream in(proc / "net" / file);
    std::string line;
    std::getline(in, line);  // header
    for (int n = 0; n < 100000 && std::getline(in, line); ++n) {
      std::istringstream words(line);
      std::string sl, local, remote, state;
      if (!(words >> sl >> local >> remote >> state)) continue;
      if (std::string(proto) == "tcp" && state != "0A") continue;  // LISTEN
      auto colon = local.rfind(':');
      std::string hex = colon == std::string::npos ? "" : local.substr(colon + 1);
      if (hex.empty() || hex.size() > 4 || hex.find_first_not_of("0123456789ABCDEFabcdef") != std::string::npos) continue;
      out.insert({proto, static_cast<uint32_t>(std::stoul(hex, nullptr, 16))});
    }
  }
  return out;
}

using Add = std::vector<HostCheck>&;

// QEMU and its version; returns its `-object help` (which confidential-guest objects it has).
std::string check_qemu(const HostFacts& f, Add out, std::stop_token stop) {
  if (f.qemu.empty()) {
    out.push_back(failed("qemu", "qemu-system-x86_64 not found on PATH", "install qemu-system-x86 or set [cvm] qemu_path"));
    return "";
  }
  auto v = run_command_output({f.qemu, "--version"}, "qemu --version", kQemuTimeout, stop);
  if (!v.ok()) {
    out.push_back(failed("qemu", f.qemu + " does not run: " + v.error().message, "check [cvm] qemu_path"));
    return "";
  }
  out.push_back(ok("qemu", f.qemu + ": " + v->substr(0, v->find('\n'))));
  auto o = run_command_output({f.qemu, "-object", "help"}, "qemu -object help", kQemuTimeout, stop);
  return o.ok() ? *o : "";
}

// KVM, by running a guest: /dev/kvm that opens is not enough.
void check_kvm(const HostFacts& f, Add out, std::stop_token stop) {
  auto kvm = probe_kvm(f.roots, std::chrono::duration_cast<std::chrono::milliseconds>(kKvmProbeTimeout), stop);
  if (kvm.works) out.push_back(ok("kvm", kvm.detail + (f.accel == Accel::kTcg ? " (but accel is tcg)" : "")));
  else if (f.config.cvm.accel == Accel::kKvm)
    out.push_back(failed("kvm", kvm.detail, "load kvm_intel or kvm_amd with virtualisation enabled in the BIOS, or set [cvm] accel = \"tcg\""));
  else out.push_back(warn("kvm", kvm.detail + "; guests run under TCG (emulated, much slower)", "for speed, a host whose KVM runs guests"));
}

// vsock: the guest channel of choice. Returns whether it is there.
bool check_vsock(const HostFacts& f, Add out) {
  std::string dev = (f.roots.dev / "vhost-vsock").string();
  bool vsock = fs::exists(f.roots.dev / "vhost-vsock");
  if (vsock) out.push_back(ok("vsock", dev + " present"));
  else if (f.config.cvm.guest_channel == GuestChannelMode::kVsock)
    out.push_back(failed("vsock", dev + " is absent", "modprobe vhost_vsock, or set [cvm] guest_channel = \"user-net\""));
  else out.push_back(warn("vsock", dev + " is absent; guests use the user-net channel", "modprobe vhost_vsock for the vsock channel"));
  return vsock;
}

// TEEs: what the CPU, the kernel and this QEMU offer, judged against the platform in use.
void check_tees(const HostFacts& f, const std::string& objects, bool vsock, Add out) {
  auto has_object = [&](const char* type) { return objects.find(std::string("  ") + type + "\n") != std::string::npos; };
  bool tdx_cpu = cpu_has_any_flag(f.roots, {"tdx_host_platform", "tdx"});
  std::string tdx = std::string("CPU flag ") + (tdx_cpu ? "present" : "absent") + ", QEMU tdx-guest " +
                    (has_object("tdx-guest") ? "supported" : "not supported");
  if (f.platform == Platform::kTdx) {
    std::string qgs = f.config.cvm.qgs_port ? "quote generation on vsock port " + std::to_string(*f.config.cvm.qgs_port) : "no qgs_port";
    if (tdx_cpu && has_object("tdx-guest") && vsock) out.push_back(ok("tdx", tdx + ", " + qgs));
    else out.push_back(failed("tdx", tdx + ", " + qgs + (vsock ? "" : " (vsock absent)"),
                              "a TDX-enabled host kernel and QEMU with the TDX quote generation service, or [cvm] platform = \"none\""));
  } else {
    out.push_back(ok("tdx", tdx + " (not used: platform is " + std::string(to_string(f.platform)) + ")"));
  }
  bool snp_cpu = cpu_has_any_flag(f.roots, {"sev_snp"});
  bool sev_dev = fs::exists(f.roots.dev / "sev");
  std::string snp = std::string("CPU flag ") + (snp_cpu ? "present" : "absent") + ", " + (f.roots.dev / "sev").string() +
                    (sev_dev ? " present" : " absent") + ", QEMU sev-snp-guest " + (has_object("sev-snp-guest") ? "supported" : "not supported");
  if (f.platform != Platform::kAmdSevSnp) out.push_back(ok("sev_snp", snp + " (not used)"));
  else if (snp_cpu && sev_dev && has_object("sev-snp-guest")) out.push_back(ok("sev_snp", snp));
  else out.push_back(failed("sev_snp", snp, "an SEV-SNP host (kvm_amd sev_snp=1) and QEMU 9.1 or later, or [cvm] platform = \"none\""));
}

// Firmware: every image a TEE boots needs its OVMF.
void check_firmware(const HostFacts& f, Add out) {
  auto images = list_images(f.config.image.path);
  if (!images.ok() || images->images.empty()) {
    out.push_back(warn("ovmf", "no images under " + f.config.image.path, "pull or copy an image (vmmctl image pull)"));
    return;
  }
  std::string missing;
  for (const auto& img : images->images)
    if (!img.bios || !fs::exists(*img.bios)) missing += (missing.empty() ? "" : ", ") + img.name;
  bool tee = f.platform == Platform::kTdx || f.platform == Platform::kAmdSevSnp;
  if (missing.empty()) out.push_back(ok("ovmf", "every image (" + std::to_string(images->images.size()) + ") has its firmware"));
  else if (tee) out.push_back(failed("ovmf", "images without firmware: " + missing, "use images that ship OVMF (bios in metadata.json)"));
  else out.push_back(ok("ovmf", "images without firmware: " + missing + " (they boot the kernel directly; no TEE here)"));
}

// IOMMU and GPUs: only what [cvm.gpu] asks for must be there.
void check_gpus(const HostFacts& f, Add out) {
  size_t groups = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(f.sysfs_root / "kernel/iommu_groups", ec); !ec && it != fs::directory_iterator(); it.increment(ec)) ++groups;
  bool gpus_on = f.config.cvm.gpu.enabled;
  if (groups) out.push_back(ok("iommu", std::to_string(groups) + " IOMMU groups"));
  else if (gpus_on) out.push_back(failed("iommu", "no IOMMU groups", "enable VT-d/AMD-Vi in the BIOS and boot with intel_iommu=on iommu=pt"));
  else out.push_back(ok("iommu", "no IOMMU groups (GPU passthrough is off)"));
  if (!gpus_on) {
    out.push_back(ok("gpus", "GPU passthrough is off ([cvm.gpu] enabled = false)"));
    return;
  }
  std::string unbound;
  for (const auto& g : f.offered_gpus)
    if (g.driver != "vfio-pci") unbound += (unbound.empty() ? "" : ", ") + g.slot + " (" + (g.driver.empty() ? "no driver" : g.driver) + ")";
  if (f.offered_gpus.empty()) out.push_back(failed("gpus", "no GPU matches [cvm.gpu] listing", "check the listing and include/exclude slots against lspci -nn"));
  else if (!unbound.empty()) out.push_back(failed("gpus", "not bound to vfio-pci: " + unbound, "bind them to vfio-pci (driverctl set-override <slot> vfio-pci)"));
  else out.push_back(ok("gpus", std::to_string(f.offered_gpus.size()) + " GPU(s) offered, all bound to vfio-pci"));
}

// Huge pages (only --hugepages VMs need them).
void check_hugepages(const HostFacts& f, Add out) {
  auto hp = f.sysfs_root / "kernel/mm/hugepages/hugepages-2048kB";
  std::string total = read_attribute(hp / "nr_hugepages"), free_pages = read_attribute(hp / "free_hugepages");
  if (total.empty() || total == "0") out.push_back(ok("hugepages", "none reserved (only VMs deployed with --hugepages need them)"));
  else out.push_back(ok("hugepages", free_pages + " of " + total + " 2 MiB pages free"));
}

// CIDs: what is left to hand out.
void check_cids(const HostFacts& f, Add out) {
  uint32_t free_cids = f.cids_total > f.cids_used ? f.cids_total - f.cids_used : 0;
  std::string cids = std::to_string(free_cids) + " of " + std::to_string(f.cids_total) + " CIDs free (from " +
                     std::to_string(f.config.cvm.cid_start) + ")" +
                     (f.cid_registry.empty() ? "" : ", host-wide registry " + f.cid_registry.string());
  if (free_cids == 0) out.push_back(failed("cids", cids, "raise [cvm] cid_pool_size or remove VMs"));
  else if (free_cids * 10 < f.cids_total) out.push_back(warn("cids", cids, "raise [cvm] cid_pool_size before it runs out"));
  else out.push_back(ok("cids", cids));
}

// Ports of the mapping range that another program holds: mappings to them fail at start.
void check_ports(const HostFacts& f, Add out) {
  const auto& mapping = f.config.cvm.port_mapping;
  if (!mapping.enabled) {
    out.push_back(ok("ports", "port mapping is off"));
    return;
  }
  std::vector<std::string> taken;
  for (const auto& [proto, port] : bound_ports(f.roots.proc))
    for (const auto& range : mapping.range)
      if (range.protocol == proto && port >= range.from && port <= range.to && !f.ports_ours.count({proto, port})) {
        taken.push_back(proto + ":" + std::to_string(port));
        break;
      }
  if (taken.empty()) {
    out.push_back(ok("ports", "no other program holds a port of the mapping range"));
    return;
  }
  std::string list;
  for (size_t i = 0; i < taken.size() && i < 5; ++i) list += (i ? ", " : "") + taken[i];
  if (taken.size() > 5) list += " and " + std::to_string(taken.size() - 5) + " more";
  out.push_back(warn("ports", std::to_string(taken.size()) + " port(s) of the mapping range held by other programs: " + list,
                     "mappings to them fail at start; narrow [cvm.port_mapping] range"));
}

}  // namespace

HostReport inspect_host(const HostFacts& f, std::stop_token stop) {
  const Config& c = f.config;
  HostReport r;
  std::string objects = check_qemu(f, r.checks, stop);
  check_kvm(f, r.checks, stop);
  bool vsock = check_vsock(f, r.checks);
  check_tees(f, objects, vsock, r.checks);
  check_firmware(f, r.checks);
  check_gpus(f, r.checks);
  check_hugepages(f, r.checks);
  check_cids(f, r.checks);
  check_ports(f, r.checks);
  if (f.state_ok) r.checks.push_back(ok("state_folder", c.run_path + " writable, " + std::to_string(f.state_free_bytes >> 20) + " MiB free"));
  else r.checks.push_back(failed("state_folder", f.state_error, "free space or fix the permissions of " + c.run_path));
  // Services guests need at boot.
  std::vector<std::string> kms = c.cvm.kms_urls;
  if (!c.kms_url.empty() && std::find(kms.begin(), kms.end(), c.kms_url) == kms.end()) kms.push_back(c.kms_url);
  r.checks.push_back(check_urls("kms", kms, "kms_url / [cvm] kms_urls", stop));
  r.checks.push_back(check_urls("gateway", c.cvm.gateway_urls, "[cvm] gateway_urls", stop));
  return r;
}

}  // namespace internal
}  // namespace dstackvmm

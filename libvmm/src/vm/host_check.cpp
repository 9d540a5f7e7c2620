// SPDX-License-Identifier: Apache-2.0
// VmManager::check_host(): is this host ready for what the config asks? Each check reads the
// injected roots (proc, dev, sysfs), runs QEMU only to ask it what it supports, and probes
// KVM in a child process with a deadline; network checks are a short TCP connect.
#include <dstackvmm/host_check.hpp>
#include <dstackvmm/vm_manager.hpp>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <future>
#include <set>
#include <sstream>

#include "base/fs_util.hpp"
#include "process/run_command.hpp"
#include "process/spawn.hpp"
#include "vm/kvm_probe.hpp"
#include "vm/vm_manager_impl.hpp"

namespace dstackvmm {

std::string_view check_level_name(CheckLevel level) {
  switch (level) {
    case CheckLevel::kOk: return "ok";
    case CheckLevel::kWarn: return "warn";
    case CheckLevel::kFail: return "fail";
  }
  return "fail";
}

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

// host and port of an http(s) URL; nullopt when it is not one.
std::optional<std::pair<std::string, std::string>> url_endpoint(const std::string& url) {
  std::string rest;
  std::string port;
  if (url.rfind("http://", 0) == 0) rest = url.substr(7), port = "80";
  else if (url.rfind("https://", 0) == 0) rest = url.substr(8), port = "443";
  else return std::nullopt;
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  std::string host = rest;
  if (!rest.empty() && rest[0] == '[') {  // [v6]:port
    auto close = rest.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty() || port.empty()) return std::nullopt;
  return std::pair{host, port};
}

// A TCP connect within the timeout: "" when it connected, else why not.
std::string try_connect(const std::string& host, const std::string& port, std::chrono::milliseconds timeout, std::stop_token stop) {
  internal::StopFd stopped(stop);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) return std::string("cannot resolve: ") + gai_strerror(rc);
  std::string why = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p[2] = {{fd, POLLOUT, 0}, {stopped.fd(), POLLIN, 0}};
      rc = ::poll(p, stopped.fd() >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
      if (rc > 0 && !(p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
        ::close(fd);
        ::freeaddrinfo(res);
        return "not tried (stopped)";
      }
      if (rc == 0) {
        why = "no answer within " + std::to_string(timeout.count()) + " ms";
        ::close(fd);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err ? -1 : 0;
      errno = err;
    }
    if (rc == 0) {
      ::close(fd);
      ::freeaddrinfo(res);
      return "";
    }
    why = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return why;
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

}  // namespace

HostReport VmManager::check_host(std::stop_token stop) const {
  const Impl& im = *impl_;
  const Config& c = im.opt.config;
  const internal::HostRoots& roots = im.roots;
  HostReport r;
  auto add = [&](HostCheck h) { r.checks.push_back(std::move(h)); };

  // QEMU, its version, and which confidential-guest objects it has.
  std::string objects;
  if (im.qemu.empty()) {
    add(failed("qemu", "qemu-system-x86_64 not found on PATH", "install qemu-system-x86 or set [cvm] qemu_path"));
  } else if (auto v = internal::run_command_output({im.qemu, "--version"}, "qemu --version", kQemuTimeout, stop); !v.ok()) {
    add(failed("qemu", im.qemu + " does not run: " + v.error().message, "check [cvm] qemu_path"));
  } else {
    add(ok("qemu", im.qemu + ": " + v->substr(0, v->find('\n'))));
    if (auto o = internal::run_command_output({im.qemu, "-object", "help"}, "qemu -object help", kQemuTimeout, stop); o.ok())
      objects = *o;
  }
  auto has_object = [&](const char* type) { return objects.find(std::string("  ") + type + "\n") != std::string::npos; };

  // KVM, by running a guest: /dev/kvm that opens is not enough.
  auto kvm = internal::probe_kvm(roots, std::chrono::duration_cast<std::chrono::milliseconds>(kKvmProbeTimeout), stop);
  bool kvm_wanted = c.cvm.accel == Accel::kKvm;
  if (kvm.works) add(ok("kvm", kvm.detail + (im.accel == Accel::kTcg ? " (but accel is tcg)" : "")));
  else if (kvm_wanted) add(failed("kvm", kvm.detail, "load kvm_intel or kvm_amd with virtualisation enabled in the BIOS, or set [cvm] accel = \"tcg\""));
  else add(warn("kvm", kvm.detail + "; guests run under TCG (emulated, much slower)", "for speed, a host whose KVM runs guests"));

  // vsock: the guest channel of choice.
  bool vsock = fs::exists(roots.dev / "vhost-vsock");
  if (vsock) add(ok("vsock", (roots.dev / "vhost-vsock").string() + " present"));
  else if (c.cvm.guest_channel == GuestChannelMode::kVsock)
    add(failed("vsock", (roots.dev / "vhost-vsock").string() + " is absent", "modprobe vhost_vsock, or set [cvm] guest_channel = \"user-net\""));
  else add(warn("vsock", (roots.dev / "vhost-vsock").string() + " is absent; guests use the user-net channel", "modprobe vhost_vsock for the vsock channel"));

  // TEEs: what the CPU, the kernel and this QEMU offer, judged against the platform in use.
  bool tdx_cpu = internal::cpu_has_any_flag(roots, {"tdx_host_platform", "tdx"});
  bool tdx_on = im.platform == Platform::kTdx;
  std::string tdx = std::string("CPU flag ") + (tdx_cpu ? "present" : "absent") + ", QEMU tdx-guest " +
                    (has_object("tdx-guest") ? "supported" : "not supported");
  if (tdx_on) {
    std::string qgs = c.cvm.qgs_port ? "quote generation on vsock port " + std::to_string(*c.cvm.qgs_port) : "no qgs_port";
    if (tdx_cpu && has_object("tdx-guest") && vsock) add(ok("tdx", tdx + ", " + qgs));
    else add(failed("tdx", tdx + ", " + qgs + (vsock ? "" : " (vsock absent)"),
                    "a TDX-enabled host kernel and QEMU with the TDX quote generation service, or [cvm] platform = \"none\""));
  } else {
    add(ok("tdx", tdx + " (not used: platform is " + std::string(to_string(im.platform)) + ")"));
  }
  bool snp_cpu = internal::cpu_has_any_flag(roots, {"sev_snp"});
  bool sev_dev = fs::exists(roots.dev / "sev");
  std::string snp = std::string("CPU flag ") + (snp_cpu ? "present" : "absent") + ", " + (roots.dev / "sev").string() +
                    (sev_dev ? " present" : " absent") + ", QEMU sev-snp-guest " + (has_object("sev-snp-guest") ? "supported" : "not supported");
  if (im.platform == Platform::kAmdSevSnp) {
    if (snp_cpu && sev_dev && has_object("sev-snp-guest")) add(ok("sev_snp", snp));
    else add(failed("sev_snp", snp, "an SEV-SNP host (kvm_amd sev_snp=1) and QEMU 9.1 or later, or [cvm] platform = \"none\""));
  } else {
    add(ok("sev_snp", snp + " (not used)"));
  }

  // Firmware: every image a TEE boots needs its OVMF.
  auto images = list_images(c.image.path);
  if (!images.ok() || images->images.empty()) {
    add(warn("ovmf", "no images under " + c.image.path, "pull or copy an image (vmmctl image pull)"));
  } else {
    std::string missing;
    for (const auto& img : images->images)
      if (!img.bios || !fs::exists(*img.bios)) missing += (missing.empty() ? "" : ", ") + img.name;
    bool tee = tdx_on || im.platform == Platform::kAmdSevSnp;
    if (missing.empty()) add(ok("ovmf", "every image (" + std::to_string(images->images.size()) + ") has its firmware"));
    else if (tee) add(failed("ovmf", "images without firmware: " + missing, "use images that ship OVMF (bios in metadata.json)"));
    else add(ok("ovmf", "images without firmware: " + missing + " (they boot the kernel directly; no TEE here)"));
  }

  // IOMMU and GPUs: only what [cvm.gpu] asks for must be there.
  size_t groups = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(im.opt.sysfs_root / "kernel/iommu_groups", ec); !ec && it != fs::directory_iterator(); it.increment(ec)) ++groups;
  bool gpus_on = c.cvm.gpu.enabled;
  if (groups) add(ok("iommu", std::to_string(groups) + " IOMMU groups"));
  else if (gpus_on) add(failed("iommu", "no IOMMU groups", "enable VT-d/AMD-Vi in the BIOS and boot with intel_iommu=on iommu=pt"));
  else add(ok("iommu", "no IOMMU groups (GPU passthrough is off)"));
  if (!gpus_on) {
    add(ok("gpus", "GPU passthrough is off ([cvm.gpu] enabled = false)"));
  } else {
    auto offered = offered_gpus();
    std::string unbound;
    for (const auto& g : offered)
      if (g.driver != "vfio-pci") unbound += (unbound.empty() ? "" : ", ") + g.slot + " (" + (g.driver.empty() ? "no driver" : g.driver) + ")";
    if (offered.empty()) add(failed("gpus", "no GPU matches [cvm.gpu] listing", "check the listing and include/exclude slots against lspci -nn"));
    else if (!unbound.empty()) add(failed("gpus", "not bound to vfio-pci: " + unbound, "bind them to vfio-pci (driverctl set-override <slot> vfio-pci)"));
    else add(ok("gpus", std::to_string(offered.size()) + " GPU(s) offered, all bound to vfio-pci"));
  }

  // Huge pages (only --hugepages VMs need them).
  auto hp = im.opt.sysfs_root / "kernel/mm/hugepages/hugepages-2048kB";
  std::string total = internal::read_attribute(hp / "nr_hugepages"), free_pages = internal::read_attribute(hp / "free_hugepages");
  if (total.empty() || total == "0") add(ok("hugepages", "none reserved (only VMs deployed with --hugepages need them)"));
  else add(ok("hugepages", free_pages + " of " + total + " 2 MiB pages free"));

  // CIDs and ports: what is left to hand out.
  ManagerStats st = stats();
  uint32_t free_cids = st.cids_total > st.cids_used ? st.cids_total - st.cids_used : 0;
  std::string cids = std::to_string(free_cids) + " of " + std::to_string(st.cids_total) + " CIDs free (from " + std::to_string(c.cvm.cid_start) + ")" +
                     (im.opt.cid_registry.empty() ? "" : ", host-wide registry " + im.opt.cid_registry.string());
  if (free_cids == 0) add(failed("cids", cids, "raise [cvm] cid_pool_size or remove VMs"));
  else if (free_cids * 10 < st.cids_total) add(warn("cids", cids, "raise [cvm] cid_pool_size before it runs out"));
  else add(ok("cids", cids));
  if (!c.cvm.port_mapping.enabled) {
    add(ok("ports", "port mapping is off"));
  } else {
    std::set<std::pair<std::string, uint32_t>> ours;
    {
      std::lock_guard lock(im.mu);
      for (const auto& [id, vm] : im.vms)
        for (const auto& p : vm->manifest.port_map) ours.insert({p.protocol, p.host_port});
    }
    ours.insert({"tcp", c.port});  // the daemon's own API port
    std::vector<std::string> taken;
    for (const auto& [proto, port] : bound_ports(im.opt.proc_root))
      for (const auto& range : c.cvm.port_mapping.range)
        if (range.protocol == proto && port >= range.from && port <= range.to && !ours.count({proto, port})) {
          taken.push_back(proto + ":" + std::to_string(port));
          break;
        }
    if (taken.empty()) add(ok("ports", "no other program holds a port of the mapping range"));
    else {
      std::string list;
      for (size_t i = 0; i < taken.size() && i < 5; ++i) list += (i ? ", " : "") + taken[i];
      if (taken.size() > 5) list += " and " + std::to_string(taken.size() - 5) + " more";
      add(warn("ports", std::to_string(taken.size()) + " port(s) of the mapping range held by other programs: " + list,
               "mappings to them fail at start; narrow [cvm.port_mapping] range"));
    }
  }

  // The state folder.
  ManagerHealth h = health();
  if (h.state_ok) add(ok("state_folder", c.run_path + " writable, " + std::to_string(h.state_free_bytes >> 20) + " MiB free"));
  else add(failed("state_folder", h.state_error, "free space or fix the permissions of " + c.run_path));

  // Services guests need at boot.
  std::vector<std::string> kms = c.cvm.kms_urls;
  if (!c.kms_url.empty() && std::find(kms.begin(), kms.end(), c.kms_url) == kms.end()) kms.push_back(c.kms_url);
  add(check_urls("kms", kms, "kms_url / [cvm] kms_urls", stop));
  add(check_urls("gateway", c.cvm.gateway_urls, "[cvm] gateway_urls", stop));
  return r;
}

}  // namespace dstackvmm

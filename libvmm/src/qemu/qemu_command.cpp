// SPDX-License-Identifier: Apache-2.0
// The QEMU argv for a VM, in upstream's exact order (the order is measured into RTMRs).
#include <dstackvmm/qemu_command.hpp>

#include <cstdio>

#include "base/crypto.hpp"

namespace dstackvmm {

namespace {

Error invalid(std::string m) { return make_error(ErrorCode::kInvalidArgument, std::move(m)); }

std::string hex_u64(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

void smbios(std::vector<std::string>& a, const ProductConfig& p) {
  using Field = std::pair<const char*, const std::optional<std::string>*>;
  const std::vector<std::vector<Field>> types = {
      {{"vendor", &p.bios_vendor}, {"version", &p.bios_version}, {"date", &p.bios_date}, {"release", &p.bios_release}},
      {{"manufacturer", &p.sys_vendor}, {"product", &p.product_name}, {"version", &p.product_version},
       {"serial", &p.product_serial}, {"uuid", &p.product_uuid}, {"family", &p.product_family}, {"sku", &p.product_sku}},
      {{"manufacturer", &p.board_vendor}, {"product", &p.board_name}, {"version", &p.board_version},
       {"serial", &p.board_serial}, {"asset", &p.board_asset_tag}},
      {{"manufacturer", &p.chassis_vendor}, {"version", &p.chassis_version}, {"serial", &p.chassis_serial},
       {"asset", &p.chassis_asset_tag}},
  };
  for (size_t t = 0; t < types.size(); ++t) {
    std::string spec;
    for (const auto& [key, value] : types[t])
      if (*value) spec += std::string(",") + key + "=" + **value;
    if (!spec.empty()) {
      a.push_back("-smbios");
      a.push_back("type=" + std::to_string(t) + spec);
    }
  }
}

}  // namespace

std::vector<NetworkSpec> resolve_networks(const NetworkingConfig& node,
                                          const std::vector<NetworkSpec>& requested) {
  NetworkSpec base{std::string(to_string(node.mode)), node.bridge, node.mac_prefix, node.net, node.dhcp_start, node.restrict, node.netdev};
  if (requested.empty()) return {base};
  std::vector<NetworkSpec> out;
  for (const auto& r : requested) {
    NetworkSpec n = base;
    n.mode = r.mode.empty() ? base.mode : r.mode;
    if (!r.bridge.empty()) n.bridge = r.bridge;
    if (!r.mac_prefix.empty()) n.mac_prefix = r.mac_prefix;
    if (!r.net.empty()) n.net = r.net;
    if (!r.dhcp_start.empty()) n.dhcp_start = r.dhcp_start;
    if (!r.netdev.empty()) n.netdev = r.netdev;
    n.restrict = r.restrict || base.restrict;
    out.push_back(n);
  }
  return out;
}

std::string mac_address(std::string_view vm_id, std::string_view mac_prefix, size_t index) {
  std::string input(vm_id);
  if (index > 0) input += ":" + std::to_string(index);
  std::string h = internal::sha256(input);
  unsigned char bytes[6];
  size_t p = 0;
  size_t start = 0;
  std::string prefix(mac_prefix);
  while (p < 3 && start <= prefix.size() && !prefix.empty()) {
    size_t end = prefix.find(':', start);
    std::string part = prefix.substr(start, end - start);
    unsigned v = 0;
    if (part.size() >= 1 && part.size() <= 2 && std::sscanf(part.c_str(), "%x", &v) == 1 && v < 256)
      bytes[p++] = static_cast<unsigned char>(v);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  for (size_t i = p; i < 6; ++i) bytes[i] = static_cast<unsigned char>(h[i - p]);
  bytes[0] = static_cast<unsigned char>((bytes[0] & 0xfe) | 0x02);
  char out[18];
  std::snprintf(out, sizeof out, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return out;
}

namespace {

// One build of an argv, as its parts share it.
struct ArgvBuild {
  const Config& config;
  const QemuInputs& in;
  const std::string wd;
  const bool snp;
  std::vector<std::string> a;

  // SEV-SNP guests need modern virtio behind the IOMMU.
  std::string virtio(std::string dev) const { return snp ? dev + ",disable-legacy=on,iommu_platform=true" : dev; }

  // The image's rootfs, the VM's disk, and its verity volumes.
  Status add_disks() {
    const Image& img = in.image;
    const VmManifest& m = in.manifest;
    if (img.rootfs) {
      std::string ext = img.rootfs->extension().string();
      if (ext == ".verity") {
        a.insert(a.end(), {"-drive", "file=" + img.rootfs->string() + ",if=none,id=hd0,format=raw,readonly=on",
                           "-device", virtio("virtio-blk-pci,drive=hd0")});
      } else if (ext == ".iso") {
        auto v = parse_image_version(img.version);
        if (v && *v >= std::array<uint16_t, 3>{0, 5, 0})
          return invalid("Unsupported rootfs type: iso. Image versions >= 0.5.0 must use verity rootfs");
        a.insert(a.end(), {"-cdrom", img.rootfs->string()});
      } else {
        return invalid("Unsupported rootfs type: " + (ext.empty() ? ext : ext.substr(1)));
      }
    }
    a.insert(a.end(), {"-drive", "file=" + wd + "/hda.img,if=none,id=hd1", "-device",
                       virtio("virtio-blk-pci,drive=hd1")});
    for (size_t i = 0; i < m.volumes.size(); ++i)
      a.insert(a.end(), {"-drive", "file=" + m.volumes[i] + ",if=none,id=vol" + std::to_string(i) + ",format=raw,readonly=on",
                         "-device", virtio("virtio-blk-pci,drive=vol" + std::to_string(i))});
    return {};
  }

  // One -netdev and NIC per network; port mappings and the user-net guest channel ride on the
  // first user-mode NIC.
  Status add_nics() {
    const VmManifest& m = in.manifest;
    bool user_nic_seen = false;
    for (size_t i = 0; i < in.networks.size(); ++i) {
      const NetworkSpec& n = in.networks[i];
      std::string id = "net" + std::to_string(i);
      std::string backend;
      if (n.mode == "user") {
        backend = "user,id=" + id + ",net=" + n.net + ",dhcpstart=" + n.dhcp_start +
                  ",restrict=" + (n.restrict ? "yes" : "no");
        if (!user_nic_seen) {  // port mappings and our guest channel ride on the first user NIC only
          for (const auto& p : m.port_map)
            backend += ",hostfwd=" + p.protocol + ":" + p.address + ":" + std::to_string(p.host_port) +
                       "-:" + std::to_string(p.vm_port);
          if (in.channel.kind == GuestChannel::Kind::kUserNet) {
            backend += ",hostfwd=tcp:127.0.0.1:" + std::to_string(in.channel.agent_port) + "-:8000";
            // A chardev, not `cmd:`: QEMU keeps one connection to the daemon's socket and no
            // process is started per guest connection. Commas are escaped twice: once for the
            // chardev options, once more for the -netdev list that holds them.
            std::string sock;
            for (char c : in.channel.host_api_socket.string()) sock += c == ',' ? std::string(",,,,") : std::string(1, c);
            backend += ",guestfwd=tcp:" + std::string(GuestChannel::kGuestHostApiIp) + ":" +
                       std::to_string(config.host_api.port) + "-unix:" + sock + ",,reconnect=1";
          }
        }
        user_nic_seen = true;
      } else if (n.mode == "bridge") {
        if (n.bridge.empty()) return invalid("bridge networking requested but no bridge is configured");
        backend = "bridge,id=" + id + ",br=" + n.bridge;
      } else if (n.mode == "custom") {
        if (n.netdev.find("id=" + id) == std::string::npos)
          return invalid("custom networking netdev must contain id=" + id + " for interface index " + std::to_string(i));
        backend = n.netdev;
      } else {
        return invalid("unsupported networking mode '" + n.mode + "'");
      }
      a.insert(a.end(), {"-netdev", backend, "-device",
                         virtio("virtio-net-pci,netdev=" + id + ",mac=" + mac_address(m.id, n.mac_prefix, i))});
    }
    if (in.channel.kind == GuestChannel::Kind::kUserNet && !user_nic_seen)
      return invalid("the user-net guest channel needs a user-mode NIC; this VM has none");
    return {};
  }

  // shared/: what the guest reads at boot (9p, a vvfat drive, or the vhd image).
  void add_host_share() {
    const CvmConfig& cvm = config.cvm;
    const Image& img = in.image;
    if (cvm.host_share_mode == "9p") {
      a.insert(a.end(), {"-virtfs", "local,path=" + wd + "/shared,mount_tag=host-shared,readonly=" +
                                        (img.metadata.shared_ro ? "on" : "off") + ",security_model=mapped,id=virtfs0"});
    } else if (cvm.host_share_mode == "vvfat") {
      a.insert(a.end(), {"-blockdev", "driver=vvfat,node-name=vvfat0,read-only=on,dir=" + wd + "/shared,label=DSTACKSHR",
                         "-device", virtio("virtio-blk-pci,drive=vvfat0")});
    } else {
      a.insert(a.end(), {"-drive", "file=" + wd + "/shared.img,if=none,id=hd2,format=raw,readonly=on", "-device",
                         virtio("virtio-blk-pci,drive=hd2")});
    }
  }

  // Hugepages: one NUMA node per host node, each with its memory and a PCIe expander bridge.
  void add_numa(uint64_t memory) {
    const VmManifest& m = in.manifest;
    if (m.hugepages) {
      const uint32_t nodes = static_cast<uint32_t>(in.numa.nodes.size());
      const uint32_t vpn = effective_vcpus(m, in.numa) / nodes;
      const uint64_t mpn = memory / 1024 / nodes;
      uint32_t bus_nr = 5;
      for (uint32_t k = 0; k < nodes; ++k) {
        const auto& node = in.numa.nodes[k];
        std::string ks = std::to_string(k), host = std::to_string(node.host_node);
        a.insert(a.end(), {"-numa", "node,nodeid=" + ks + ",cpus=" + std::to_string(k * vpn) + "-" + std::to_string((k + 1) * vpn - 1) +
                                        ",memdev=mem" + ks,
                           "-object", "memory-backend-file,id=mem" + ks + ",size=" + std::to_string(mpn) +
                                          "G,mem-path=/dev/hugepages,share=on,prealloc=yes,host-nodes=" + host + ",policy=bind",
                           "-device", "pxb-pcie,id=pcie.node" + host + ",bus=pcie.0,addr=" + std::to_string(0xa + k) +
                                          ",numa_node=" + ks + ",bus_nr=" + std::to_string(bus_nr)});
        bus_nr += node.gpus + 1;
      }
    }
  }

  // The machine, with the TDX or SEV-SNP confidential-guest object when the VM has a TEE.
  void add_machine(bool tdx, uint64_t memory) {
    const CvmConfig& cvm = config.cvm;
    if (tdx) {
      a.insert(a.end(), {"-machine", "q35,kernel-irqchip=split,confidential-guest-support=tdx,hpet=off"});
      std::string obj = R"({"qom-type":"tdx-guest","id":"tdx")";
      if (in.mrconfigid) obj += R"(,"mrconfigid":")" + *in.mrconfigid + "\"";
      if (cvm.qgs_port)
        obj += R"(,"quote-generation-socket":{"type":"vsock","cid":"2","port":")" + std::to_string(*cvm.qgs_port) + "\"}";
      a.insert(a.end(), {"-object", obj + "}"});
    } else if (snp) {
      a.insert(a.end(), {"-object", "memory-backend-memfd,id=ram1,size=" + std::to_string(memory) + "M,share=true,prealloc=false",
                         "-object", "sev-snp-guest,id=sev0,policy=0x30000,sev-device=/dev/sev,kernel-hashes=on,host-data=" +
                                        in.sev_snp->host_data + ",cbitpos=" + std::to_string(in.sev_snp->cbitpos) +
                                        ",reduced-phys-bits=" + std::to_string(in.sev_snp->reduced_phys_bits),
                         "-machine", "q35,kernel-irqchip=split,confidential-guest-support=sev0,memory-backend=ram1,hpet=off"});
    } else {
      a.insert(a.end(), {"-machine", "q35,kernel-irqchip=split,hpet=off"});
    }
  }

  // Passed-through GPUs (and NVSwitches), each behind a root port of its own.
  void add_gpus() {
    const VmManifest& m = in.manifest;
    const CvmConfig& cvm = config.cvm;
    if (m.gpus && !m.gpus->gpus.empty() && cvm.gpu.enabled) {
      a.insert(a.end(), {"-object", "iommufd,id=iommufd0"});
      size_t n = 1;
      for (const auto* list : {&m.gpus->gpus, &m.gpus->bridges})
        for (const auto& slot : *list) {
          std::string port = "pci." + std::to_string(n), bus = "pcie.0";
          // With hugepages a GPU hangs off its NUMA node's expander bridge; NVSwitches stay on pcie.0.
          if (m.hugepages && list == &m.gpus->gpus) {
            auto it = in.numa.gpu_host_node.find(slot);
            bus = "pcie.node" + std::to_string(it == in.numa.gpu_host_node.end() ? 0 : it->second);
          }
          a.insert(a.end(), {"-device", "pcie-root-port,id=" + port + ",bus=" + bus + ",chassis=" + std::to_string(n),
                             "-device", "vfio-pci,host=" + slot + ",bus=" + port + ",iommufd=iommufd0"});
          ++n;
        }
    }
  }
};

}  // namespace

Result<std::vector<std::string>> build_qemu_command(const Config& config, const QemuInputs& in) {
  const CvmConfig& cvm = config.cvm;
  const VmManifest& m = in.manifest;
  const Image& img = in.image;
  const std::string wd = in.workdir.string();
  const bool tee = !m.no_tee && in.platform != Platform::kNone;
  const bool snp = tee && in.platform == Platform::kAmdSevSnp;
  const bool tdx = tee && in.platform == Platform::kTdx;

  if (wd.find(',') != std::string::npos)
    return invalid("VM folder " + wd + " contains a comma, which QEMU options cannot carry");
  if (m.hugepages && in.numa.nodes.empty()) return invalid("hugepages need the VM's NUMA placement (resolve_numa)");
  if (m.pin_numa && in.numa.pin_cpus.empty()) return invalid("pin_numa needs the NUMA node's CPU list (resolve_numa)");
  const uint64_t memory = effective_memory_mb(m, in.numa);
  if (snp && !in.sev_snp) return invalid("SEV-SNP needs host-data and cbitpos (no sev_snp params)");

  ArgvBuild b{config, in, wd, snp, {}};
  std::vector<std::string>& a = b.a;
  if (!cvm.user.empty()) a.insert(a.end(), {"sudo", "-u", cvm.user});
  if (m.pin_numa) a.insert(a.end(), {"taskset", "-c", in.numa.pin_cpus});
  a.push_back(cvm.qemu_path.empty() ? "qemu-system-x86_64" : cvm.qemu_path);
  a.insert(a.end(), {"-accel", std::string(to_string(in.accel))});
  // QEMU refuses -cpu host without KVM; "max" is TCG's closest equivalent.
  a.insert(a.end(), {"-cpu", snp ? "EPYC-v4" : in.accel == Accel::kTcg ? "max" : "host"});
  a.insert(a.end(), {"-nographic", "-nodefaults"});
  a.insert(a.end(), {"-chardev", "pty,id=com0,path=" + wd + "/serial.pty,logfile=" + wd +
                                     "/serial.log,logappend=on"});
  a.insert(a.end(), {"-serial", "chardev:com0"});
  if (cvm.qmp_socket) a.insert(a.end(), {"-qmp", "unix:" + wd + "/qmp.sock,server,wait=off"});
  const auto& bios = snp && img.bios_sev ? img.bios_sev : img.bios;
  if (bios) a.insert(a.end(), {"-bios", bios->string()});
  a.insert(a.end(), {"-kernel", img.kernel.string(), "-initrd", img.initrd.string()});
  if (cvm.qemu_hotplug_off)
    a.insert(a.end(), {"-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"});
  if (cvm.qemu_pci_hole64_size > 0)
    a.insert(a.end(), {"-global", "q35-pcihost.pci-hole64-size=" + hex_u64(cvm.qemu_pci_hole64_size)});
  if (auto s = b.add_disks(); !s.ok()) return s.error();
  if (auto s = b.add_nics(); !s.ok()) return s.error();
  smbios(a, cvm.product);
  if (m.swtpm)  // the launcher (vm_launcher.hpp) starts swtpm on this socket before QEMU
    a.insert(a.end(), {"-chardev", "socket,id=chrtpm,path=" + wd + "/swtpm/swtpm.sock", "-tpmdev",
                       "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0"});
  if (in.channel.kind == GuestChannel::Kind::kVsock)
    a.insert(a.end(), {"-device", b.virtio("vhost-vsock-pci,guest-cid=" + std::to_string(in.cid))});

  b.add_host_share();
  b.add_numa(memory);
  b.add_machine(tdx, memory);
  b.add_gpus();
  a.insert(a.end(), {"-smp", std::to_string(effective_vcpus(m, in.numa))});
  a.insert(a.end(), {"-m", std::to_string(memory) + "M"});
  if (img.metadata.cmdline) a.insert(a.end(), {"-append", *img.metadata.cmdline});
  return std::move(b.a);
}

}  // namespace dstackvmm

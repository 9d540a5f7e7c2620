// SPDX-License-Identifier: Apache-2.0
// vm_config, .sys-config.json and .tee-simulator.json (vm_config.hpp), key for key as upstream.
#include "tee/vm_config.hpp"

#include <nlohmann/json.hpp>

#include <dstackvmm/mr_config.hpp>

#include "base/crypto.hpp"
#include "base/text_util.hpp"
#include "tee/canonical_json.hpp"

namespace dstackvmm::internal {

namespace {

using ojson = nlohmann::ordered_json;

Error precondition(std::string m) { return make_error(ErrorCode::kFailedPrecondition, std::move(m)); }

// digest.txt as hex bytes re-encoded lowercase; "" when missing or not hex.
std::string os_image_hash(const std::string& digest) {
  if (starts_with(digest, "0x") || starts_with(digest, "0X")) return "";
  auto bytes = from_hex(digest);
  return bytes ? to_hex(*bytes) : "";
}

ojson measurement_document(const std::string& checksum_file, const std::string& measurement) {
  ojson d;
  d["checksum_file"] = base64(checksum_file);
  d["measurement"] = base64(measurement);
  return d;
}

// The AWS NitroTPM replay, checked against measurement.aws.cbor and written back in its
// struct order with lowercase hex.
Result<ojson> aws_replay(const MeasurementMaterial& m) {
  if (!m.aws_replay_json) return precondition("AWS NitroTPM simulation requires measurement.aws.replay.json");
  auto replay = parse_aws_pcr_replay(*m.aws_replay_json, "measurement.aws.replay.json");
  if (!replay.ok()) return precondition(replay.error().message);
  for (auto [label, value] : {std::pair{"pcr4", &replay->pcr4}, std::pair{"pcr7", &replay->pcr7}, std::pair{"pcr12", &replay->pcr12}})
    if (value->size() != 48)
      return precondition(std::string("AwsOsImageMeasurement: ") + label + " has invalid length " + std::to_string(value->size()) +
                          ", expected 48");
  auto boot = aws_boot_pcr_digest(*m.aws);
  if (!boot.ok()) return precondition(boot.error().message);
  if (sha256(replay->pcr4 + replay->pcr7 + replay->pcr12) != *boot)
    return precondition("measurement.aws.replay.json does not match measurement.aws.cbor");
  ojson events = ojson::array();
  for (const auto& e : replay->events) {
    ojson ev;
    ev["pcr"] = e.pcr;
    ev["event_type"] = e.event_type;
    ev["digest"] = to_hex(e.digest);
    events.push_back(ev);
  }
  ojson out;
  out["version"] = replay->version;
  out["events"] = events;
  out["pcr4"] = to_hex(replay->pcr4);
  out["pcr7"] = to_hex(replay->pcr7);
  out["pcr12"] = to_hex(replay->pcr12);
  return out;
}

}  // namespace

namespace {

// What the image must ship for the attestation this VM gets: refused at create, not at boot.
Status check_material(const std::string& tdx_variant, const MeasurementMaterial& mat, bool is_gcp, bool is_aws) {
  if (tdx_variant == "lite" && !mat.tdx)
    return precondition("tdx lite attestation requested but image is missing measurement.tdx.cbor/sha256sum.txt measurement material");
  if (is_gcp && !mat.gcp) return precondition("GCP TDX image is missing measurement.gcp.cbor measurement material");
  if (is_aws && !mat.aws) return precondition("AWS NitroTPM image is missing measurement.aws.cbor measurement material");
  if (is_gcp && !mat.gcp_event_log) return precondition("GCP TDX simulation requires measurement.gcp.eventlog.bin");
  return {};
}

// SEV-SNP: the MrConfig document the guest binds in HOST_DATA, and the launch measurement's inputs.
Status add_snp_measurement(ojson& v, const VmConfigInputs& in) {
  const MeasurementMaterial& mat = *in.material;
  if (!in.mr_config) return precondition("mr_config is required for amd sev-snp");
  if (auto doc = parse_mr_config(*in.mr_config); !doc.ok())
    return precondition("Invalid mr_config document: " + doc.error().message);
  v["mr_config"] = *in.mr_config;
  if (!mat.snp) return precondition("amd sev-snp image is missing measurement.snp.cbor/sha256sum.txt measurement material");
  ojson snp = measurement_document(*mat.sha256sum, *mat.snp);
  snp["vcpus"] = in.cpu_count;
  snp["vcpu_type"] = "EPYC-v4";
  snp["guest_features"] = 1;
  v["sev_snp_measurement"] = compact_json(snp);
  return {};
}

}  // namespace

Result<VmConfigResult> build_vm_config(const VmConfigInputs& in) {
  const CvmConfig& cvm = *in.cvm;
  const VmManifest& m = *in.manifest;
  const MeasurementMaterial& mat = *in.material;
  const bool is_tdx = in.platform == Platform::kTdx && !m.no_tee;
  const bool is_snp = in.platform == Platform::kAmdSevSnp && !m.no_tee;
  const bool is_gcp = m.simulated_tee && *m.simulated_tee == "dstack-gcp-tdx";
  const bool is_aws = m.simulated_tee && *m.simulated_tee == "dstack-aws-nitro-tpm";

  VmConfigResult out;
  out.tdx_attestation_variant = resolve_tdx_attestation_variant(cvm.tdx_attestation_variant, is_tdx, in.compose->tdx_measure_acpi_tables,
                                                                m.memory, mat.supports_tdx_lite());
  if (auto s = check_material(out.tdx_attestation_variant, mat, is_gcp, is_aws); !s.ok()) return s.error();
  ojson replay;
  if (is_aws) {
    auto r = aws_replay(mat);
    if (!r.ok()) return r.error();
    replay = *r;
  }

  const bool gpu = cvm.gpu.enabled && m.gpus;
  ojson v;
  v["os_image_hash"] = os_image_hash(mat.digest);
  v["cpu_count"] = in.cpu_count;
  v["memory_size"] = uint64_t{m.memory} * 1024 * 1024;
  if (cvm.qemu_single_pass_add_pages) v["qemu_single_pass_add_pages"] = *cvm.qemu_single_pass_add_pages;
  if (cvm.qemu_pic) v["pic"] = *cvm.qemu_pic;
  if (in.qemu_version) v["qemu_version"] = *in.qemu_version;
  v["pci_hole64_size"] = cvm.qemu_pci_hole64_size;
  v["hugepages"] = m.hugepages;
  v["num_gpus"] = gpu ? m.gpus->gpus.size() : 0;
  v["num_nvswitches"] = gpu ? m.gpus->bridges.size() : 0;
  if (in.num_nics != 1) v["num_nics"] = in.num_nics;
  if (!m.volumes.empty()) v["num_verity_volumes"] = m.volumes.size();
  if (m.swtpm) v["swtpm"] = true;
  v["hotplug_off"] = cvm.qemu_hotplug_off;
  v["image"] = m.image;
  v["host_share_mode"] = cvm.host_share_mode;
  if (in.image->metadata.ovmf_variant) v["ovmf_variant"] = *in.image->metadata.ovmf_variant;
  if (out.tdx_attestation_variant == "lite") v["tdx_attestation_variant"] = "lite";
  if (is_tdx && mat.tdx) v["tdx_measurement"] = measurement_document(*mat.sha256sum, *mat.tdx);
  if (is_gcp) v["gcp_measurement"] = measurement_document(*mat.sha256sum, *mat.gcp);
  if (is_aws) v["aws_measurement"] = measurement_document(*mat.sha256sum, *mat.aws);
  v["spec_version"] = 1;  // after the struct's fields, as upstream appends it
  if (is_aws) v["aws_pcr_replay"] = replay;
  if (is_gcp) v["gcp_tpm_replay"] = ojson{{"event_log", base64(*mat.gcp_event_log)}};
  if (is_snp)
    if (auto s = add_snp_measurement(v, in); !s.ok()) return s.error();
  out.vm_config = compact_json(v);
  return out;
}

std::string build_sys_config(const CvmConfig& cvm, const VmManifest& m, const std::string& host_api_url,
                             const std::string& vm_config, const std::optional<std::string>& mr_config) {
  ojson sys;
  sys["kms_urls"] = m.kms_urls.empty() ? cvm.kms_urls : m.kms_urls;
  sys["gateway_urls"] = m.gateway_urls.empty() ? cvm.gateway_urls : m.gateway_urls;
  sys["pccs_url"] = cvm.pccs_url;
  sys["collateral_urls"] = ojson{{"pccs", cvm.pccs_url}};
  sys["nvidia_attestation_proxy_url"] = cvm.nvidia_attestation_proxy_url ? ojson(*cvm.nvidia_attestation_proxy_url) : ojson();
  sys["docker_registry"] = cvm.docker_registry;
  sys["host_api_url"] = host_api_url;
  sys["vm_config"] = vm_config;
  if (mr_config) sys["mr_config"] = *mr_config;
  return compact_json(sys);
}

std::string build_tee_simulator_config(const TeeSimulatorConfig& node, const std::string& platform,
                                       const std::optional<std::string>& mr_config, const std::string& vm_config) {
  ojson sim;
  sim["platform"] = platform;
  if (node.mock_attestation_seed) sim["mock_attestation_seed"] = *node.mock_attestation_seed;
  if (node.collateral_base_url) sim["collateral_base_url"] = *node.collateral_base_url;
  if (mr_config) sim["mr_config"] = *mr_config;
  sim["vm_config"] = vm_config;
  ojson parsed = ojson::parse(vm_config, nullptr, false);  // our own text: always an object
  for (const char* key : {"aws_pcr_replay", "gcp_tpm_replay"})
    if (parsed.is_object() && parsed.contains(key)) sim[key] = parsed[key];
  return compact_json(sim);
}

}  // namespace dstackvmm::internal

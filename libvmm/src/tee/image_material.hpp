// SPDX-License-Identifier: Apache-2.0
// An image's measurement material: the files the image build writes beside the kernel so that
// a verifier can recompute what a TEE measured (sha256sum.txt and one CBOR document per TEE).
// The VMM passes them to the guest in vm_config byte for byte; it decodes only what the AWS
// simulation's consistency check needs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm::internal {

// measurement.aws.replay.json: the PCR replay of an AWS NitroTPM boot (byte fields raw).
struct AwsPcrReplay {
  struct Event {
    uint16_t pcr = 0;
    std::string event_type;
    std::string digest;
  };
  uint32_t version = 0;
  std::vector<Event> events;
  std::string pcr4, pcr7, pcr12;
};

struct MeasurementMaterial {
  std::string digest;  // digest.txt, trimmed ("" when missing)
  std::optional<std::string> sha256sum;  // sha256sum.txt, raw
  // measurement.<tee>.cbor, raw; each set only when sha256sum.txt is there too (a CBOR file
  // without the checksum file is ignored, as upstream ignores it).
  std::optional<std::string> tdx, snp, gcp, aws;
  std::optional<std::string> aws_replay_json;  // measurement.aws.replay.json, raw (parsed when used)
  std::optional<std::string> gcp_event_log;    // measurement.gcp.eventlog.bin, raw

  // digest.txt non-blank, sha256sum.txt and measurement.tdx.cbor present: auto may pick lite.
  bool supports_tdx_lite() const { return !digest.empty() && tdx.has_value(); }
};

// Reads what is there (each file at most 16 MiB: kInvalidArgument naming a larger one; kIo
// "failed to read <path>" for one that exists but cannot be read).
Result<MeasurementMaterial> load_measurement_material(const std::filesystem::path& image_dir);

// measurement.aws.replay.json, every key required: kInvalidArgument "failed to parse <what>: ...".
Result<AwsPcrReplay> parse_aws_pcr_replay(const std::string& text, const std::string& what);

// boot_pcr_digest (32 bytes) of measurement.aws.cbor, with upstream's messages
// ("AwsOsImageMeasurement: failed to decode CBOR: ...", "... has invalid length <n>, expected 32").
Result<std::string> aws_boot_pcr_digest(const std::string& cbor);

}  // namespace dstackvmm::internal

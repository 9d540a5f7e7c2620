// SPDX-License-Identifier: Apache-2.0
// What vmmctl parses: the size, port and env-file syntaxes, provision files (TOML and JSON),
// a daemon's Status answer as apply's plan reads it, and a VmInfo as the client decodes it (a
// daemon is a peer too).
#include <dstackvmm/client/deploy_spec.hpp>
#include <dstackvmm/client/env_crypto.hpp>
#include <dstackvmm/client/provision.hpp>

#include "base/json_limits.hpp"
#include "wire/json_codec.hpp"
#include "fuzz_util.hpp"

using namespace dstackvmm;
using namespace dstackvmm::client;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)parse_memory_mb(text);
  (void)parse_disk_gb(text);
  if (auto p = parse_port_spec(text); p.ok()) (void)format_port_spec(*p);
  (void)parse_env_file(text);
  (void)load_provision_file(fuzz::write_scratch("vms.toml", data, size));
  (void)load_provision_file(fuzz::write_scratch("vms.json", data, size));
  DesiredVm a{.name = "web", .image = "i", .compose_file = "{}", .ports = {{"tcp", "127.0.0.1", 80, 80}}};
  DesiredVm b{.name = "", .image = "i", .gpus = {"all"}, .stopped = true};
  auto plan = make_plan({a, b}, text);  // the text as a daemon's Status answer
  if (plan.ok()) {
    (void)plan_to_text(*plan);
    (void)plan_to_json(*plan);
  }
  // A VmInfo as VmmClient::vms() decodes it.
  if (auto vm = internal::parse_json(text); vm.is_object()) {
    try {
      (void)wire::decode_vm_info(vm);
    } catch (const wire::DecodeError&) {
    }
  }
  return 0;
}

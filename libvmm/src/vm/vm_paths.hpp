// SPDX-License-Identifier: Apache-2.0
// Every path of a VM's workdir, from one place. Callers validate the id first.
#pragma once

#include <filesystem>
#include <string>

namespace dstackvmm::internal {

struct VmPaths {
  std::filesystem::path dir;  // <run_path>/<id>

  VmPaths(const std::filesystem::path& run_path, const std::string& id) : dir(run_path / id) {}

  std::filesystem::path manifest() const { return dir / "vm-manifest.json"; }
  std::filesystem::path state() const { return dir / "vm-state.json"; }
  std::filesystem::path removing_marker() const { return dir / ".removing"; }
  // Written first at create, removed once the manifest is in place: the only sign by which
  // start-up recognises a half-created folder as one the daemon made and may delete.
  std::filesystem::path creating_marker() const { return dir / ".creating"; }
  std::filesystem::path hda() const { return dir / "hda.img"; }
  std::filesystem::path serial_log() const { return dir / "serial.log"; }
  std::filesystem::path serial_pty() const { return dir / "serial.pty"; }
  std::filesystem::path stdout_log() const { return dir / "stdout.log"; }
  std::filesystem::path stderr_log() const { return dir / "stderr.log"; }
  std::filesystem::path pid_file() const { return dir / "qemu.pid"; }
  std::filesystem::path qmp_socket() const { return dir / "qmp.sock"; }
  std::filesystem::path host_api_socket() const { return dir / "hostapi.sock"; }
  std::filesystem::path runtime() const { return dir / "vm-runtime.json"; }
  // Ours: the records of the last boots (launch_record.hpp). Earlier daemons kept them as
  // launch.json, the name upstream gives its swtpm launch spec: moved here when a VM loads.
  std::filesystem::path launch_record() const { return dir / "launch-history.json"; }
  std::filesystem::path old_launch_record() const { return dir / "launch.json"; }
  // Upstream's: the swtpm launcher's spec (vm_launcher.hpp), written at each start of a TPM VM.
  std::filesystem::path launch_spec() const { return dir / "launch.json"; }
  std::filesystem::path swtpm_dir() const { return dir / "swtpm"; }
  std::filesystem::path swtpm_socket() const { return swtpm_dir() / "swtpm.sock"; }
  std::filesystem::path tee_simulator() const { return shared() / ".tee-simulator.json"; }
  std::filesystem::path shared() const { return dir / "shared"; }
  std::filesystem::path compose() const { return shared() / "app-compose.json"; }
  std::filesystem::path encrypted_env() const { return shared() / ".encrypted-env"; }
  std::filesystem::path user_config() const { return shared() / ".user-config"; }
  std::filesystem::path instance_info() const { return shared() / ".instance_info"; }
  std::filesystem::path sys_config() const { return shared() / ".sys-config.json"; }
};

}  // namespace dstackvmm::internal

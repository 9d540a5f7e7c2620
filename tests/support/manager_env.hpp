// SPDX-License-Identifier: Apache-2.0
// A VmManager on a temp run_path with a tiny image and a recording launcher: for tests of the
// layers above the engine (RPC, HTTP) that do not need a real guest.
#pragma once

#include <fstream>
#include <functional>
#include <memory>

#include <catch2/catch.hpp>

#include <dstackvmm/vm_manager.hpp>

#include "fake_launcher.hpp"
#include "temp_dir.hpp"

namespace dstackvmm::testing {

inline void write_file(const std::filesystem::path& p, const std::string& s) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

struct ManagerEnv {
  TempDir dir{"env"};
  std::shared_ptr<FakeLauncher> launcher = std::make_shared<FakeLauncher>();
  Config config;
  std::chrono::milliseconds agent_timeout{5000};
  uint64_t now_s = 1000;  // the managers' clock: tests move it; auto-restart ticks are theirs to call
  std::unique_ptr<VmManager> vmm;

  explicit ManagerEnv(std::function<void(Config&)> tweak = {}) {
    write_file(dir.path() / "images/img/metadata.json",
               R"({"kernel":"k","initrd":"i","shared_ro":true,"version":"0.5.4","is_dev":true})");
    write_file(dir.path() / "images/img/k", "");
    write_file(dir.path() / "images/img/i", "");
    config.run_path = (dir.path() / "vms").string();
    config.image.path = (dir.path() / "images").string();
    config.cvm.qemu_path = "/bin/true";
    config.cvm.platform = Platform::kNone;
    config.cvm.accel = Accel::kTcg;
    config.cvm.guest_channel = GuestChannelMode::kUserNet;
    config.cvm.port_mapping.enabled = true;
    config.cvm.port_mapping.range = {{"tcp", 1024, 65535}};
    if (tweak) tweak(config);
    reopen();
  }

  // A new manager on the same run_path, as after a daemon restart.
  void reopen() {
    vmm.reset();
    auto m = VmManager::open(options());
    REQUIRE(m.ok());
    vmm = std::move(*m);
  }

  ManagerOptions options() {
    ManagerOptions o;
    o.config = config;
    o.launcher = launcher;
    o.sysfs_root = dir.path() / "sys";
    o.agent_timeout = agent_timeout;
    o.now_ms = [this] { return now_s * 1000; };
    o.auto_restart_thread = false;
    o.log_rotation_thread = false;  // rotate_logs_tick() is called by the tests that need it
    return o;
  }
};

}  // namespace dstackvmm::testing

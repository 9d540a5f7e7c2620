// SPDX-License-Identifier: Apache-2.0
// The swtpm + QEMU launcher (vm_launcher.hpp): every wait is on descriptors (pidfds, a
// signalfd) with a deadline, never a sleep; both children die with it, even by SIGKILL.
#include <dstackvmm/vm_launcher.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "base/fs_util.hpp"
#include "base/json_limits.hpp"
#include "process/spawn.hpp"

namespace dstackvmm {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string launch_spec_json(const LaunchSpec& s) {
  auto program = [](const std::vector<std::string>& argv) {
    nlohmann::ordered_json p;
    p["command"] = argv.empty() ? "" : argv[0];
    p["args"] = argv.empty() ? std::vector<std::string>{} : std::vector<std::string>(argv.begin() + 1, argv.end());
    return p;
  };
  nlohmann::ordered_json j;
  j["qemu"] = program(s.qemu);
  j["swtpm"] = program(s.swtpm);
  j["swtpm_socket"] = s.swtpm_socket.string();
  j["startup_timeout_ms"] = s.startup_timeout_ms;
  j["shutdown_timeout_ms"] = s.shutdown_timeout_ms;
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

Result<LaunchSpec> parse_launch_spec(std::string_view text) {
  auto bad = [](std::string why) { return make_error(ErrorCode::kInvalidArgument, "failed to parse launch spec: " + why); };
  std::string why;
  json j = internal::parse_json(text, {1 << 20, 8}, &why);
  if (j.is_discarded()) return bad(why);
  if (!j.is_object()) return bad("expected an object");
  LaunchSpec s;
  for (auto [key, out] : {std::pair{"qemu", &s.qemu}, std::pair{"swtpm", &s.swtpm}}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_object()) return bad(std::string("missing field `") + key + "`");
    auto cmd = it->find("command");
    if (cmd == it->end() || !cmd->is_string()) return bad(std::string("missing field `") + key + ".command`");
    out->push_back(cmd->get<std::string>());
    if (auto args = it->find("args"); args != it->end()) {
      if (!args->is_array()) return bad(std::string("`") + key + ".args` must be a list of strings");
      for (const auto& a : *args) {
        if (!a.is_string()) return bad(std::string("`") + key + ".args` must be a list of strings");
        out->push_back(a.get<std::string>());
      }
    }
  }
  auto sock = j.find("swtpm_socket");
  if (sock == j.end() || !sock->is_string()) return bad("missing field `swtpm_socket`");
  s.swtpm_socket = sock->get<std::string>();
  for (auto [key, out] : {std::pair{"startup_timeout_ms", &s.startup_timeout_ms}, std::pair{"shutdown_timeout_ms", &s.shutdown_timeout_ms}}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_number_unsigned()) return bad(std::string("`") + key + "` must be a number of milliseconds");
    *out = it->get<uint64_t>();
  }
  return s;
}

namespace {

struct Child {
  const char* name;
  internal::SpawnedProcess p;
  std::optional<int> status;  // once reaped
};

// Reaps the child when its pidfd says it exited; true then.
bool reap_if_done(Child& c) {
  if (c.status) return true;
  pollfd fd{c.p.pidfd, POLLIN, 0};
  if (::poll(&fd, 1, 0) <= 0) return false;
  c.status = internal::wait_child(c.p, std::chrono::milliseconds(0));
  return c.status.has_value();
}

// SIGTERM to the child's process group, up to `timeout` for it to go, then SIGKILL.
void stop(Child& c, std::chrono::milliseconds timeout) {
  if (c.status) return;
  ::kill(-c.p.pid, SIGTERM);
  c.status = internal::wait_child(c.p, timeout);
  if (!c.status) {
    ::kill(-c.p.pid, SIGKILL);
    c.status = internal::wait_child(c.p, std::chrono::seconds(30));
  }
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exit status: " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal: " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "wait status " + std::to_string(status);
}

struct Launcher {
  LaunchSpec spec;
  int signals = -1;  // signalfd of SIGTERM and SIGINT
  std::optional<Child> swtpm, qemu;

  Result<Child> start(const char* name, const std::vector<std::string>& argv) {
    internal::SpawnSpec s;
    s.argv = argv;
    s.stdout_fd = 1;  // both log where the launcher logs (the VM's stdout.log and stderr.log)
    s.stderr_fd = 2;
    s.new_session = true;  // a process group of its own, signalled as a whole
    s.die_with_parent = true;
    auto p = internal::spawn_process(s);
    if (!p.ok()) return make_error(ErrorCode::kInvalidArgument, "failed to start " + argv[0] + ": " + p.error().message);
    std::cout << "vm-launcher: started " << name << " (pid " << p->pid << ")" << std::endl;
    return Child{name, *p, std::nullopt};
  }

  // Waits on the signalfd and the children's pidfds, at most `timeout` (-1: no limit).
  // Returns true when a signal came.
  bool wait(int timeout_ms) {
    std::vector<pollfd> fds{{signals, POLLIN, 0}};
    for (auto* c : {&swtpm, &qemu})
      if (*c && !(*c)->status) fds.push_back({(*c)->p.pidfd, POLLIN, 0});
    int rc;
    do rc = ::poll(fds.data(), fds.size(), timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo info{};
      (void)!::read(signals, &info, sizeof info);
      std::cout << "vm-launcher: received " << strsignal(static_cast<int>(info.ssi_signo)) << "; stopping QEMU and swtpm" << std::endl;
      return true;
    }
    return false;
  }

  void stop_all() {
    auto timeout = std::chrono::milliseconds(spec.shutdown_timeout_ms);
    if (qemu) stop(*qemu, timeout);
    if (swtpm) stop(*swtpm, timeout);
  }

  Status run() {
    std::error_code ec;
    std::filesystem::remove(spec.swtpm_socket, ec);
    if (ec) return make_error(ErrorCode::kIo, "failed to remove stale swtpm socket: " + ec.message());
    auto tpm = start("swtpm", spec.swtpm);
    if (!tpm.ok()) return tpm.error();
    swtpm = *tpm;
    auto deadline = Clock::now() + std::chrono::milliseconds(spec.startup_timeout_ms);
    struct stat st {};
    while (::stat(spec.swtpm_socket.c_str(), &st) != 0) {
      if (reap_if_done(*swtpm)) return make_error(ErrorCode::kIo, "swtpm exited before socket was ready: " + describe(*swtpm->status));
      if (Clock::now() >= deadline) {
        stop_all();
        return make_error(ErrorCode::kIo, "timed out waiting for swtpm socket " + spec.swtpm_socket.string());
      }
      // swtpm has no way to say its socket is ready but the socket itself: looked at every 50 ms.
      if (wait(50)) {
        stop_all();
        return {};
      }
    }
    auto vm = start("QEMU", spec.qemu);
    if (!vm.ok()) {
      stop_all();
      return vm.error();
    }
    qemu = *vm;
    for (;;) {
      if (wait(-1)) {
        stop_all();
        return {};
      }
      if (reap_if_done(*qemu)) {
        stop_all();
        int s = *qemu->status;
        if (WIFEXITED(s) && WEXITSTATUS(s) == 0) return {};
        return make_error(ErrorCode::kQemu, "QEMU exited with " + describe(s));
      }
      if (reap_if_done(*swtpm)) {
        stop_all();
        return make_error(ErrorCode::kIo, "swtpm exited with " + describe(*swtpm->status));
      }
    }
  }
};

}  // namespace

int run_vm_launcher(const std::filesystem::path& spec_file) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  Launcher l;
  l.signals = ::signalfd(-1, &set, SFD_CLOEXEC);
  auto fail = [](const std::string& why) {
    std::cerr << "Error: " << why << std::endl;
    return 1;
  };
  if (l.signals < 0) return fail(std::string("failed to watch SIGTERM: ") + std::strerror(errno));
  auto text = internal::read_file(spec_file);
  if (!text.ok()) return fail("failed to read launch spec " + spec_file.string() + ": " + text.error().message);
  auto spec = parse_launch_spec(*text);
  if (!spec.ok()) return fail(spec.error().message);
  l.spec = *spec;
  Status s = l.run();
  std::error_code ec;
  std::filesystem::remove(l.spec.swtpm_socket, ec);
  for (auto* c : {&l.swtpm, &l.qemu})
    if (*c && (*c)->p.pidfd >= 0) ::close((*c)->p.pidfd);
  ::close(l.signals);
  if (!s.ok()) return fail(s.error().message);
  std::cout << "vm-launcher: done" << std::endl;
  return 0;
}

}  // namespace dstackvmm

// SPDX-License-Identifier: Apache-2.0
// supervisor: owns the VMs' QEMU processes so they outlive dstack-vmm. Its table is kept in a
// state file, so a new supervisor re-adopts what a crashed one started. Logic is in the library.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <httplib.h>

#include <dstackvmm/log.hpp>
#include <dstackvmm/process_launcher.hpp>
#include <dstackvmm/server/supervisor.hpp>
#include <dstackvmm/server/unix_socket.hpp>

#include "server/task_queue.hpp"

using namespace dstackvmm;

int main(int argc, char** argv) {
  CLI::App app{"supervisor: keeps dstack VMs' processes running across dstack-vmm restarts"};
  std::string uds, pid_file, log_file, state_file;
  bool detach = false, remove_existing = false;
  app.add_option("-u,--uds", uds, "unix socket to listen on")->required();
  app.add_flag("--remove-existing-uds", remove_existing, "replace a stale socket (never a live one)");
  app.add_flag("-d,--detach", detach, "run in the background");
  app.add_option("--pid-file", pid_file, "write our pid here once listening");
  app.add_option("--log-file", log_file, "append logs here");
  app.add_option("--state-file", state_file, "the process table (default: supervisor-state.json beside the socket)");
  CLI11_PARSE(app, argc, argv);
  if (state_file.empty()) state_file = (std::filesystem::path(uds).parent_path() / "supervisor-state.json").string();

  if (detach && ::daemon(1, 0) != 0) {
    std::cerr << "supervisor: cannot detach: " << std::strerror(errno) << '\n';
    return 1;
  }
  if (!log_file.empty()) {
    std::filesystem::create_directories(std::filesystem::path(log_file).parent_path());
    int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) ::dup2(fd, 2);
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (auto s = claim_unix_socket_path(uds, remove_existing); !s.ok()) {
    log_message(LogLevel::kError, "supervisor", s.error().message);
    return 1;
  }
  auto launcher = make_direct_launcher(state_file);  // re-adopts what a previous supervisor started
  httplib::Server http;
  http.set_address_family(AF_UNIX);
  // The library's pool: the daemon's long poll on /wait holds a thread, calls get another.
  http.new_task_queue = [] { return new server::PooledTaskQueue(2, 30); };
  auto shutdown = [&http] { std::thread([&http] { http.stop(); }).detach(); };
  auto route = [&](const httplib::Request& req, httplib::Response& res) {
    auto [status, body] = handle_supervisor_request(*launcher, req.method, req.path, req.body, shutdown);
    res.status = status;
    res.set_content(body, "application/json");
  };
  http.Get(".*", route);
  http.Post(".*", route);
  http.Delete(".*", route);
  ListenBacklog backlog;
  http.set_socket_options(backlog.options());
  mode_t old = ::umask(0177);
  bool bound = http.bind_to_port(uds, 80);
  ::umask(old);
  backlog.widen();
  if (!bound) {
    log_message(LogLevel::kError, "supervisor", "cannot listen on " + uds + ": " + std::strerror(errno));
    return 1;
  }
  if (!pid_file.empty()) {
    std::filesystem::create_directories(std::filesystem::path(pid_file).parent_path());
    std::string tmp = pid_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%d\n", ::getpid());
      std::fclose(f);
      std::rename(tmp.c_str(), pid_file.c_str());
    }
  }
  std::atomic<bool> finished{false};  // the server loop has returned (a signal or /shutdown)
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (finished) return;  // woken by main after /shutdown: nothing left to stop
    // The processes stay: their table is on disk and the next supervisor adopts them.
    log_message(LogLevel::kInfo, "supervisor", std::string("received ") + strsignal(sig) + "; leaving processes running");
    // cpp-httplib 0.11 ignores stop() until its loop runs; once the loop has ended (a
    // /shutdown that came first) there is nothing to wait for.
    while (!http.is_running() && !finished) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    http.stop();
  });
  log_message(LogLevel::kInfo, "supervisor", "listening on unix:" + uds + ", state in " + state_file);
  http.listen_after_bind();
  finished = true;
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  ::unlink(uds.c_str());
  if (!pid_file.empty()) ::unlink(pid_file.c_str());
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// Running a short helper (qemu-img) and reporting its output when it fails.
#include "process/run_command.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "process/spawn.hpp"

namespace dstackvmm::internal {

namespace {

// Runs argv with no input; returns the exit status and up to `keep` bytes of what it printed
// (stdout, then stderr).
Result<std::pair<int, std::string>> run_captured(const std::vector<std::string>& argv, const std::string& what,
                                                 std::chrono::milliseconds timeout, size_t keep, std::stop_token stop = {}) {
  auto r = run_command_io(argv, "", what, timeout, stop);
  if (!r.ok()) return r.error();
  std::string output = r->out + r->err;
  if (output.size() > keep) output.resize(keep);
  return std::pair<int, std::string>(r->wait_status, std::move(output));
}

}  // namespace

Status run_command(const std::vector<std::string>& argv, const std::string& what, std::chrono::milliseconds timeout) {
  auto r = run_captured(argv, what, timeout, 4096);
  if (!r.ok()) return r.error();
  auto [status, output] = std::move(*r);
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  return make_error(ErrorCode::kQemu, what + ": " + (output.empty() ? "exit status " + std::to_string(status) : output));
}

Result<std::string> run_command_output(const std::vector<std::string>& argv, const std::string& what,
                                       std::chrono::milliseconds timeout, std::stop_token stop) {
  auto r = run_captured(argv, what, timeout, 64 * 1024, stop);
  if (!r.ok()) return r.error();
  if (!WIFEXITED(r->first) || WEXITSTATUS(r->first) != 0)
    return make_error(ErrorCode::kQemu, what + ": exit status " + std::to_string(r->first));
  return std::move(r->second);
}

Result<CommandOutput> run_command_io(const std::vector<std::string>& argv, const std::string& input, const std::string& what,
                                     std::chrono::milliseconds timeout, std::stop_token stop) {
  // Memory files, not pipes: the helper reads its input to the end and writes what it likes
  // with no one having to pump either side while it runs.
  int in = ::memfd_create("dstackvmm-in", MFD_CLOEXEC);
  int out = ::memfd_create("dstackvmm-out", MFD_CLOEXEC);
  int err = ::memfd_create("dstackvmm-err", MFD_CLOEXEC);
  auto close_all = [&] {
    for (int fd : {in, out, err})
      if (fd >= 0) ::close(fd);
  };
  if (in < 0 || out < 0 || err < 0) {
    close_all();
    return make_error(ErrorCode::kIo, "memfd_create: " + std::string(std::strerror(errno)));
  }
  if (::pwrite(in, input.data(), input.size(), 0) != static_cast<ssize_t>(input.size())) {
    close_all();
    return make_error(ErrorCode::kIo, "cannot stage the input of " + argv[0]);
  }
  SpawnSpec spec;
  spec.argv = argv;
  spec.stdin_fd = in;
  spec.stdout_fd = out;
  spec.stderr_fd = err;
  spec.new_session = false;
  auto child = spawn_process(spec);
  if (!child.ok()) {
    close_all();
    return make_error(ErrorCode::kQemu, what + ": " + child.error().message);
  }
  auto status = wait_child(*child, timeout, stop);
  if (!status) {
    ::kill(child->pid, SIGKILL);
    (void)wait_child(*child, std::chrono::seconds(5));
  }
  if (child->pidfd >= 0) ::close(child->pidfd);
  if (!status && stop.stop_requested()) {
    close_all();
    return make_error(ErrorCode::kUnavailable, what + ": stopped");
  }
  CommandOutput r;
  for (auto [fd, text] : {std::pair{out, &r.out}, std::pair{err, &r.err}}) {
    text->resize(64 * 1024);
    ssize_t n = ::pread(fd, text->data(), text->size(), 0);
    text->resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  close_all();
  if (!status)
    return make_error(ErrorCode::kQemu, what + ": " + argv[0] + " did not finish within " +
                                            std::to_string(timeout.count() / 1000) + " s and was killed");
  r.wait_status = *status;
  return r;
}

}  // namespace dstackvmm::internal

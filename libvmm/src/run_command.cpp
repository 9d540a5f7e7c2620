// SPDX-License-Identifier: Apache-2.0
// Running a short helper (qemu-img, tar) and reporting its output when it fails.
#include "run_command.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace dstackvmm::internal {

Status run_command(const std::vector<std::string>& argv, const std::string& what) {
  char out_template[] = "/tmp/dstackvmm-cmd.XXXXXX";
  int out = ::mkstemp(out_template);
  if (out < 0) return make_error(ErrorCode::kIo, "mkstemp: " + std::string(std::strerror(errno)));
  ::unlink(out_template);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out, 1);
  posix_spawn_file_actions_adddup2(&fa, out, 2);
  std::vector<char*> args;
  std::vector<std::string> store = argv;
  for (auto& s : store) args.push_back(s.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    ::close(out);
    return make_error(ErrorCode::kQemu, what + ": cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string output(4096, '\0');
  ssize_t n = ::pread(out, output.data(), output.size(), 0);
  ::close(out);
  output.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  return make_error(ErrorCode::kQemu, what + ": " + (output.empty() ? "exit status " + std::to_string(status) : output));
}

}  // namespace dstackvmm::internal

// SPDX-License-Identifier: Apache-2.0
#include "process/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char** environ;

namespace dstackvmm::internal {

namespace {

int pidfd_open_raw(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace

std::string find_program(const std::string& name) {
  // A regular file with an execute bit: PATH may hold a folder of the same name (Debian's
  // /usr/lib/<triplet>/swtpm is one), which access(X_OK) alone would take.
  auto runnable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) return runnable(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (runnable(candidate)) return candidate;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

int open_pidfd(pid_t pid) {
  int fd = pidfd_open_raw(pid);
  if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

Result<SpawnedProcess> fork_probe(int (*probe)(const void* arg), const void* arg) {
  pid_t pid = ::fork();
  if (pid < 0) return make_error(ErrorCode::kIo, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) ::_exit(probe(arg));
  return SpawnedProcess{pid, open_pidfd(pid)};
}

namespace {

// Everything the child needs, made before fork(): after it the child may only make
// async-signal-safe calls (no allocation, no locks), so nothing is built there. Filled in
// place and never moved, since argv and envp point into the strings it holds.
struct ChildPlan {
  std::string program;
  std::vector<std::string> env_store, argv_store;
  std::vector<char*> envp, argv;
  std::string out, err, cwd;
  int out_fd = -1, err_fd = -1, in_fd = -1;
  bool session = false, die_with_parent = false;
  pid_t parent = 0;

  void fill(const SpawnSpec& spec, std::string found) {
    program = std::move(found);
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      if (!spec.env.count(kv.substr(0, kv.find('=')))) env_store.push_back(kv);
    }
    for (const auto& [k, v] : spec.env) env_store.push_back(k + "=" + v);
    for (auto& s : env_store) envp.push_back(s.data());
    envp.push_back(nullptr);
    argv_store = spec.argv;
    for (auto& s : argv_store) argv.push_back(s.data());
    argv.push_back(nullptr);
    out = spec.stdout_path.empty() ? "/dev/null" : spec.stdout_path.string();
    err = spec.stderr_path.empty() ? "/dev/null" : spec.stderr_path.string();
    cwd = spec.cwd.string();
    out_fd = spec.stdout_fd;
    err_fd = spec.stderr_fd >= 0 ? spec.stderr_fd : spec.stdout_fd;
    in_fd = spec.stdin_fd;
    session = spec.new_session;
    die_with_parent = spec.die_with_parent;
    parent = ::getpid();
  }
};

// The child, from fork() to exec: only async-signal-safe calls. A failure is reported as
// errno on `report` (which closes on a successful exec).
[[noreturn]] void run_child(const ChildPlan& c, int report) {
  if (c.session) ::setsid();
  if (c.die_with_parent && (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != c.parent)) ::_exit(127);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);  // daemons block SIGTERM for sigwait
  ::signal(SIGPIPE, SIG_DFL);
  int in = c.in_fd >= 0 ? c.in_fd : ::open("/dev/null", O_RDONLY);
  int o = c.out_fd >= 0 ? c.out_fd : ::open(c.out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int e = c.err_fd >= 0 ? c.err_fd : ::open(c.err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in < 0 || o < 0 || e < 0 || (!c.cwd.empty() && ::chdir(c.cwd.c_str()) != 0) || ::dup2(in, 0) < 0 ||
      ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) {
    int code = errno;
    (void)!::write(report, &code, sizeof code);
    ::_exit(127);
  }
  // No fd of ours (sockets, other VMs' files) leaks into the child; the pipe closes on exec.
  if (report > 3) ::close_range(3, static_cast<unsigned>(report) - 1, 0);
  ::close_range(static_cast<unsigned>(report) + 1, ~0U, 0);
  ::execve(c.program.c_str(), c.argv.data(), c.envp.data());
  int code = errno;
  (void)!::write(report, &code, sizeof code);
  ::_exit(127);
}

}  // namespace

Result<SpawnedProcess> spawn_process(const SpawnSpec& spec) {
  if (spec.argv.empty()) return make_error(ErrorCode::kInvalidArgument, "empty command");
  std::string program = find_program(spec.argv[0]);
  if (program.empty())
    return make_error(ErrorCode::kInvalidArgument, "cannot run " + spec.argv[0] + ": not found or not executable");
  ChildPlan plan;
  plan.fill(spec, std::move(program));

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return make_error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return make_error(ErrorCode::kIo, std::string("fork: ") + std::strerror(e));
  }
  if (pid == 0) run_child(plan, pipefd[1]);
  ::close(pipefd[1]);
  int child_errno = 0;
  ssize_t n;
  do n = ::read(pipefd[0], &child_errno, sizeof child_errno);
  while (n < 0 && errno == EINTR);
  ::close(pipefd[0]);
  if (n == sizeof child_errno) {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return make_error(ErrorCode::kInvalidArgument, "cannot run " + spec.argv[0] + ": " + std::strerror(child_errno));
  }
  SpawnedProcess p;
  p.pid = pid;
  p.pidfd = open_pidfd(pid);  // our unreaped child: the pid cannot have been reused
  return p;
}

StopFd::StopFd(std::stop_token stop) {
  if (!stop.stop_possible()) return;
  fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd_ < 0) return;
  callback_.emplace(stop, std::function<void()>([fd = fd_] {
    uint64_t one = 1;
    (void)!::write(fd, &one, sizeof one);
  }));
}

StopFd::~StopFd() {
  callback_.reset();  // no write after the close below
  if (fd_ >= 0) ::close(fd_);
}

std::optional<int> wait_child(const SpawnedProcess& p, std::chrono::milliseconds timeout, std::stop_token stop) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  StopFd stopped(stop);
  for (;;) {
    // Rounded up: a timeout is never cut short by a fraction of a millisecond.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd fds[2] = {{p.pidfd, POLLIN, 0}, {stopped.fd(), POLLIN, 0}};
    int rc = p.pidfd >= 0 ? ::poll(fds, stopped.fd() >= 0 ? 2 : 1, static_cast<int>(std::max<long long>(0, left))) : 1;
    if (rc < 0 && errno == EINTR) continue;
    if (rc > 0 && p.pidfd >= 0 && !(fds[0].revents & POLLIN)) return std::nullopt;  // stopped
    if (rc == 0 && std::chrono::steady_clock::now() < deadline) continue;
    if (rc == 0) return std::nullopt;
    int status = 0;
    pid_t r;
    do r = ::waitpid(p.pid, &status, 0);
    while (r < 0 && errno == EINTR);
    return status;
  }
}

struct ChildWatcher::Impl {
  int epoll_fd = -1;
  int wake_fd = -1;
  std::mutex mu;
  std::unordered_map<int, std::function<void(int)>> watched;  // pidfd -> callback
  std::thread thread;
  bool stopping = false;

  void run() {
    epoll_event events[32];
    for (;;) {
      int n = ::epoll_wait(epoll_fd, events, 32, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return;
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == wake_fd) {
          std::lock_guard lock(mu);
          if (stopping) return;
          continue;
        }
        std::function<void(int)> cb;
        {
          std::lock_guard lock(mu);
          auto it = watched.find(fd);
          if (it == watched.end()) continue;
          cb = std::move(it->second);
          watched.erase(it);
        }
        ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
        siginfo_t info{};
        int status = -1;
        // Our own child is reaped here; a process we adopted is not ours to reap.
        if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd), &info, WEXITED) == 0) {
          status = info.si_code == CLD_EXITED ? (info.si_status & 0xff) << 8 : info.si_status & 0x7f;
        }
        ::close(fd);
        if (cb) cb(status);
      }
    }
  }
};

ChildWatcher::ChildWatcher() : impl_(new Impl) {
  impl_->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  impl_->wake_fd = ::eventfd(0, EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = impl_->wake_fd;
  ::epoll_ctl(impl_->epoll_fd, EPOLL_CTL_ADD, impl_->wake_fd, &ev);
  impl_->thread = std::thread([this] { impl_->run(); });
}

ChildWatcher::~ChildWatcher() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  uint64_t one = 1;
  (void)!::write(impl_->wake_fd, &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
  ::close(impl_->epoll_fd);
  ::close(impl_->wake_fd);
  for (auto& [fd, cb] : impl_->watched) ::close(fd);
  delete impl_;
}

ChildWatcher& ChildWatcher::instance() {
  static ChildWatcher watcher;
  return watcher;
}

void ChildWatcher::watch(int pidfd, std::function<void(int)> on_exit) {
  if (pidfd < 0) return;
  {
    std::lock_guard lock(impl_->mu);
    impl_->watched[pidfd] = std::move(on_exit);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = pidfd;
  ::epoll_ctl(impl_->epoll_fd, EPOLL_CTL_ADD, pidfd, &ev);
}

}  // namespace dstackvmm::internal

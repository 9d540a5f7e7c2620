// SPDX-License-Identifier: Apache-2.0
#include "guest/serial_watch.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace dstackvmm::internal {

namespace {
constexpr std::string_view kPanicMark = "Kernel panic - not syncing";
}  // namespace

std::vector<GuestPanic> PanicScanner::feed(std::string_view bytes) {
  std::vector<GuestPanic> done;
  for (char c : bytes) {
    if (c == '\n') {
      end_line(&done);
    } else if (c != '\r' && line_.size() < kMaxLine) {
      // Control bytes (terminal escapes among them) become '?': these lines reach terminals.
      auto u = static_cast<unsigned char>(c);
      line_ += (u < 0x20 && c != '\t') || u == 0x7f ? '?' : c;
    }
  }
  return done;
}

void PanicScanner::end_line(std::vector<GuestPanic>* done) {
  std::string line = std::move(line_);
  line_.clear();
  if (auto at = line.find(kPanicMark); at != std::string::npos) {
    if (open_) done->push_back(*std::move(finish()));
    GuestPanic p;
    std::string_view rest = std::string_view(line).substr(at + kPanicMark.size());
    if (!rest.empty() && rest.front() == ':') rest.remove_prefix(1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    p.message = std::string(rest);
    p.serial_tail.assign(recent_.begin(), recent_.end());
    p.serial_tail.push_back(line);
    open_ = std::move(p);
    after_ = 0;
    recent_.clear();
    return;
  }
  if (open_) {
    open_->serial_tail.push_back(line);
    if (++after_ >= kLinesAfter) done->push_back(*std::move(finish()));
    return;
  }
  recent_.push_back(std::move(line));
  if (recent_.size() >= kLinesBefore) recent_.pop_front();
}

std::optional<GuestPanic> PanicScanner::finish() {
  std::optional<GuestPanic> p = std::move(open_);
  open_.reset();
  after_ = 0;
  return p;
}

SerialWatch::SerialWatch(OnPanic on_panic, std::chrono::milliseconds settle)
    : on_panic_(std::move(on_panic)), settle_(settle) {}

SerialWatch::~SerialWatch() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  if (wake_ >= 0) {
    uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  for (auto& [id, f] : vms_)
    if (f.fd >= 0) ::close(f.fd);
  if (inotify_ >= 0) ::close(inotify_);
  if (wake_ >= 0) ::close(wake_);
}

Status SerialWatch::start_locked() {
  if (thread_.joinable()) return {};
  if (inotify_ < 0) inotify_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_ < 0) return make_error(ErrorCode::kIo, std::string("inotify_init1: ") + std::strerror(errno));
  if (wake_ < 0) wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_ < 0) return make_error(ErrorCode::kIo, std::string("eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] { run(); });
  return {};
}

Status SerialWatch::follow(const std::string& vm_id, const std::filesystem::path& log) {
  std::lock_guard lock(mu_);
  if (auto s = start_locked(); !s.ok()) return s;
  int wd = ::inotify_add_watch(inotify_, log.parent_path().c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW);
  if (wd < 0) return make_error(ErrorCode::kIo, "cannot watch " + log.parent_path().string() + ": " + std::strerror(errno));
  if (auto old = by_wd_.find(wd); old != by_wd_.end() && old->second != vm_id) vms_.erase(old->second);  // its folder reused
  by_wd_[wd] = vm_id;
  Followed& f = vms_[vm_id];
  if (f.wd >= 0 && f.wd != wd) by_wd_.erase(f.wd);
  f.log = log;
  f.wd = wd;
  f.dirty = false;
  f.reopen = false;
  f.scanner = PanicScanner();
  if (f.fd >= 0) ::close(f.fd);
  f.fd = ::open(log.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  struct stat st {};
  bool there = f.fd >= 0 && ::fstat(f.fd, &st) == 0 && S_ISREG(st.st_mode);
  if (!there && f.fd >= 0) ::close(f.fd), f.fd = -1;
  f.offset = there ? static_cast<uint64_t>(st.st_size) : 0;
  f.inode = there ? st.st_ino : 0;
  return {};
}

void SerialWatch::shifted(const std::string& vm_id, uint64_t bytes) {
  std::lock_guard lock(mu_);
  auto it = vms_.find(vm_id);
  if (it == vms_.end() || bytes == 0) return;
  it->second.offset = it->second.offset >= bytes ? it->second.offset - bytes : 0;
}

uint64_t SerialWatch::read_rounds() const {
  std::lock_guard lock(mu_);
  return read_rounds_;
}

void SerialWatch::forget(const std::string& vm_id) {
  std::lock_guard lock(mu_);
  auto it = vms_.find(vm_id);
  if (it == vms_.end()) return;
  by_wd_.erase(it->second.wd);
  if (inotify_ >= 0) ::inotify_rm_watch(inotify_, it->second.wd);
  if (it->second.fd >= 0) ::close(it->second.fd);
  vms_.erase(it);
}

void SerialWatch::read_more(const std::string& id, Followed& f, std::vector<std::pair<std::string, GuestPanic>>* found) {
  f.dirty = false;
  // The log stays open between rounds: a round costs a read of what is new, not an open,
  // stat and close per write the guest made.
  if (f.fd < 0 || f.reopen) {
    if (f.fd >= 0) ::close(f.fd);
    f.reopen = false;
    f.fd = ::open(f.log.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (f.fd < 0) return;
  }
  int fd = f.fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    f.fd = -1;
    return;
  }
  // Another file (the first boot's, created after follow()) or one truncated whole (a
  // rotation that could not cut blocks): read it from its start.
  if (st.st_ino != f.inode || static_cast<uint64_t>(st.st_size) < f.offset) {
    f.inode = st.st_ino;
    f.offset = 0;
  }
  uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(st.st_size), f.offset + kReadBudget);
  char buf[64 * 1024];
  while (f.offset < end) {
    ssize_t n = ::pread(fd, buf, std::min<uint64_t>(sizeof buf, end - f.offset), static_cast<off_t>(f.offset));
    if (n <= 0) break;
    f.offset += static_cast<uint64_t>(n);
    bool was_open = f.scanner.open();
    size_t before = found->size();
    for (auto& p : f.scanner.feed(std::string_view(buf, static_cast<size_t>(n)))) found->emplace_back(id, std::move(p));
    bool opened = f.scanner.open() && (!was_open || found->size() > before);  // a panic line just read
    if (opened) f.settle_at = std::chrono::steady_clock::now() + settle_;
  }
  f.dirty = f.offset < static_cast<uint64_t>(st.st_size);  // more than one round's budget
}

int SerialWatch::next_timeout() const {
  int timeout = -1;
  auto now = std::chrono::steady_clock::now();
  for (const auto& [id, f] : vms_) {
    if (f.dirty) timeout = 0;
    if (!f.dirty && f.scanner.open()) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(f.settle_at - now).count() + 1;
      ms = std::max<int64_t>(0, ms);
      if (timeout < 0 || ms < timeout) timeout = static_cast<int>(std::min<int64_t>(ms, 60'000));
    }
  }
  return timeout;
}

void SerialWatch::take_events(char* buf, size_t size) {
  ssize_t len;
  while ((len = ::read(inotify_, buf, size)) > 0) {
    for (char* at = buf; at < buf + len;) {
      auto* e = reinterpret_cast<struct inotify_event*>(at);
      at += sizeof(struct inotify_event) + e->len;
      if (e->mask & IN_Q_OVERFLOW) {  // events were lost: look at every log
        for (auto& [id, f] : vms_) f.dirty = true;
        continue;
      }
      if (e->len == 0) continue;
      auto owner = by_wd_.find(e->wd);
      if (owner == by_wd_.end()) continue;
      auto f = vms_.find(owner->second);
      if (f != vms_.end() && f->second.log.filename() == std::string_view(e->name)) {
        f->second.dirty = true;
        if (e->mask & (IN_CREATE | IN_MOVED_TO)) f->second.reopen = true;
      }
    }
  }
}

void SerialWatch::run() {
  alignas(struct inotify_event) char events[16 * 1024];
  for (;;) {
    int timeout;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      timeout = next_timeout();
    }
    pollfd fds[2] = {{inotify_, POLLIN, 0}, {wake_, POLLIN, 0}};
    if (::poll(fds, 2, timeout) < 0 && errno != EINTR) return;
    if (fds[1].revents & POLLIN) {
      uint64_t n;
      (void)!::read(wake_, &n, sizeof n);
    }
    std::vector<std::pair<std::string, GuestPanic>> found;
    bool read_any = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      if (fds[0].revents & POLLIN) take_events(events, sizeof events);
      auto now = std::chrono::steady_clock::now();
      for (auto& [id, f] : vms_) {
        if (f.dirty) read_more(id, f, &found), read_any = true;
        if (!f.dirty && f.scanner.open() && f.settle_at <= now) found.emplace_back(id, *f.scanner.finish());
      }
      if (read_any) ++read_rounds_;
    }
    for (auto& [id, panic] : found) on_panic_(id, std::move(panic));
    if (read_any) {
      // Let the writes of a busy guest gather (see kBatch); a stop or a new follow ends the pause.
      pollfd wake{wake_, POLLIN, 0};
      if (::poll(&wake, 1, static_cast<int>(kBatch.count())) > 0) {
        uint64_t n;
        (void)!::read(wake_, &n, sizeof n);
        uint64_t one = 1;  // handled in the next loop, which looks at stopping_
        (void)!::write(wake_, &one, sizeof one);
      }
    }
  }
}

}  // namespace dstackvmm::internal

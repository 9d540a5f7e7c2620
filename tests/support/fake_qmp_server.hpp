// SPDX-License-Identifier: Apache-2.0
// A fake QMP monitor: accepts one connection on a unix socket and replays a transcript. Each
// step waits for one client line and answers with the given lines ("" answers nothing).
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace dstackvmm::testing {

class FakeQmpServer {
 public:
  // `greeting` is sent on accept; then for each step: read one line, record it, send replies.
  // After the last step the connection is closed unless `hold_open`.
  FakeQmpServer(std::filesystem::path path, std::string greeting,
                std::vector<std::vector<std::string>> steps, bool hold_open = false)
      : path_(std::move(path)) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 1);
    thread_ = std::thread([this, greeting, steps, hold_open] {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      send_line(fd, greeting);
      std::string buf;
      for (const auto& replies : steps) {
        std::string line;
        if (!read_line(fd, buf, line)) break;
        received.push_back(line);
        for (const auto& r : replies) send_line(fd, r);
      }
      if (hold_open) {
        char c;
        while (::read(fd, &c, 1) > 0) {
        }
      }
      ::close(fd);
    });
  }
  ~FakeQmpServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    if (thread_.joinable()) thread_.join();
    ::unlink(path_.c_str());
  }

  std::vector<std::string> received;

 private:
  static void send_line(int fd, const std::string& s) {
    if (s.empty()) return;
    std::string l = s + "\r\n";
    (void)!::write(fd, l.data(), l.size());
  }
  static bool read_line(int fd, std::string& buf, std::string& line) {
    while (buf.find('\n') == std::string::npos) {
      char chunk[512];
      ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<size_t>(n));
    }
    auto nl = buf.find('\n');
    line = buf.substr(0, nl);
    buf.erase(0, nl + 1);
    return true;
  }

  std::filesystem::path path_;
  int listen_fd_ = -1;
  std::thread thread_;
};

inline const char* kQmpGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}})";

}  // namespace dstackvmm::testing

// SPDX-License-Identifier: Apache-2.0
// Claiming a unix socket path for a server: replace a stale socket, never a live one.
#include <dstackvmm/server/unix_socket.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <httplib.h>

namespace dstackvmm {

bool unix_socket_is_live(const std::filesystem::path& path) {
  sockaddr_un addr{};
  std::string p = path.string();
  if (p.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  // Non-blocking: a blocking connect to a full backlog would wait for room without end.
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 || errno == EAGAIN;
  ::close(fd);
  return live;
}

std::function<void(int)> ListenBacklog::options() {
  return [this](int fd) {
    httplib::default_socket_options(fd);
    fd_ = fd;
  };
}

void ListenBacklog::widen(int backlog) {
  if (fd_ >= 0) ::listen(fd_, backlog);  // Linux takes a second listen() as a new backlog
}

Status claim_unix_socket_path(const std::filesystem::path& path, bool reuse) {
  std::error_code ec;
  if (path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec)
      return make_error(ErrorCode::kIo, "cannot create folder " + path.parent_path().string() +
                                            ": " + ec.message());
  }
  auto st = std::filesystem::symlink_status(path, ec);
  if (ec || st.type() == std::filesystem::file_type::not_found) return {};
  if (st.type() != std::filesystem::file_type::socket)
    return make_error(ErrorCode::kAlreadyExists,
                      path.string() + " exists and is not a socket; refusing to replace it");
  if (unix_socket_is_live(path))
    return make_error(ErrorCode::kAlreadyExists,
                      path.string() + " is in use by a running server; stop it first");
  if (!reuse)
    return make_error(ErrorCode::kAlreadyExists,
                      path.string() + " is a stale socket; set reuse = true to replace it");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return make_error(ErrorCode::kIo, "cannot remove stale socket " + path.string() + ": " +
                                          std::strerror(errno));
  return {};
}

}  // namespace dstackvmm

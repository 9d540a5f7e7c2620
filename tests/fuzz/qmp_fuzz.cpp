// SPDX-License-Identifier: Apache-2.0
// QMP as a peer on the socket says it: greeting, replies and events in any order and shape.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include <dstackvmm/qmp_client.hpp>

#include "fuzz_util.hpp"

using namespace dstackvmm;
using namespace std::chrono_literals;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::filesystem::path sock = fuzz::scratch() / "qmp.sock";
  static int listener = [] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, sock.c_str(), sizeof a.sun_path - 1);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 4);
    return fd;
  }();
  std::string script(reinterpret_cast<const char*>(data), std::min<size_t>(size, 100000));
  std::thread peer([&] {
    int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    (void)!::send(c, script.data(), script.size(), MSG_NOSIGNAL);
    ::shutdown(c, SHUT_WR);
    char buf[4096];
    while (::recv(c, buf, sizeof buf, 0) > 0) {}
    ::close(c);
  });
  auto qmp = QmpClient::connect(sock, 200ms);
  if (qmp.ok()) {
    (void)(*qmp)->query_status(100ms);
    (void)(*qmp)->wait_event("SHUTDOWN", 100ms);
    (void)(*qmp)->execute("query-version", "", 100ms);
  }
  qmp = make_error(ErrorCode::kInternal, "done");  // closes our end so the peer finishes
  peer.join();
  return 0;
}

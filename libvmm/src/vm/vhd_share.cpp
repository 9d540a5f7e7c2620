// SPDX-License-Identifier: Apache-2.0
// host_share_mode = "vhd": the guest's shared files as a read-only FAT32 disk, rebuilt at
// every start (upstream: 128 MiB, label DSTACKSHR, every regular file of shared/ at its root).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fs_util.hpp"
#include "process/run_command.hpp"
#include "vm/vm_store.hpp"

namespace dstackvmm::internal {

namespace fs = std::filesystem;

Status build_vhd_share(const VmPaths& p) {
  fs::path tmp = p.dir / ".shared.img.tmp", img = p.dir / "shared.img";
  std::error_code ec;
  fs::remove(tmp, ec);
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(p.shared(), ec))
    if (e.is_regular_file(ec) && !e.is_symlink(ec)) files.push_back(e.path().string());
  if (ec) return make_error(ErrorCode::kIo, "cannot list " + p.shared().string() + ": " + ec.message());
  auto fail = [&](Error e) {
    fs::remove(tmp, ec);
    return e.context("host_share_mode vhd (needs mtools: apt-get install mtools)");
  };
  // 262144 sectors of 512 bytes = 128 MiB; mformat makes the file (-C).
  if (auto s = run_command({"mformat", "-i", tmp.string(), "-C", "-T", "262144", "-h", "64", "-s", "32", "-F", "-v", "DSTACKSHR", "::"},
                           "cannot make the shared disk", std::chrono::seconds(30));
      !s.ok())
    return fail(s.error());
  if (!files.empty()) {
    std::vector<std::string> cmd{"mcopy", "-i", tmp.string(), "-o", "-n"};
    cmd.insert(cmd.end(), files.begin(), files.end());
    cmd.push_back("::/");
    if (auto s = run_command(cmd, "cannot fill the shared disk", std::chrono::seconds(30)); !s.ok()) return fail(s.error());
  }
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return fail(make_error(ErrorCode::kIo, "cannot sync " + tmp.string() + ": " + why));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), img.c_str()) != 0)
    return fail(make_error(ErrorCode::kIo, "cannot replace " + img.string() + ": " + std::strerror(errno)));
  int dir = ::open(p.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

}  // namespace dstackvmm::internal

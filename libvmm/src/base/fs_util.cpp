// SPDX-License-Identifier: Apache-2.0
// Files the way state must be written: atomically (temp, fsync, rename, fsync dir).
#include "base/fs_util.hpp"

#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace dstackvmm::internal {

namespace {
Error io_error(std::string what, const std::filesystem::path& p) {
  return make_error(ErrorCode::kIo, what + " " + p.string() + ": " + std::strerror(errno));
}
std::atomic<unsigned> g_counter{0};
std::atomic<uint64_t> g_fsyncs{0};
int counted_fsync(int fd, bool data_only = false) {
  ++g_fsyncs;
  return data_only ? ::fdatasync(fd) : ::fsync(fd);
}
}  // namespace

Status sync_folder_entries(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open", dir);
  int r = counted_fsync(fd);
  int err = errno;
  ::close(fd);
  errno = err;
  if (r != 0) return io_error("cannot sync", dir);
  return {};
}

namespace {
// A rename is durable only once the folder's entry is (best effort, as before).
void sync_folder(const std::filesystem::path& path) { (void)sync_folder_entries(path.parent_path()); }
}  // namespace

uint64_t fsync_count() { return g_fsyncs.load(); }

Status create_marker(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return io_error("cannot create", path);
  ::close(fd);
  return {};
}

Status link_marker(const std::filesystem::path& existing, const std::filesystem::path& path) {
  if (::link(existing.c_str(), path.c_str()) == 0 || errno == EEXIST) return {};
  return create_marker(path);
}

Status overwrite_same_length(const std::filesystem::path& path, std::string_view data) {
  if (data.empty() || data.size() > 512) return make_error(ErrorCode::kInvalidArgument, "an in-place write is 1 to 512 bytes");
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return make_error(ErrorCode::kFailedPrecondition, "cannot open " + path.string() + " to write in place");
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) != data.size()) {
    ::close(fd);
    return make_error(ErrorCode::kFailedPrecondition, path.string() + " is not of the length to write in place");
  }
  ssize_t n;
  do {
    n = ::pwrite(fd, data.data(), data.size(), 0);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  errno = err;
  if (n < 0) return io_error("cannot write", path);
  // Short (never seen below a page): the caller's replace then rewrites the file whole.
  if (static_cast<size_t>(n) != data.size()) return make_error(ErrorCode::kIo, "short write to " + path.string());
  return {};
}

namespace {
// fsync (or fdatasync) of the file at `path`.
Status sync_path(const std::filesystem::path& path, bool data_only) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return io_error("cannot open", path);
  int r = counted_fsync(fd, data_only);
  int err = errno;
  ::close(fd);
  errno = err;
  if (r != 0) return io_error("cannot sync", path);
  return {};
}
}  // namespace

Status sync_file(const std::filesystem::path& path) {
  if (auto s = sync_path(path, false); !s.ok()) return s;
  sync_folder(path);
  return {};
}

Status sync_data(const std::filesystem::path& path) { return sync_path(path, true); }

namespace {
// Writes and syncs `data` to a fresh temp file beside `path`; returns its name.
Result<std::filesystem::path> stage(const std::filesystem::path& path, std::string_view data, mode_t mode, bool sync = true) {
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(g_counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return io_error("cannot create", tmp);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = io_error("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if ((sync && counted_fsync(fd) != 0) || ::close(fd) != 0) {
    Error e = io_error("cannot sync", tmp);
    ::unlink(tmp.c_str());
    return e;
  }
  return tmp;
}
}  // namespace

Status write_file_atomic(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  auto tmp = stage(path, data, mode);
  if (!tmp.ok()) return tmp.error();
  if (::rename(tmp->c_str(), path.c_str()) != 0) {
    Error e = io_error("cannot rename into", path);
    ::unlink(tmp->c_str());
    return e;
  }
  sync_folder(path);
  return {};
}

Status replace_file(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  auto tmp = stage(path, data, mode, false);
  if (!tmp.ok()) return tmp.error();
  if (::rename(tmp->c_str(), path.c_str()) != 0) {
    Error e = io_error("cannot rename into", path);
    ::unlink(tmp->c_str());
    return e;
  }
  return {};
}

FileBatch::~FileBatch() {
  for (const auto& [tmp, path] : staged_) ::unlink(tmp.c_str());
}

Status FileBatch::stage(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  auto tmp = internal::stage(path, data, mode);
  if (!tmp.ok()) return tmp.error();
  staged_.emplace_back(*tmp, path);
  return {};
}

Status FileBatch::commit() {
  for (size_t i = 0; i < staged_.size(); ++i) {
    const auto& [tmp, path] = staged_[i];
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      Error e = io_error("cannot rename into", path);
      staged_.erase(staged_.begin(), staged_.begin() + static_cast<std::ptrdiff_t>(i));
      return e;
    }
  }
  for (const auto& [tmp, path] : staged_) sync_folder(path);
  staged_.clear();
  return {};
}

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ErrorCode code = errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo;
    return make_error(code, "cannot read " + path.string() + ": " + std::strerror(errno));
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string read_attribute(const std::filesystem::path& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string s(max_bytes, '\0');
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<size_t>(in.gcount()));
  size_t end = s.find_last_not_of(" \t\r\n\0");
  if (end == std::string::npos) return "";
  size_t begin = s.find_first_not_of(" \t\r\n");
  return s.substr(begin, end + 1 - begin);
}

Status remove_tree(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot remove " + path.string() + ": " + ec.message());
  return {};
}

Status make_dirs(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot create " + path.string() + ": " + ec.message());
  return {};
}

std::filesystem::path default_discovery_dir() {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  std::filesystem::path base = xdg && *xdg ? std::filesystem::path(xdg) : std::filesystem::path("/run/user") / std::to_string(::getuid());
  return base / "dstack-vmm";
}

}  // namespace dstackvmm::internal

// SPDX-License-Identifier: Apache-2.0
// OCI layers unpacked in-process with libarchive; every filesystem call is relative to a
// folder fd we opened ourselves, with O_NOFOLLOW on every component.
#include "image/layer_extract.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace dstackvmm::internal {

namespace {

constexpr size_t kMaxComponents = 128;  // bounds the recursion of removals too
constexpr size_t kMaxPath = 4096;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// libarchive's message for the last error; it may have none.
std::string why(archive* a) {
  const char* m = archive_error_string(a);
  return m ? m : "unknown error";
}

Error bad(const std::string& entry, const std::string& why) {
  std::string shown;
  for (char c : entry.substr(0, 200)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  return make_error(ErrorCode::kInvalidArgument, "layer entry '" + shown + "': " + why);
}

// "./a//b/" -> {"a", "b"}; absolute names and `..` are refused, not rewritten. `what` names
// the path in errors ("path", "hard link target").
Result<std::vector<std::string>> split(const std::string& name, const std::string& entry, const char* what = "path") {
  if (name.size() > kMaxPath) return bad(entry, std::string(what) + " is longer than " + std::to_string(kMaxPath) + " bytes");
  if (!name.empty() && name[0] == '/') return bad(entry, std::string("absolute ") + what);
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string_view part(name.data() + start, end - start);
    if (part == "..") return bad(entry, std::string(what) + " contains '..'");
    if (!part.empty() && part != ".") out.emplace_back(part);
    start = end + 1;
  }
  if (out.size() > kMaxComponents) return bad(entry, std::string(what) + " is nested deeper than " + std::to_string(kMaxComponents));
  return out;
}

// The folder holding the last component, walked from root without following anything.
Result<Fd> open_parent(int root_fd, const std::vector<std::string>& parts, const std::string& entry, bool create) {
  Fd dir(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const char* c = parts[i].c_str();
    int next = ::openat(dir.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(dir.get(), c, 0755) != 0 && errno != EEXIST) return bad(entry, std::string("mkdir: ") + std::strerror(errno));
      next = ::openat(dir.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      if (errno == ELOOP || errno == ENOTDIR) return bad(entry, "'" + parts[i] + "' on its path is a symlink or a file");
      return bad(entry, std::string(parts[i]) + ": " + std::strerror(errno));
    }
    dir = Fd(next);
  }
  return dir;
}

Status remove_at(int dir_fd, const char* name);

Status remove_children(int dir_fd) {
  Fd copy(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (copy.get() < 0) return make_error(ErrorCode::kIo, std::string("cannot open folder: ") + std::strerror(errno));
  DIR* d = ::fdopendir(::fcntl(copy.get(), F_DUPFD_CLOEXEC, 0));
  if (!d) return make_error(ErrorCode::kIo, std::string("cannot read folder: ") + std::strerror(errno));
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d))
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
  ::closedir(d);
  for (const auto& n : names)
    if (auto s = remove_at(copy.get(), n.c_str()); !s.ok()) return s;
  return {};
}

// Removes `name` in dir_fd, a folder with everything in it; symlinks are removed, not followed.
Status remove_at(int dir_fd, const char* name) {
  struct stat st {};
  if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return {};  // nothing there
  if (S_ISDIR(st.st_mode)) {
    Fd sub(::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub.get() < 0) return make_error(ErrorCode::kIo, std::string("cannot open ") + name + ": " + std::strerror(errno));
    if (auto s = remove_children(sub.get()); !s.ok()) return s;
    if (::unlinkat(dir_fd, name, AT_REMOVEDIR) != 0)
      return make_error(ErrorCode::kIo, std::string("cannot remove ") + name + ": " + std::strerror(errno));
    return {};
  }
  if (::unlinkat(dir_fd, name, 0) != 0)
    return make_error(ErrorCode::kIo, std::string("cannot remove ") + name + ": " + std::strerror(errno));
  return {};
}

Status write_data(archive* a, int fd, const std::string& entry, const LayerLimits& limits, LayerProgress& progress) {
  const void* buf;
  size_t size;
  la_int64_t offset;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) return {};
    if (r != ARCHIVE_OK) return bad(entry, std::string("cannot read: ") + why(a));
    progress.bytes += size;
    if (progress.bytes > limits.max_bytes)
      return bad(entry, "image unpacks to more than " + std::to_string(limits.max_bytes) + " bytes ([image] max_unpacked_mb)");
    const char* p = static_cast<const char*>(buf);
    while (size > 0) {
      ssize_t n = ::pwrite(fd, p, size, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return make_error(ErrorCode::kIo, "cannot write " + entry + ": " + std::strerror(errno));
      p += n;
      size -= static_cast<size_t>(n);
      offset += n;
    }
  }
}

// A hard link: only to a regular file already extracted into the image.
Status extract_hardlink(int root_fd, int dir, const char* name, const char* link, const std::string& entry) {
  auto target = split(link, entry, "hard link target");
  if (!target.ok()) return target.error();
  if (target->empty()) return bad(entry, "hard link to the image's root");
  auto tdir = open_parent(root_fd, *target, entry, false);
  if (!tdir.ok()) return tdir.error();
  struct stat st {};
  if (::fstatat(tdir->get(), target->back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
    return bad(entry, "hard link to something that is not a file already in the image");
  if (auto s = remove_at(dir, name); !s.ok()) return s;
  if (::linkat(tdir->get(), target->back().c_str(), dir, name, 0) != 0)
    return bad(entry, std::string("cannot link: ") + std::strerror(errno));
  return {};
}

// Everything but a hard link, by type: folders, files (within the limits), symlinks (as data);
// devices, fifos and sockets are refused.
Status extract_typed(archive* a, archive_entry* e, int dir, const char* name, mode_t perm, const std::string& entry,
                     const LayerLimits& limits, LayerProgress& progress) {
  switch (archive_entry_filetype(e)) {
    case AE_IFDIR: {
      struct stat st {};
      if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
        if (auto s = remove_at(dir, name); !s.ok()) return s;
      if (::mkdirat(dir, name, perm | 0700) != 0 && errno != EEXIST)
        return bad(entry, std::string("mkdir: ") + std::strerror(errno));
      return {};
    }
    case AE_IFREG: {
      if (auto s = remove_at(dir, name); !s.ok()) return s;
      Fd fd(::openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (fd.get() < 0) return bad(entry, std::string("cannot create: ") + std::strerror(errno));
      if (auto s = write_data(a, fd.get(), entry, limits, progress); !s.ok()) return s;
      if (::fchmod(fd.get(), perm) != 0) return bad(entry, std::string("chmod: ") + std::strerror(errno));
      return {};
    }
    case AE_IFLNK: {
      // Created as data; nothing here ever resolves through it (the walk uses O_NOFOLLOW).
      const char* target = archive_entry_symlink(e);
      if (!target || !*target || std::strlen(target) > kMaxPath) return bad(entry, "symlink without a valid target");
      if (auto s = remove_at(dir, name); !s.ok()) return s;
      if (::symlinkat(target, dir, name) != 0) return bad(entry, std::string("symlink: ") + std::strerror(errno));
      return {};
    }
    case AE_IFCHR:
    case AE_IFBLK:
      return bad(entry, "device nodes are not allowed in an image");
    case AE_IFIFO:
      return bad(entry, "fifos are not allowed in an image");
    default:
      return bad(entry, "unsupported entry type (sockets and others are not allowed in an image)");
  }
}

Status extract_entry(archive* a, archive_entry* e, int root_fd, const LayerLimits& limits, LayerProgress& progress) {
  const char* raw = archive_entry_pathname(e);
  std::string entry = raw ? raw : "";
  auto parts = split(entry, entry);
  if (!parts.ok()) return parts.error();
  if (parts->empty()) return {};  // the layer's root folder itself
  const std::string& leaf = parts->back();

  // OCI whiteouts: ".wh..wh..opq" empties the folder, ".wh.NAME" deletes NAME.
  if (leaf.rfind(".wh.", 0) == 0) {
    auto parent = open_parent(root_fd, *parts, entry, true);
    if (!parent.ok()) return parent.error();
    if (leaf == ".wh..wh..opq") return remove_children(parent->get());
    std::string target = leaf.substr(4);
    if (target.empty() || target == "." || target == "..") return bad(entry, "malformed whiteout");
    return remove_at(parent->get(), target.c_str());
  }

  auto parent = open_parent(root_fd, *parts, entry, true);
  if (!parent.ok()) return parent.error();
  int dir = parent->get();
  const char* name = leaf.c_str();
  mode_t perm = archive_entry_perm(e) & 0777;  // setuid, setgid and sticky never survive

  if (const char* link = archive_entry_hardlink(e)) return extract_hardlink(root_fd, dir, name, link, entry);
  return extract_typed(a, e, dir, name, perm, entry, limits, progress);
}

}  // namespace

Status extract_layer(const std::filesystem::path& archive_path, int root_fd, const LayerLimits& limits,
                     LayerProgress& progress) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), archive_path.c_str(), 64 * 1024) != ARCHIVE_OK)
    return make_error(ErrorCode::kInvalidArgument, std::string("layer is not a tar archive: ") + why(a.get()));
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) return {};
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      return make_error(ErrorCode::kInvalidArgument, std::string("layer is not a valid tar archive: ") + why(a.get()));
    if (++progress.entries > limits.max_entries)
      return make_error(ErrorCode::kInvalidArgument, "image has more than " + std::to_string(limits.max_entries) + " entries");
    if (auto s = extract_entry(a.get(), e, root_fd, limits, progress); !s.ok()) return s;
  }
}

Status check_extracted_tree(const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0)
      return make_error(ErrorCode::kIo, "cannot inspect " + it->path().string() + ": " + std::strerror(errno));
    std::string rel = it->path().lexically_relative(root).string();
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
      return make_error(ErrorCode::kInvalidArgument, "image holds a special file: " + rel);
    if (st.st_mode & (S_ISUID | S_ISGID | S_ISVTX))
      return make_error(ErrorCode::kInvalidArgument, "image holds a file with a setuid, setgid or sticky bit: " + rel);
  }
  if (ec) return make_error(ErrorCode::kIo, "cannot walk " + root.string() + ": " + ec.message());
  return {};
}

}  // namespace dstackvmm::internal

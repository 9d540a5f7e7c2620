// SPDX-License-Identifier: Apache-2.0
// A VM's logs as /logs serves them: which file a channel is, its tail, and ANSI stripping.
#include <dstackvmm/vm_logs.hpp>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>

namespace dstackvmm {

std::string log_file_name(std::string_view channel) {
  if (channel.empty() || channel == "serial") return "serial.log";
  if (channel == "stdout") return "stdout.log";
  if (channel == "stderr") return "stderr.log";
  return "";
}

std::string tail_lines(std::string_view text, size_t lines) {
  if (lines == 0) return "";
  size_t end = text.size();
  size_t pos = end;
  size_t seen = 0;
  if (pos > 0 && text[pos - 1] == '\n') --pos;  // the final newline ends the last line
  while (pos > 0) {
    if (text[pos - 1] == '\n' && ++seen == lines) break;
    --pos;
  }
  return std::string(text.substr(pos));
}

Result<std::string> read_log_tail(const std::filesystem::path& path, size_t lines, size_t max_bytes, uint64_t* end) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open " + path.filename().string());
  in.seekg(0, std::ios::end);
  uint64_t size = static_cast<uint64_t>(std::max<std::streamoff>(0, in.tellg()));
  if (end) *end = size;
  if (lines == 0) return std::string();
  // Read blocks from the end until enough newlines (one more than lines: the last line ends
  // with one) or the byte budget is spent.
  constexpr size_t kBlock = 64 * 1024;
  std::string tail;
  uint64_t pos = size;
  size_t newlines = 0;
  while (pos > 0 && tail.size() < max_bytes && newlines <= lines) {
    size_t n = static_cast<size_t>(std::min<uint64_t>({kBlock, pos, max_bytes - tail.size()}));
    pos -= n;
    std::string block(n, '\0');
    in.seekg(static_cast<std::streamoff>(pos));
    in.read(block.data(), static_cast<std::streamsize>(n));
    block.resize(static_cast<size_t>(in.gcount()));
    for (char c : block) newlines += c == '\n';
    tail.insert(0, block);
  }
  return tail_lines(tail, lines);
}

std::string rfc3339_utc(uint64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

Result<bool> rotate_log(const std::filesystem::path& path, uint32_t max_backups, std::string_view stamp) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec || size == 0) return false;
  auto io = [&](const std::string& what) { return make_error(ErrorCode::kIo, "cannot rotate " + path.string() + ": " + what); };
  std::string note;
  if (max_backups == 0) {
    note = "\n===== discarded " + std::to_string(size) + " bytes @ " + std::string(stamp) + " =====\n";
  } else {
    auto backup = [&](uint32_t i) { return fs::path(path.string() + "." + std::to_string(i)); };
    fs::remove(backup(max_backups), ec);
    for (uint32_t i = max_backups - 1; i >= 1; --i) {
      if (fs::exists(backup(i), ec)) fs::rename(backup(i), backup(i + 1), ec);
      if (ec) return io(ec.message());
    }
    // A copy, not a rename: the writer keeps its file, which is truncated below.
    fs::copy_file(path, backup(1), fs::copy_options::overwrite_existing, ec);
    if (ec) return io(ec.message());
    size = fs::file_size(backup(1), ec);
    note = "\n===== rotated " + std::to_string(size) + " bytes to " + path.filename().string() + ".1 @ " +
           std::string(stamp) + " =====\n";
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return io(std::strerror(errno));
  bool ok = ::ftruncate(fd, 0) == 0 && ::write(fd, note.data(), note.size()) == static_cast<ssize_t>(note.size());
  int err = errno;
  ::close(fd);
  if (!ok) return io(std::strerror(err));
  return true;
}

std::shared_mutex& log_rotation_mutex() {
  static std::shared_mutex mu;
  return mu;
}

namespace {
// Whether the file system of `folder` can cut blocks from a file's start (ext4 and XFS can;
// tmpfs and btrfs cannot): tried once per file system on a scratch file.
bool can_collapse(const std::filesystem::path& folder, dev_t dev, uint64_t block) {
  static std::mutex mu;
  static std::map<dev_t, bool> known;
  std::lock_guard lock(mu);
  if (auto it = known.find(dev); it != known.end()) return it->second;
  std::string scratch = (folder / ".collapse-probe.XXXXXX").string();
  int fd = ::mkstemp(scratch.data());
  bool ok = false;
  if (fd >= 0) {
    ::unlink(scratch.c_str());
    std::string two(static_cast<size_t>(2 * block), 'x');
    ok = ::write(fd, two.data(), two.size()) == static_cast<ssize_t>(two.size()) &&
         ::fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, static_cast<off_t>(block)) == 0;
    ::close(fd);
  }
  known[dev] = ok;
  return ok;
}
}  // namespace

namespace {
// Copies the first `cut` bytes of `fd` to `staged`, closed by the rotation marker that says
// where the log goes on. False on any failure (the caller removes what was staged).
bool stage_cut(int fd, uint64_t cut, const std::filesystem::path& staged, const std::string& name, std::string_view stamp) {
  int out = ::open(staged.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (out < 0) return false;
  std::string buf(1 << 16, '\0');
  bool ok = true;
  for (uint64_t at = 0; ok && at < cut;) {
    ssize_t n = ::pread(fd, buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), cut - at)), static_cast<off_t>(at));
    ok = n > 0 && ::write(out, buf.data(), static_cast<size_t>(n)) == n;
    at += n > 0 ? static_cast<uint64_t>(n) : 0;
  }
  std::string note = "\n===== rotated " + std::to_string(cut) + " bytes to " + name + ".1 @ " + std::string(stamp) +
                     "; the log goes on in " + name + " =====\n";
  ok = ok && ::write(out, note.data(), note.size()) == static_cast<ssize_t>(note.size());
  ::close(out);
  return ok;
}
}  // namespace

Result<bool> rotate_live_log(const std::filesystem::path& path, uint32_t max_backups, std::string_view stamp, uint64_t* moved) {
  namespace fs = std::filesystem;
  if (moved) *moved = 0;
  auto io = [&](const std::string& what) { return make_error(ErrorCode::kIo, "cannot rotate " + path.string() + ": " + what); };
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return errno == ENOENT ? Result<bool>(false) : io(std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return io("not a regular file");
  }
  uint64_t block = st.st_blksize > 0 ? static_cast<uint64_t>(st.st_blksize) : 4096;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  // Whole blocks, and strictly before the end (the kernel refuses a range that reaches it).
  uint64_t cut = size / block * block;
  if (cut >= size && cut > 0) cut -= block;
  if (!can_collapse(path.parent_path(), st.st_dev, block)) {
    ::close(fd);
    return rotate_log(path, max_backups, stamp);
  }
  if (cut == 0) {  // not a whole block before its end yet: nothing to cut (and nothing to lose)
    ::close(fd);
    return false;
  }
  std::error_code ec;
  auto backup = [&](uint32_t i) { return fs::path(path.string() + "." + std::to_string(i)); };
  fs::path staged = path.string() + ".rotating";
  // The blocks to cut go to a staged copy first: nothing is cut unless it is kept.
  if (max_backups > 0 && !stage_cut(fd, cut, staged, path.filename().string(), stamp)) {
    ::close(fd);
    fs::remove(staged, ec);
    return io("cannot stage the backup");
  }
  std::unique_lock rotating(log_rotation_mutex());
  if (max_backups > 0) {
    fs::remove(backup(max_backups), ec);
    for (uint32_t i = max_backups - 1; i >= 1; --i)
      if (fs::exists(backup(i), ec)) fs::rename(backup(i), backup(i + 1), ec);
    fs::rename(staged, backup(1), ec);
    if (ec) {
      ::close(fd);
      return io(ec.message());
    }
  }
  int rc = ::fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, static_cast<off_t>(cut));
  int err = errno;
  ::close(fd);
  // The file system said it could: a failure now leaves the blocks in both files, lost nowhere.
  if (rc != 0) return io(std::string("cannot cut the rotated blocks: ") + std::strerror(err));
  if (moved) *moved = cut;
  return true;
}

std::string strip_ansi(std::string_view t) {
  std::string out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '\x1b') {
      out += t[i];
      continue;
    }
    if (i + 1 < t.size() && t[i + 1] == '[') {  // CSI: ESC [ params final-byte
      i += 2;
      while (i < t.size() && !(t[i] >= 0x40 && t[i] <= 0x7e)) ++i;
    } else if (i + 1 < t.size() && t[i + 1] == ']') {  // OSC: ESC ] ... BEL or ESC backslash
      i += 2;
      while (i < t.size() && t[i] != '\x07' && !(t[i] == '\x1b' && i + 1 < t.size() && t[i + 1] == '\\')) ++i;
      if (i < t.size() && t[i] == '\x1b') ++i;
    } else {
      ++i;  // a two-byte escape
    }
  }
  return out;
}

}  // namespace dstackvmm

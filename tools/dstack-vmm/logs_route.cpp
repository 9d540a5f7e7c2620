// SPDX-License-Identifier: Apache-2.0
// GET /logs: a VM's serial/stdout/stderr as a text stream (tail, follow, heartbeat, ansi).
#include "logs_route.hpp"

#include <sys/stat.h>

#include <chrono>
#include <optional>
#include <shared_mutex>
#include <fstream>
#include <thread>

#include <dstackvmm/vm_logs.hpp>

namespace dstackvmm::daemon {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kHeartbeat = std::chrono::seconds(60);
constexpr auto kPoll = std::chrono::milliseconds(200);

struct Stream {
  std::filesystem::path path;
  size_t lines = 10000;
  bool follow = false;
  bool ansi = true;
  bool started = false;
  std::uintmax_t offset = 0;
  std::string head;  // the file's first bytes as last seen: a rotation changes them
  ino_t backup = 0;  // <name>.1 as last seen: each rotation makes a new one
  std::uintmax_t pending_backup_from = 0, pending_backup_end = 0;  // of .1, still to send
  Clock::time_point last_data = Clock::now();
};

constexpr size_t kHeadBytes = 64;

ino_t inode_of(const std::filesystem::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

// N of a backup's closing "===== rotated N bytes to <name>.1 @ T; the log goes on in <name>
// =====" (rotate_live_log: the live file lost its first N bytes and kept the rest); nullopt
// for a backup of a copy-and-truncate rotation.
std::optional<uint64_t> cut_of(const std::filesystem::path& backup, uint64_t size) {
  std::ifstream in(backup, std::ios::binary);
  uint64_t from = size > 512 ? size - 512 : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string tail(static_cast<size_t>(size - from), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  constexpr std::string_view kMark = "\n===== rotated ";
  auto at = tail.rfind(kMark);
  if (at == std::string::npos || tail.find("; the log goes on in ", at) == std::string::npos) return std::nullopt;
  return std::strtoull(tail.c_str() + at + kMark.size(), nullptr, 10);
}

std::string read_head(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string data(kHeadBytes, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

constexpr size_t kMaxTailBytes = 8u << 20;   // what one /logs answer starts with, at most
constexpr size_t kMaxChunk = 1u << 20;        // what one follow step reads, at most

// At most kMaxChunk bytes from `offset` on; a log that grew by a gigabyte is sent in steps.
std::string read_from(const std::filesystem::path& p, std::uintmax_t offset, std::uintmax_t size) {
  std::ifstream in(p, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string data(static_cast<size_t>(std::min<std::uintmax_t>(size - offset, kMaxChunk)), '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

bool param_true(const httplib::Request& req, const char* key, bool fallback) {
  if (!req.has_param(key)) return fallback;
  std::string v = req.get_param_value(key);
  return v == "true" || v == "1" || v.empty();
}

// The next piece of a followed log, looked at under log_rotation_mutex (a rotation is seen
// whole or not at all) and sent by the caller after it lets go: "" when nothing is new.
std::string next_piece(Stream& s) {
  std::shared_lock rotation(log_rotation_mutex());
  std::error_code ec;
  auto size = std::filesystem::file_size(s.path, ec);
  if (ec) return "";
  std::filesystem::path backup = s.path.string() + ".1";
  // A rotation of the running VM (rotate_live_log) cut the live file's first N bytes into a
  // new .1: what of them was not sent yet is sent from .1, and the live file goes on where we
  // were, N bytes earlier. Nothing is lost or sent twice, and .1's closing marker is not sent:
  // the cut falls on a block, mostly inside a line, which the stream keeps whole.
  if (ino_t now = inode_of(backup); now != 0 && now != s.backup) {
    s.backup = now;
    std::error_code bec;
    auto backup_size = std::filesystem::file_size(backup, bec);
    if (auto cut = bec ? std::nullopt : cut_of(backup, backup_size)) {
      std::uintmax_t from = std::min<std::uintmax_t>(s.offset, *cut);
      s.offset = s.offset > *cut ? s.offset - *cut : 0;
      s.head = read_head(s.path);
      s.pending_backup_from = from;  // sent in pieces by the calls that follow
      s.pending_backup_end = std::min<std::uintmax_t>(*cut, backup_size);
    }
  }
  if (s.pending_backup_from < s.pending_backup_end) {
    std::string part = read_from(backup, s.pending_backup_from, s.pending_backup_end);
    s.pending_backup_from = part.empty() ? s.pending_backup_end : s.pending_backup_from + part.size();
    if (!part.empty()) return part;
  }
  // A copy-and-truncate rotation (rotate_log: at a boot, or where blocks cannot be cut)
  // leaves the file shorter than our offset, or beginning differently. What came after our
  // offset went to .1; it is sent first, then the live file from its start.
  std::string head = read_head(s.path);
  size_t common = std::min(head.size(), s.head.size());
  if (size < s.offset || head.compare(0, common, s.head, 0, common) != 0) {
    std::error_code bec;
    auto backup_size = std::filesystem::file_size(backup, bec);
    std::string missed;
    if (!bec && backup_size > s.offset) missed = read_from(backup, s.offset, backup_size);
    s.offset = 0;
    s.head.clear();
    return missed;
  }
  if (head.size() > s.head.size()) s.head = head;
  if (size > s.offset) {
    std::string data = read_from(s.path, s.offset, size);
    s.offset += data.size();
    return data;
  }
  return "";
}

}  // namespace

std::shared_ptr<void> FollowerSlots::try_acquire() {
  if (used_->fetch_add(1) >= capacity_) {
    used_->fetch_sub(1);
    return nullptr;
  }
  return std::shared_ptr<void>(used_.get(), [used = used_](void*) { used->fetch_sub(1); });
}

void serve_logs(const VmManager& vmm, FollowerSlots& slots, const httplib::Request& req, httplib::Response& res) {
  auto path = vmm.log_path(req.get_param_value("id"), req.get_param_value("ch"));
  if (!path.ok()) {
    res.status = path.error().code == ErrorCode::kNotFound ? 404 : 400;
    res.set_content(path.error().message, "text/plain; charset=utf-8");
    return;
  }
  auto s = std::make_shared<Stream>();
  s->path = *path;
  s->follow = param_true(req, "follow", false);
  if (s->follow) {
    // cpp-httplib gzips text/* for clients that accept it (browsers do), and its compressor holds
    // output back until a block fills: a follower would see nothing for minutes. The request
    // object is httplib's own, not const, so dropping the header before the reply is written is
    // defined; a followed log goes out uncompressed.
    const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
  }
  s->ansi = param_true(req, "ansi", true);
  if (req.has_param("lines")) {
    try {
      s->lines = std::stoul(req.get_param_value("lines"));
    } catch (const std::exception&) {
      res.status = 400;
      res.set_content("invalid lines: " + req.get_param_value("lines"), "text/plain; charset=utf-8");
      return;
    }
  }
  std::shared_ptr<void> slot;
  if (s->follow && !(slot = slots.try_acquire())) {
    res.status = 503;
    res.set_content("too many /logs followers (" + std::to_string(slots.capacity()) +
                        " at once, max_blocking); try again later or read without follow", "text/plain; charset=utf-8");
    return;
  }
  res.set_chunked_content_provider("text/plain; charset=utf-8", [s, slot](size_t, httplib::DataSink& sink) {
    auto send = [&](std::string text) {
      if (!s->ansi) text = strip_ansi(text);
      return text.empty() || sink.write(text.data(), text.size());
    };
    if (!s->started) {
      s->started = true;
      std::error_code ec;
      (void)std::filesystem::file_size(s->path, ec);
      if (ec) {
        send("cannot open " + s->path.filename().string() + ": " + ec.message() + "\n");
        sink.done();
        return true;
      }
      uint64_t end = 0;
      s->head = read_head(s->path);
      s->backup = inode_of(s->path.string() + ".1");
      auto tail = read_log_tail(s->path, s->lines, kMaxTailBytes, &end);
      s->offset = end;
      if (!send(tail.ok() ? *tail : tail.error().message + "\n")) return false;
      if (!s->follow) sink.done();
      return true;
    }
    if (!sink.is_writable()) return false;
    std::string out = next_piece(*s);  // what to send now, taken under the rotation lock
    if (!out.empty()) {
      s->last_data = Clock::now();
      return send(std::move(out));
    }
    if (Clock::now() - s->last_data >= kHeartbeat) {
      s->last_data = Clock::now();
      return send("[vmm heartbeat]\n");
    }
    std::this_thread::sleep_for(kPoll);  // the provider is polled again on return
    return true;
  });
}

}  // namespace dstackvmm::daemon

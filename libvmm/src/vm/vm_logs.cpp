// SPDX-License-Identifier: Apache-2.0
// A VM's logs as /logs serves them: which file a channel is, its tail, and ANSI stripping.
#include <dstackvmm/vm_logs.hpp>

#include <algorithm>
#include <fstream>

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

// SPDX-License-Identifier: Apache-2.0
// A VM's logs as /logs serves them: which file a channel is, its tail, and ANSI stripping.
#include <dstackvmm/vm_logs.hpp>

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

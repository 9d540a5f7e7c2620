// SPDX-License-Identifier: Apache-2.0
// QEMU's version (qemu_version.hpp).
#include "qemu/qemu_version.hpp"

#include <sys/stat.h>

#include <cctype>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "process/run_command.hpp"

namespace dstackvmm::internal {

namespace {

bool looks_like_version(const std::string& w) {
  if (w.empty() || !std::isdigit(static_cast<unsigned char>(w[0]))) return false;
  if (w.find('.') != std::string::npos) return true;
  for (char c : w)
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '-') return false;
  return true;
}

}  // namespace

Result<std::string> parse_qemu_version_output(std::string_view output) {
  std::string line(output.substr(0, output.find('\n')));
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  std::optional<std::string> found;
  for (size_t i = 0; i + 1 < words.size() && !found; ++i)
    if (words[i] == "version" && looks_like_version(words[i + 1])) found = words[i + 1];
  for (size_t i = 0; i < words.size() && !found; ++i)
    if (looks_like_version(words[i])) found = words[i];
  if (!found) return make_error(ErrorCode::kQemu, "Could not parse QEMU version from output");
  return found->substr(0, found->find('+'));
}

Result<std::string> detect_qemu_version(const std::string& qemu, std::chrono::milliseconds timeout) {
  static std::mutex mu;
  static std::map<std::string, std::pair<std::string, Result<std::string>>> known;  // path -> (stamp, answer)
  struct stat st {};
  std::string stamp = ::stat(qemu.c_str(), &st) == 0
                          ? std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec)
                          : "";
  {
    std::lock_guard lock(mu);
    if (auto it = known.find(qemu); it != known.end() && it->second.first == stamp && !stamp.empty()) return it->second.second;
  }
  auto out = run_command_output({qemu, "--version"}, "QEMU version command failed", timeout);
  Result<std::string> version = out.ok() ? parse_qemu_version_output(*out) : Result<std::string>(out.error());
  std::lock_guard lock(mu);
  if (known.size() > 16) known.clear();
  known.insert_or_assign(qemu, std::make_pair(stamp, version));
  return version;
}

}  // namespace dstackvmm::internal

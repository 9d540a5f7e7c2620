// SPDX-License-Identifier: Apache-2.0
// An image's measurement material (image_material.hpp), as upstream's Image::load reads it.
#include "tee/image_material.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "base/json_limits.hpp"
#include "base/text_util.hpp"

namespace dstackvmm::internal {

namespace {

constexpr size_t kMaxMaterialFile = 16u << 20;

// The file's bytes, nullopt when it does not exist. Read through one descriptor, size
// checked on it: a FIFO or a huge file at a material's name never blocks or floods a start.
Result<std::optional<std::string>> read_optional(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<std::string>();
    return make_error(ErrorCode::kIo, "failed to read " + path.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidArgument, "failed to read " + path.string() + ": not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxMaterialFile) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidArgument, path.string() + " is larger than " + std::to_string(kMaxMaterialFile >> 20) + " MiB");
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return std::optional<std::string>(std::move(out));
}

// A minimal, bounded CBOR walk: enough to find one byte-string value of a top-level map.
struct Cbor {
  const std::string& d;
  size_t at = 0;
  std::string error;

  bool head(uint8_t* major, uint64_t* arg) {
    if (at >= d.size()) return fail("unexpected end of input");
    uint8_t b = static_cast<uint8_t>(d[at++]);
    *major = b >> 5;
    uint8_t info = b & 0x1f;
    if (info < 24) {
      *arg = info;
      return true;
    }
    if (info > 27) return fail("indefinite lengths are not supported");
    size_t n = size_t{1} << (info - 24);
    if (at + n > d.size()) return fail("unexpected end of input");
    *arg = 0;
    for (size_t i = 0; i < n; ++i) *arg = (*arg << 8) | static_cast<uint8_t>(d[at++]);
    return true;
  }
  bool fail(std::string why) {
    if (error.empty()) error = std::move(why);
    return false;
  }
  bool bytes(uint64_t n, std::string* out) {
    if (n > d.size() - at) return fail("unexpected end of input");
    if (out) *out = d.substr(at, static_cast<size_t>(n));
    at += static_cast<size_t>(n);
    return true;
  }
  bool skip(int depth) {
    if (depth > 16) return fail("nested too deeply");
    uint8_t major;
    uint64_t arg;
    if (!head(&major, &arg)) return false;
    switch (major) {
      case 2: case 3: return bytes(arg, nullptr);
      case 4: for (uint64_t i = 0; i < arg; ++i) if (!skip(depth + 1)) return false; return true;
      case 5: for (uint64_t i = 0; i < 2 * arg; ++i) if (!skip(depth + 1)) return false; return true;
      case 6: return skip(depth + 1);
      default: return true;  // integers and simple values carry no payload beyond the head
    }
  }
};

}  // namespace

Result<MeasurementMaterial> load_measurement_material(const std::filesystem::path& dir) {
  MeasurementMaterial m;
  auto file = [&](const char* name) { return read_optional(dir / name); };
  if (auto d = file("digest.txt"); d.ok() && *d) {  // read errors: absent, as upstream
    std::string s = **d;
    size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
    m.digest = b == std::string::npos ? "" : s.substr(b, e - b + 1);
  }
  auto sums = file("sha256sum.txt");
  if (!sums.ok()) return sums.error();
  m.sha256sum = std::move(*sums);
  struct Doc {
    const char* name;
    std::optional<std::string>* out;
  };
  for (Doc doc : {Doc{"measurement.tdx.cbor", &m.tdx}, Doc{"measurement.snp.cbor", &m.snp}, Doc{"measurement.gcp.cbor", &m.gcp},
                  Doc{"measurement.aws.cbor", &m.aws}}) {
    auto r = file(doc.name);
    if (!r.ok()) return r.error();
    if (m.sha256sum) *doc.out = std::move(*r);
  }
  auto replay = file("measurement.aws.replay.json");
  if (!replay.ok()) return replay.error();
  m.aws_replay_json = std::move(*replay);
  auto log = file("measurement.gcp.eventlog.bin");
  if (!log.ok()) return log.error();
  m.gcp_event_log = std::move(*log);
  return m;
}

Result<AwsPcrReplay> parse_aws_pcr_replay(const std::string& text, const std::string& what) {
  auto bad = [&](std::string why) { return make_error(ErrorCode::kInvalidArgument, "failed to parse " + what + ": " + why); };
  std::string why;
  nlohmann::json j = parse_json(text, {}, &why);
  if (j.is_discarded()) return bad(why);
  if (!j.is_object()) return bad("expected an object");
  AwsPcrReplay r;
  auto hex = [&](const nlohmann::json& o, const char* key, std::string* out) -> Status {
    if (!o.contains(key) || !o[key].is_string()) return bad(std::string("missing field `") + key + "` (hex)");
    auto bytes = from_hex(o[key].get<std::string>());
    if (!bytes || starts_with(o[key].get<std::string>(), "0x")) return bad(std::string("`") + key + "` is not hex");
    *out = *bytes;
    return {};
  };
  if (!j.contains("version") || !j["version"].is_number_unsigned() || j["version"].get<uint64_t>() > UINT32_MAX)
    return bad("missing field `version` (an unsigned integer)");
  r.version = j["version"].get<uint32_t>();
  if (!j.contains("events") || !j["events"].is_array()) return bad("missing field `events` (a list)");
  for (const auto& e : j["events"]) {
    AwsPcrReplay::Event ev;
    if (!e.is_object() || !e.contains("pcr") || !e["pcr"].is_number_unsigned() || e["pcr"].get<uint64_t>() > UINT16_MAX)
      return bad("an event has no `pcr` (0-65535)");
    ev.pcr = e["pcr"].get<uint16_t>();
    if (!e.contains("event_type") || !e["event_type"].is_string()) return bad("an event has no `event_type` (a string)");
    ev.event_type = e["event_type"].get<std::string>();
    if (auto s = hex(e, "digest", &ev.digest); !s.ok()) return s.error();
    r.events.push_back(std::move(ev));
  }
  for (auto [key, out] : {std::pair{"pcr4", &r.pcr4}, std::pair{"pcr7", &r.pcr7}, std::pair{"pcr12", &r.pcr12}})
    if (auto s = hex(j, key, out); !s.ok()) return s.error();
  return r;
}

Result<std::string> aws_boot_pcr_digest(const std::string& cbor) {
  auto bad = [](std::string why) { return make_error(ErrorCode::kInvalidArgument, "AwsOsImageMeasurement: " + why); };
  Cbor c{cbor};
  uint8_t major;
  uint64_t count;
  if (!c.head(&major, &count)) return bad("failed to decode CBOR: " + c.error);
  if (major != 5) return bad("failed to decode CBOR: expected a map");
  std::optional<std::string> digest;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t len;
    std::string key;
    if (!c.head(&major, &len) || major != 3 || !c.bytes(len, &key))
      return bad("failed to decode CBOR: " + (c.error.empty() ? std::string("expected a text key") : c.error));
    size_t value_at = c.at;
    if (key == "boot_pcr_digest" && c.head(&major, &len) && major == 2) {
      std::string value;
      if (!c.bytes(len, &value)) return bad("failed to decode CBOR: " + c.error);
      digest = value;
      continue;
    }
    c.at = value_at;
    c.error.clear();
    if (!c.skip(0)) return bad("failed to decode CBOR: " + c.error);
  }
  if (!digest) return bad("failed to decode CBOR: missing field `boot_pcr_digest`");
  if (digest->size() != 32) return bad("boot_pcr_digest has invalid length " + std::to_string(digest->size()) + ", expected 32");
  return *digest;
}

}  // namespace dstackvmm::internal

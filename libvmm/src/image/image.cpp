// SPDX-License-Identifier: Apache-2.0
// Guest images: folders under [image] path with a metadata.json and the files it names.
#include <dstackvmm/image.hpp>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "base/json_limits.hpp"
#include "base/fs_util.hpp"

namespace dstackvmm {

namespace fs = std::filesystem;
using nlohmann::json;

Status validate_image_name(std::string_view name) {
  // A name is one folder under the image path: never ".", "..", a hidden folder (pulls in
  // progress live in ".tmp-pull-*") or anything with a separator.
  bool ok = !name.empty() && name.size() <= 64 && name.find("..") == std::string_view::npos && name.front() != '.';
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  if (!ok) return make_error(ErrorCode::kInvalidArgument, "Invalid image name: " + std::string(name));
  return {};
}

std::optional<std::array<uint16_t, 3>> parse_image_version(std::string_view v) {
  std::array<uint16_t, 3> out{};
  for (size_t i = 0; i < 3; ++i) {
    size_t end = v.find('.');
    std::string_view part = v.substr(0, end);
    if (part.empty() || part.size() > 5) return std::nullopt;
    uint32_t n = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    if (n > 65535) return std::nullopt;
    out[i] = static_cast<uint16_t>(n);
    if (end == std::string_view::npos) {
      if (i < 2) return std::nullopt;
      break;
    }
    v.remove_prefix(end + 1);
  }
  return out;
}

namespace {

Result<fs::path> artefact(const fs::path& dir, const std::string& rel, const char* label) {
  fs::path p = dir / rel;
  std::error_code ec;
  if (!fs::exists(p, ec))
    return make_error(ErrorCode::kNotFound, std::string(label) + " does not exist: " + p.string());
  fs::path canon = fs::canonical(p, ec);
  if (ec) return make_error(ErrorCode::kIo, std::string(label) + ": " + ec.message());
  auto [d, c] = std::mismatch(dir.begin(), dir.end(), canon.begin(), canon.end());
  if (d != dir.end())
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(label) + " escapes image directory: " + rel);
  if (!fs::is_regular_file(canon, ec))
    return make_error(ErrorCode::kInvalidArgument, std::string(label) + " is not a file: " + rel);
  return canon;
}

std::optional<std::string> opt_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) throw std::invalid_argument(std::string(key) + " must be a string");
  return it->get<std::string>();
}

// metadata.json's fields; an unknown ovmf_variant fails the image.
Result<ImageMetadata> read_metadata(const json& j) {
  ImageMetadata m;
  try {
    auto kernel = opt_string(j, "kernel");
    auto initrd = opt_string(j, "initrd");
    if (!kernel) return make_error(ErrorCode::kInvalidArgument, "metadata.json has no kernel");
    if (!initrd) return make_error(ErrorCode::kInvalidArgument, "metadata.json has no initrd");
    m.kernel = *kernel;
    m.initrd = *initrd;
    m.cmdline = opt_string(j, "cmdline");
    m.hda = opt_string(j, "hda");
    m.rootfs = opt_string(j, "rootfs");
    m.bios = opt_string(j, "bios");
    m.bios_sev = opt_string(j, "bios-sev");
    m.rootfs_hash = opt_string(j, "rootfs_hash");
    m.ovmf_variant = opt_string(j, "ovmf_variant");
    // The firmware's measurement layout, handed to verifiers in vm_config: an unknown one
    // fails the image, as upstream's ImageInfo fails to parse it. stable202505 is what
    // upstream's later images (0.5.9 on) declare.
    if (m.ovmf_variant && *m.ovmf_variant != "pre202505" && *m.ovmf_variant != "stable202505")
      throw std::invalid_argument("ovmf_variant \"" + *m.ovmf_variant + "\" is not one of pre202505, stable202505");
    m.version = opt_string(j, "version").value_or("");
    m.shared_ro = j.value("shared_ro", false);
    m.is_dev = j.value("is_dev", false);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("metadata.json: ") + e.what());
  }
  return m;
}

// The files metadata.json names, each checked to stay inside the image's folder.
Status find_artefacts(Image& img) {
  const ImageMetadata& m = img.metadata;
  auto kernel = artefact(img.dir, m.kernel, "Kernel");
  if (!kernel.ok()) return kernel.error();
  img.kernel = *kernel;
  auto initrd = artefact(img.dir, m.initrd, "Initrd");
  if (!initrd.ok()) return initrd.error();
  img.initrd = *initrd;
  struct Opt {
    const std::optional<std::string>& rel;
    std::optional<fs::path>& out;
    const char* label;
  };
  for (Opt o : {Opt{m.hda, img.hda, "Hda"}, Opt{m.rootfs, img.rootfs, "Rootfs"},
                Opt{m.bios, img.bios, "Bios"}, Opt{m.bios_sev, img.bios_sev, "SEV bios"}}) {
    if (!o.rel) continue;
    auto p = artefact(img.dir, *o.rel, o.label);
    if (!p.ok()) return p.error();
    o.out = *p;
  }
  return {};
}

// metadata.json as GetInfo and the image listing describe it (upstream's field order and nulls).
std::string metadata_description(const ImageMetadata& m) {
  json desc{{"kernel", m.kernel}, {"initrd", m.initrd}, {"cmdline", m.cmdline ? json(*m.cmdline) : json()},
            {"hda", m.hda ? json(*m.hda) : json()}, {"rootfs", m.rootfs ? json(*m.rootfs) : json()},
            {"bios", m.bios ? json(*m.bios) : json()}, {"shared_ro", m.shared_ro},
            {"version", m.version}, {"is_dev", m.is_dev}};
  if (m.bios_sev) desc["bios-sev"] = *m.bios_sev;
  if (m.rootfs_hash) desc["rootfs_hash"] = *m.rootfs_hash;
  if (m.ovmf_variant) desc["ovmf_variant"] = *m.ovmf_variant;
  return desc.dump();
}

Result<Image> load(const fs::path& root, std::string_view name) {
  if (auto s = validate_image_name(name); !s.ok()) return s.error();
  Image img;
  img.name = std::string(name);
  std::error_code ec;
  img.dir = fs::canonical(root / std::string(name), ec);
  if (ec) return make_error(ErrorCode::kNotFound, "not found in " + root.string());
  auto text = internal::read_file(img.dir / "metadata.json");
  if (!text.ok()) return text.error();
  json j = internal::parse_json(*text);
  if (!j.is_object()) return make_error(ErrorCode::kInvalidArgument, "metadata.json is not a JSON object");
  auto meta = read_metadata(j);
  if (!meta.ok()) return meta.error();
  img.metadata = std::move(*meta);
  const ImageMetadata& m = img.metadata;
  img.version = m.version;
  if (img.version.empty()) {
    for (std::string_view prefix : {"dstack-dev-", "dstack-"})
      if (name.substr(0, prefix.size()) == prefix) {
        img.version = std::string(name.substr(prefix.size()));
        break;
      }
  }
  if (auto s = find_artefacts(img); !s.ok()) return s.error();
  if (auto d = internal::read_file(img.dir / "digest.txt"); d.ok()) {
    std::string s = *d;
    s.erase(s.find_last_not_of(" \t\r\n") + 1);
    s.erase(0, s.find_first_not_of(" \t\r\n") == std::string::npos ? s.size() : s.find_first_not_of(" \t\r\n"));
    img.digest = s;
  }
  img.metadata_json = metadata_description(m);
  return img;
}

}  // namespace

Result<Image> load_image(const fs::path& root, std::string_view name) {
  auto r = load(root, name);
  if (!r.ok()) return r.error().context("image '" + std::string(name) + "'");
  return r;
}

Result<ImageListing> list_images(const fs::path& root) {
  std::error_code ec;
  fs::directory_iterator it(root, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot read image folder " + root.string() + ": " + ec.message());
  ImageListing out;
  for (const auto& entry : it) {
    if (!entry.is_directory(ec)) continue;
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // .tmp-pull-* and other work folders
    auto img = load(root, name);
    if (img.ok()) out.images.push_back(std::move(*img));
    else out.problems.push_back({name, img.error().message});
  }
  std::sort(out.images.begin(), out.images.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::sort(out.problems.begin(), out.problems.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace dstackvmm

// SPDX-License-Identifier: Apache-2.0
// Guest images: folders under [image] path with a metadata.json and the files it names.
#pragma once

#include <dstackvmm/export.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dstackvmm/error.hpp>

namespace dstackvmm {

// metadata.json, field by field (upstream names; `bios-sev` has a dash on disk).
struct ImageMetadata {
  std::string kernel;
  std::string initrd;
  std::optional<std::string> cmdline, hda, rootfs, bios, bios_sev, rootfs_hash, ovmf_variant;
  bool shared_ro = false;  // 9p read-only, and "the guest reports boot progress"
  std::string version;
  bool is_dev = false;
};

struct Image {
  std::string name;           // the folder's name, used as VmConfiguration.image
  std::filesystem::path dir;  // canonical
  ImageMetadata metadata;
  std::string version;  // metadata version, or guessed from a dstack-X / dstack-dev-X name
  // Artefacts resolved to canonical paths inside `dir`.
  std::filesystem::path kernel, initrd;
  std::optional<std::filesystem::path> hda, rootfs, bios, bios_sev;
  std::string digest;         // digest.txt, trimmed ("" when absent)
  std::string metadata_json;  // metadata as JSON, for ImageInfo.description
};

struct ImageProblem {
  std::string name;
  std::string reason;
};

// Good images, sorted by name, and every folder that failed with its reason. A broken image
// never hides the good ones.
struct ImageListing {
  std::vector<Image> images;
  std::vector<ImageProblem> problems;
};

// Names are <= 64 chars of [A-Za-z0-9._-] without "..": "Invalid image name: <n>".
DSTACKVMM_EXPORT Status validate_image_name(std::string_view name);

// Loads `<root>/<name>`. Errors name the image and the reason, e.g.
// "image 'x': Kernel does not exist: <path>" (kNotFound) or "... escapes image directory".
DSTACKVMM_EXPORT Result<Image> load_image(const std::filesystem::path& root, std::string_view name);

// kIo only when `root` itself cannot be read.
DSTACKVMM_EXPORT Result<ImageListing> list_images(const std::filesystem::path& root);

// "0.5.4" -> {0,5,4}; fewer than three parts or any part not a u16 -> nullopt.
DSTACKVMM_EXPORT std::optional<std::array<uint16_t, 3>> parse_image_version(std::string_view version);

}  // namespace dstackvmm

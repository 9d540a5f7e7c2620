// SPDX-License-Identifier: Apache-2.0
// Images: loading, artefact rules, versions, and listings where broken images never hide good ones.
#include <catch2/catch.hpp>

#include <fstream>

#include <dstackvmm/image.hpp>

#include "../support/temp_dir.hpp"

using namespace dstackvmm;
namespace fs = std::filesystem;

namespace {
void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}
void good_image(const fs::path& root, const std::string& name, const std::string& extra = "") {
  write(root / name / "metadata.json",
        R"({"kernel":"bzImage","initrd":"initrd.gz","cmdline":"console=ttyS0","version":"0.5.4","shared_ro":true)" + extra + "}");
  write(root / name / "bzImage", "k");
  write(root / name / "initrd.gz", "i");
}
}  // namespace

TEST_CASE("an image loads with canonical artefact paths", "[image]") {
  testing::TempDir dir("img");
  good_image(dir.path(), "dstack-0.5.4", R"(,"bios":"ovmf.fd","rootfs":"rootfs.img.verity")");
  write(dir.path() / "dstack-0.5.4/ovmf.fd", "b");
  write(dir.path() / "dstack-0.5.4/rootfs.img.verity", "r");
  write(dir.path() / "dstack-0.5.4/digest.txt", "  abcd\n");
  auto img = load_image(dir.path(), "dstack-0.5.4");
  INFO((img.ok() ? "" : img.error().message));
  REQUIRE(img.ok());
  CHECK(img->kernel == fs::canonical(dir.path() / "dstack-0.5.4/bzImage"));
  CHECK(img->bios);
  CHECK(img->rootfs);
  CHECK_FALSE(img->hda);
  CHECK(img->metadata.shared_ro);
  CHECK(img->version == "0.5.4");
  CHECK(img->digest == "abcd");
}

TEST_CASE("broken images are reported by name and never hide good ones", "[image]") {
  testing::TempDir dir("img");
  good_image(dir.path(), "good");
  write(dir.path() / "no-kernel/metadata.json", R"({"kernel":"missing","initrd":"i"})");
  write(dir.path() / "bad-json/metadata.json", "{");
  write(dir.path() / "secret", "s");
  write(dir.path() / "escape/metadata.json", R"({"kernel":"../secret","initrd":"i"})");
  fs::create_directories(dir.path() / "link");
  write(dir.path() / "link/metadata.json", R"({"kernel":"k","initrd":"i"})");
  fs::create_symlink(dir.path() / "secret", dir.path() / "link/k");
  fs::create_directories(dir.path() / ".tmp-pull-x");
  auto list = list_images(dir.path());
  REQUIRE(list.ok());
  REQUIRE(list->images.size() == 1);
  CHECK(list->images[0].name == "good");
  REQUIRE(list->problems.size() == 4);
  CHECK(list->problems[0].name == "bad-json");
  CHECK(list->problems[0].reason == "metadata.json is not a JSON object");
  CHECK(list->problems[1].reason == "Kernel escapes image directory: ../secret");
  CHECK(list->problems[2].reason == "Kernel escapes image directory: k");
  CHECK(list->problems[3].reason.rfind("Kernel does not exist: ", 0) == 0);
  CHECK(load_image(dir.path(), "no-kernel").error().message.rfind("image 'no-kernel': Kernel does not exist", 0) == 0);
  CHECK(load_image(dir.path(), "../x").error().message == "image '../x': Invalid image name: ../x");
  CHECK(list_images(dir.path() / "none").error().code == ErrorCode::kIo);
}

TEST_CASE("image versions parse as upstream does", "[image]") {
  CHECK(parse_image_version("0.0.0") == std::array<uint16_t, 3>{0, 0, 0});
  CHECK(parse_image_version("65535.1.2") == std::array<uint16_t, 3>{65535, 1, 2});
  CHECK_FALSE(parse_image_version("1.2"));
  CHECK_FALSE(parse_image_version("1.2.invalid"));
  CHECK_FALSE(parse_image_version("65536.1.2"));
  testing::TempDir dir("img");
  write(dir.path() / "dstack-dev-1.2.3/metadata.json", R"({"kernel":"k","initrd":"i"})");
  write(dir.path() / "dstack-dev-1.2.3/k", "");
  write(dir.path() / "dstack-dev-1.2.3/i", "");
  CHECK(load_image(dir.path(), "dstack-dev-1.2.3")->version == "1.2.3");
}

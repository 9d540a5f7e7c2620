// SPDX-License-Identifier: Apache-2.0
// Empty disks from templates: the first of a size made by the real qemu-img, the next copied,
// byte for byte what qemu-img itself gives; a template that went is made again.
#include <catch2/catch.hpp>

#include <filesystem>

#include "../support/temp_dir.hpp"
#include "base/fs_util.hpp"
#include "process/run_command.hpp"
#include "vm/disk_templates.hpp"

using namespace dstackvmm::internal;
namespace fs = std::filesystem;

namespace {
std::string bytes(const fs::path& p) { return read_file(p).value_or(""); }
}  // namespace

TEST_CASE("empty disks after the first of a size are copies of qemu-img's own output", "[disk]") {
  dstackvmm::testing::TempDir dir("disks");
  DiskTemplates disks("qemu-img", dir.path() / ".disk-templates");
  REQUIRE(disks.create(dir.path() / "a.img", 2).ok());
  CHECK(disks.copies() == 0);
  CHECK(fs::exists(dir.path() / ".disk-templates/2G.qcow2"));
  REQUIRE(disks.create(dir.path() / "b.img", 2).ok());
  CHECK(disks.copies() == 1);
  REQUIRE(run_command({"qemu-img", "create", "-q", "-f", "qcow2", (dir.path() / "ref.img").string(), "2G"}, "ref").ok());
  std::string ref = bytes(dir.path() / "ref.img");
  CHECK(ref.size() > 0);
  CHECK(bytes(dir.path() / "b.img") == ref);
  CHECK_FALSE(fs::exists(dir.path() / "b.img.tmp"));
  // Another size has its own template.
  REQUIRE(disks.create(dir.path() / "c.img", 3).ok());
  CHECK(disks.copies() == 1);
  CHECK(bytes(dir.path() / "c.img") != ref);
  // The folder was cleaned: qemu-img again, and the template comes back.
  fs::remove_all(dir.path() / ".disk-templates");
  REQUIRE(disks.create(dir.path() / "d.img", 2).ok());
  CHECK(bytes(dir.path() / "d.img") == ref);
  CHECK(fs::exists(dir.path() / ".disk-templates/2G.qcow2"));
  REQUIRE(disks.create(dir.path() / "e.img", 2).ok());
  CHECK(disks.copies() == 2);
  CHECK(bytes(dir.path() / "e.img") == ref);
  // A failure names what failed.
  DiskTemplates broken("/nonexistent/qemu-img", dir.path() / "t2");
  auto s = broken.create(dir.path() / "f.img", 1);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("Failed to create disk") != std::string::npos);
}

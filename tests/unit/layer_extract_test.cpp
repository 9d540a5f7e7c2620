// SPDX-License-Identifier: Apache-2.0
// Hostile image layers: nothing they hold may land outside the folder they are unpacked into.
#include <catch2/catch.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include "../support/temp_dir.hpp"
#include "base/fs_util.hpp"
#include "image/layer_extract.hpp"

using namespace dstackvmm;
using namespace dstackvmm::internal;
namespace fs = std::filesystem;

namespace {

struct Entry {
  std::string name;
  mode_t type = AE_IFREG;
  std::string data;
  std::string link;  // symlink target
  std::string hardlink;
  mode_t perm = 0644;
};

// A gzip tar written with libarchive, as a registry would serve it.
fs::path make_layer(const fs::path& dir, const std::string& file, const std::vector<Entry>& entries) {
  fs::path out = dir / file;
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  REQUIRE(archive_write_open_filename(a, out.c_str()) == ARCHIVE_OK);
  for (const auto& e : entries) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.name.c_str());
    archive_entry_set_filetype(ae, e.type);
    archive_entry_set_perm(ae, e.perm);
    if (!e.link.empty()) archive_entry_set_symlink(ae, e.link.c_str());
    if (!e.hardlink.empty()) archive_entry_set_hardlink(ae, e.hardlink.c_str());
    archive_entry_set_size(ae, e.type == AE_IFREG && e.hardlink.empty() ? static_cast<la_int64_t>(e.data.size()) : 0);
    archive_write_header(a, ae);
    if (e.type == AE_IFREG && !e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

struct Unpack {
  testing::TempDir dir{"layer"};
  fs::path root = dir.path() / "root";
  fs::path victim = dir.path() / "victim";
  int fd = -1;
  LayerLimits limits;
  LayerProgress progress;
  int n = 0;

  Unpack() {
    fs::create_directories(root);
    fs::create_directories(victim);
    std::ofstream(victim / "secret") << "secret";
    fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  ~Unpack() { ::close(fd); }
  Status layer(const std::vector<Entry>& entries) {
    return extract_layer(make_layer(dir.path(), "l" + std::to_string(n++) + ".tgz", entries), fd, limits, progress);
  }
  bool victim_untouched() const {
    return *read_file(victim / "secret") == "secret" &&
           std::distance(fs::directory_iterator(victim), fs::directory_iterator()) == 1;
  }
};

std::string message(const Status& s) { return s.ok() ? "" : s.error().message; }

}  // namespace

TEST_CASE("a symlink from one layer is never followed by the next", "[layer][safety]") {
  Unpack u;
  REQUIRE(u.layer({{"out", AE_IFLNK, "", u.victim.string()}}).ok());
  CHECK(message(u.layer({{"out/planted", AE_IFREG, "owned"}})) == "layer entry 'out/planted': 'out' on its path is a symlink or a file");
  // Nor within one layer, nor as the leaf replaced by a file.
  CHECK_FALSE(u.layer({{"lnk", AE_IFLNK, "", "/etc"}, {"lnk/passwd", AE_IFREG, "x"}}).ok());
  REQUIRE(u.layer({{"out", AE_IFREG, "replaced"}}).ok());  // replaces the link itself
  CHECK(*read_file(u.root / "out") == "replaced");
  CHECK(u.victim_untouched());
}

TEST_CASE("absolute, dot-dot and hard-link paths are refused", "[layer][safety]") {
  Unpack u;
  CHECK(message(u.layer({{(u.victim / "planted").string(), AE_IFREG, "x"}})).find("absolute path") != std::string::npos);
  CHECK(message(u.layer({{"a/../../planted", AE_IFREG, "x"}})).find("path contains '..'") != std::string::npos);
  CHECK(message(u.layer({{"h", AE_IFREG, "", "", (u.victim / "secret").string()}})).find("absolute hard link target") != std::string::npos);
  CHECK(message(u.layer({{"h", AE_IFREG, "", "", "../victim/secret"}})).find("hard link target contains '..'") != std::string::npos);
  REQUIRE(u.layer({{"f", AE_IFREG, "data"}, {"same", AE_IFREG, "", "", "f"}}).ok());  // inside: fine
  CHECK(*read_file(u.root / "same") == "data");
  CHECK(u.victim_untouched());
  CHECK_FALSE(fs::exists(u.dir.path() / "planted"));
}

TEST_CASE("devices and fifos are refused, setuid bits dropped", "[layer][safety]") {
  Unpack u;
  CHECK(message(u.layer({{"sda", AE_IFBLK}})).find("device nodes are not allowed") != std::string::npos);
  CHECK(message(u.layer({{"tty", AE_IFCHR}})).find("device nodes are not allowed") != std::string::npos);
  CHECK(message(u.layer({{"p", AE_IFIFO}})).find("fifos are not allowed") != std::string::npos);
  REQUIRE(u.layer({{"su", AE_IFREG, "x", "", "", 06755}, {"d", AE_IFDIR, "", "", "", 01777}}).ok());
  struct stat st {};
  REQUIRE(::stat((u.root / "su").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  CHECK(check_extracted_tree(u.root).ok());
  ::chmod((u.root / "su").c_str(), 04755);
  CHECK(message(check_extracted_tree(u.root)).find("setuid") != std::string::npos);
}

TEST_CASE("OCI whiteouts delete and empty what lower layers made", "[layer]") {
  Unpack u;
  REQUIRE(u.layer({{"drop", AE_IFREG, "x"}, {"dir/a", AE_IFREG, "a"}, {"dir/sub/b", AE_IFREG, "b"}}).ok());
  REQUIRE(u.layer({{".wh.drop", AE_IFREG}, {"dir/.wh..wh..opq", AE_IFREG}, {"dir/new", AE_IFREG, "n"}}).ok());
  CHECK_FALSE(fs::exists(u.root / "drop"));
  CHECK(std::distance(fs::directory_iterator(u.root / "dir"), fs::directory_iterator()) == 1);
  CHECK(fs::exists(u.root / "dir/new"));
  CHECK_FALSE(u.layer({{".wh...", AE_IFREG}}).ok());
}

TEST_CASE("size and entry caps hold across layers", "[layer][safety]") {
  Unpack u;
  u.limits.max_bytes = 1000;
  u.limits.max_entries = 10;
  REQUIRE(u.layer({{"a", AE_IFREG, std::string(600, 'a')}}).ok());
  CHECK(message(u.layer({{"b", AE_IFREG, std::string(600, 'b')}})).find("unpacks to more than 1000 bytes") != std::string::npos);
  std::vector<Entry> many;
  for (int i = 0; i < 20; ++i) many.push_back({"f" + std::to_string(i), AE_IFREG});
  CHECK(message(u.layer(many)).find("more than 10 entries") != std::string::npos);
}

TEST_CASE("what is not a tar archive is an error, not a crash", "[layer]") {
  Unpack u;
  std::ofstream(u.dir.path() / "junk") << "this is not an archive at all";
  CHECK_FALSE(extract_layer(u.dir.path() / "junk", u.fd, u.limits, u.progress).ok());
}

// SPDX-License-Identifier: Apache-2.0
// The host-wide CID registry fails closed and never blocks the manager: a lock another
// process holds is waited on for 2 s at most, by the call that needs it alone; a registry that
// cannot be read as one (corrupt, a FIFO, a symlink) is left as it is and refused, naming it.
#include <sys/file.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <future>

#include <nlohmann/json.hpp>

#include "../support/manager_env.hpp"
#include "base/fs_util.hpp"
#include "allocation/cid_registry.hpp"

using namespace dstackvmm;
using namespace dstackvmm::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST_CASE("a registry lock held elsewhere delays only the call that needs it, for 2 s at most", "[cid]") {
  ManagerEnv e;
  fs::path file = e.dir.path() / "cids.json";
  auto o = e.options();
  o.cid_registry = file;
  e.vmm.reset();
  e.vmm = *VmManager::open(o);
  // Another VMM holds the lock (its own open file description: flock excludes it from ours).
  int other = ::open((file.string() + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  REQUIRE(other >= 0);
  REQUIRE(::flock(other, LOCK_EX) == 0);
  VmConfiguration c;
  c.name = "waits";
  c.image = "img";
  c.compose_file = R"({"manifest_version":2,"name":"x","runner":"r"})";
  c.memory = 256;
  c.disk_size = 1;
  c.stopped = true;
  auto start = std::chrono::steady_clock::now();
  auto create = std::async(std::launch::async, [&] { return e.vmm->create(c); });
  // Meanwhile the manager answers: listings, health and stats never take the registry's lock.
  auto listing = std::async(std::launch::async, [&] {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) (void)e.vmm->query({}), (void)e.vmm->health(), (void)e.vmm->stats();
    return std::chrono::steady_clock::now() - t0;
  });
  REQUIRE(listing.wait_for(1500ms) == std::future_status::ready);
  auto refused = create.get();
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("has been held by another process for over 2000 ms") != std::string::npos);
  CHECK(refused.error().message.find(file.string() + ".lock") != std::string::npos);
  CHECK(took < 5s);
  ::close(other);  // released: the next create goes through
  c.name = "goes";
  CHECK(e.vmm->create(c).ok());
}

TEST_CASE("a registry that cannot be read as one is left as it is and refused, naming it", "[cid]") {
  TempDir dir("cids");
  fs::path file = dir.path() / "cids.json";
  auto reserve = [&] { return internal::CidRegistry(file, "me", 1000, 10).reserve("vm", std::nullopt); };
  write_file(file, "{ not json");
  auto r = reserve();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("the CID registry " + file.string() + " is not a registry") == 0);
  CHECK(*internal::read_file(file) == "{ not json");  // never replaced by one that forgets the others
  write_file(file, R"({"version":1,"cids":[]})");
  CHECK_FALSE(reserve().ok());
  fs::remove(file);
  REQUIRE(::mkfifo(file.c_str(), 0600) == 0);  // a FIFO: no hang on opening it
  r = reserve();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == file.string() + " is not a regular file; remove it");
  fs::remove(file);
  write_file(dir.path() / "elsewhere.json", R"({"version":1,"cids":{}})");
  fs::create_symlink(dir.path() / "elsewhere.json", file);
  r = reserve();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("is a symlink, which the CID registry never follows") != std::string::npos);
  CHECK(*internal::read_file(dir.path() / "elsewhere.json") == R"({"version":1,"cids":{}})");
  fs::remove(file);
  fs::remove(file.string() + ".lock");
  fs::create_symlink(dir.path() / "elsewhere.json", file.string() + ".lock");
  CHECK(reserve().error().message.find(file.string() + ".lock is a symlink") == 0);
}

TEST_CASE("the registry is written compact, without the entries nothing holds", "[cid]") {
  TempDir dir("cids");
  fs::path file = dir.path() / "cids.json";
  nlohmann::json doc{{"version", 1},
                     {"cids",
                      {{"1000", {{"owner", "gone"}, {"vm", "a"}, {"holders", {{{"pid", 999999999}, {"start", "1"}}}}}},
                       {"1001", {{"owner", "gone"}, {"vm", "b"}, {"holders", nlohmann::json::array()}}}}}};
  write_file(file, doc.dump(2));
  internal::CidRegistry reg(file, "me", 1000, 10);
  auto cid = reg.reserve("vm", std::nullopt);
  REQUIRE(cid.ok());
  CHECK(*cid == 1000);  // nothing held it
  std::string text = *internal::read_file(file);
  CHECK(text.find('\n') == std::string::npos);
  auto now = nlohmann::json::parse(text);
  CHECK(now["cids"].size() == 1);  // 1001, held by no one, is gone
  CHECK(now["cids"]["1000"]["owner"] == "me");
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

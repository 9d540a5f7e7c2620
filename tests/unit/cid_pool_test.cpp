// SPDX-License-Identifier: Apache-2.0
// CidPool: lowest free first, exact ranges, exhaustion, occupy. CidRegistry: shared between
// owners, an entry whose holder is gone (or whose pid was reused) is free again.
#include <unistd.h>

#include <fstream>

#include <catch2/catch.hpp>

#include <dstackvmm/cid_pool.hpp>

#include "../support/temp_dir.hpp"
#include "allocation/cid_registry.hpp"

using namespace dstackvmm;

TEST_CASE("CidPool hands out the lowest free CID of [start, start+size)", "[alloc]") {
  CidPool pool(10, 3);  // upstream's vector: pool(10,13) allocates 10, 11, ...
  CHECK(*pool.allocate() == 10);
  CHECK(*pool.allocate() == 11);
  CHECK(*pool.allocate() == 12);
  auto none = pool.allocate();
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::kResourceExhausted);
  CHECK(none.error().message == "CID pool exhausted (3 CIDs from 10; raise cvm.cid_pool_size)");
  pool.release(11);
  CHECK(*pool.allocate() == 11);
}

TEST_CASE("CidPool reuses a released CID and keeps occupied ones", "[alloc]") {
  CidPool pool(1000, 1000);
  REQUIRE(pool.occupy(1000).ok());
  REQUIRE(pool.occupy(1002).ok());
  CHECK(*pool.allocate() == 1001);
  CHECK(*pool.allocate() == 1003);
  CHECK(pool.occupy(1002).error().code == ErrorCode::kAlreadyExists);
  CHECK(pool.occupy(999).error().message == "CID 999 is outside the pool 1000..1999");
  CHECK(pool.occupy(2000).error().code == ErrorCode::kInvalidArgument);
  CHECK(pool.used() == 4);
}

TEST_CASE("An empty CidPool never allocates", "[alloc]") {
  CidPool pool(5, 0);
  CHECK_FALSE(pool.allocate().ok());
}

namespace {
// A /proc/<our pid>/stat whose start time (field 22) is `start`; the name holds ") (" to
// make sure the fields are counted from the last parenthesis.
void fake_stat(const std::filesystem::path& proc, const std::string& start) {
  std::filesystem::create_directories(proc / std::to_string(::getpid()));
  std::ofstream(proc / std::to_string(::getpid()) / "stat")
      << ::getpid() << " (a) (b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 " << start << " 99 100\n";
}
}  // namespace

TEST_CASE("CidRegistry: owners share a range, a gone holder frees its CID", "[alloc][registry]") {
  dstackvmm::testing::TempDir dir("cids");
  auto proc = dir.path() / "proc";
  fake_stat(proc, "777");
  internal::CidRegistry a(dir.path() / "run/cids.json", "/a", 10, 2, proc), b(dir.path() / "run/cids.json", "/b", 10, 2, proc);
  CHECK(*a.reserve("vm1", std::nullopt) == 10);
  CHECK(*b.reserve("vm2", std::nullopt) == 11);  // 10 is a's, whose holder (us, start 777) lives
  CHECK(b.reserve("vm3", std::nullopt).error().code == ErrorCode::kResourceExhausted);
  CHECK(*a.reserve("vm1", 10) == 10);  // renewing one's own entry
  auto taken = b.reserve("vm3", 10);
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.error().code == ErrorCode::kAlreadyExists);
  CHECK(taken.error().message.find("CID 10 is held by VM vm1 of another VMM on this host (/a)") == 0);
  // The same pid with another start time: the holder is gone and its pid reused.
  fake_stat(proc, "778");
  CHECK(*b.reserve("vm3", std::nullopt) == 10);
  CHECK(a.reserve("vm1", 10).error().code == ErrorCode::kAlreadyExists);
  b.release(10, "vm1");  // not b's to release: nothing happens
  CHECK(a.reserve("vm1", 10).error().code == ErrorCode::kAlreadyExists);
  b.release(10, "vm3");
  CHECK(*a.reserve("vm1", 10) == 10);
  // Each keeps the document it last saw, but trusts it only while the file holds those very
  // bytes: a registry moved aside (or written by anyone else) is read again.
  std::filesystem::remove(dir.path() / "run/cids.json");
  CHECK(*b.reserve("vm4", std::nullopt) == 10);
  CHECK(a.reserve("vm1", 10).error().code == ErrorCode::kAlreadyExists);
}

// SPDX-License-Identifier: Apache-2.0
// CidPool: lowest free first, exact ranges, exhaustion, occupy.
#include <catch2/catch.hpp>

#include <dstackvmm/cid_pool.hpp>

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

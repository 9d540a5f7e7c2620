// SPDX-License-Identifier: Apache-2.0
// Registry manifests of every wrong shape are errors, never exceptions on a worker thread.
#include <catch2/catch.hpp>

#include "image/oci_manifest.hpp"

using namespace dstackvmm::internal;

namespace {
const std::string kDigest = "sha256:" + std::string(64, 'a');
std::string message(std::string_view body) {
  auto m = parse_oci_manifest(body);
  return m.ok() ? "" : m.error().message;
}
}  // namespace

TEST_CASE("image manifests and indexes parse", "[oci]") {
  auto m = parse_oci_manifest(R"({"layers":[{"digest":")" + kDigest + R"(","size":10},{"digest":")" + kDigest + R"(","size":5}]})");
  REQUIRE(m.ok());
  CHECK(m->layers.size() == 2);
  CHECK(m->total_size == 15);
  auto i = parse_oci_manifest(R"({"manifests":[{"digest":")" + kDigest + R"(","platform":{"architecture":"arm64"}},)"
                              R"({"digest":")" + kDigest + R"(","platform":{"architecture":"amd64","os":"linux"}}]})");
  REQUIRE(i.ok());
  CHECK(i->amd64_digest == kDigest);
}

TEST_CASE("hostile manifest shapes are refused with a reason", "[oci][safety]") {
  CHECK(message(R"({"layers":[{"digest":")" + kDigest + R"(","size":"12"}]})").find("has no valid size") != std::string::npos);
  CHECK(message(R"({"layers":[{"digest":")" + kDigest + R"(","size":-1}]})").find("has no valid size") != std::string::npos);
  CHECK(message(R"({"layers":[42]})") == "registry manifest: a layer is not an object");
  CHECK(message(R"({"layers":[{"digest":"sha256:../../x","size":1}]})").find("unsupported layer digest") != std::string::npos);
  CHECK(message(R"({"layers":{}})") == "registry manifest: manifest has no layers");
  CHECK(message(R"({"manifests":[1,"x",{"platform":"amd64"}]})") == "no linux/amd64 image in the index");
  CHECK(message(R"({"manifests":[{"digest":7,"platform":{"architecture":"amd64"}}]})").find("no valid sha256 digest") != std::string::npos);
  CHECK(message(R"({"layers":[{"digest":")" + kDigest + R"(","size":1099511627777}]})") == "registry manifest: layer sizes overflow");
  CHECK(message(std::string(100, '[')).find("nested deeper") != std::string::npos);
  CHECK(message("[]") == "registry manifest: not a JSON object");
}

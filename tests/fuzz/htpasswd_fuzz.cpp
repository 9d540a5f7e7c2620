// SPDX-License-Identifier: Apache-2.0
// An htpasswd file and the credentials checked against it. The first line of the input is
// the Authorization header, the rest the file.
#include <dstackvmm/server/auth.hpp>

#include "fuzz_util.hpp"

using namespace dstackvmm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  std::string header = in.substr(0, nl);
  std::string file = nl == std::string::npos ? "" : in.substr(nl + 1);
  auto path = fuzz::write_scratch("htpasswd", reinterpret_cast<const uint8_t*>(file.data()), file.size());
  AuthConfig c;
  c.enabled = true;
  c.tokens = {"token"};
  c.htpasswd_file = path.string();
  auto auth = Authenticator::create(c);
  if (auth.ok()) {
    (void)auth->allows(AuthRequest{"POST", "", header, ""});
    (void)auth->allows(AuthRequest{"GET", header, "", header});
  }
  return 0;
}

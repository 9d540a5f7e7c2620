// SPDX-License-Identifier: Apache-2.0
// Is this host ready to run confidential VMs? Each check is ok, warn or fail, with what was
// found and how to fix it (`vmmctl host check`, and logged once at daemon start-up).
#pragma once

#include <dstackvmm/export.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace dstackvmm {

enum class CheckLevel { kOk, kWarn, kFail };
DSTACKVMM_EXPORT std::string_view check_level_name(CheckLevel level);  // ok | warn | fail

struct HostCheck {
  std::string name;    // qemu, kvm, vsock, tdx, sev_snp, ovmf, iommu, gpus, hugepages, cids, ports, state_folder, kms, gateway
  CheckLevel level = CheckLevel::kOk;
  std::string detail;  // what was found
  std::string fix;     // what to do about a warn or fail ("" when ok)
};

struct HostReport {
  std::vector<HostCheck> checks;
  // No check failed (warnings allowed).
  bool ok() const {
    for (const auto& c : checks)
      if (c.level == CheckLevel::kFail) return false;
    return true;
  }
};

}  // namespace dstackvmm

// SPDX-License-Identifier: Apache-2.0
// launch.json's form of launch records, which GetInfo's extension also uses as it is.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include <dstackvmm/launch_record.hpp>

namespace dstackvmm::internal {

nlohmann::json launch_records_json(const std::vector<LaunchRecord>& records);

}  // namespace dstackvmm::internal

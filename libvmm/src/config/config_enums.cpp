// SPDX-License-Identifier: Apache-2.0
// The config's typed closed sets and their upstream spellings.
#include <dstackvmm/config.hpp>

#include <array>
#include <utility>

namespace dstackvmm {

namespace {

template <class E, size_t N>
using Names = std::array<std::pair<E, std::string_view>, N>;

constexpr Names<Platform, 4> kPlatforms{{{Platform::kAuto, "auto"}, {Platform::kTdx, "tdx"},
                                         {Platform::kAmdSevSnp, "amd-sev-snp"}, {Platform::kNone, "none"}}};
constexpr Names<Accel, 3> kAccels{{{Accel::kAuto, "auto"}, {Accel::kKvm, "kvm"}, {Accel::kTcg, "tcg"}}};
constexpr Names<GuestChannelMode, 3> kChannels{
    {{GuestChannelMode::kAuto, "auto"}, {GuestChannelMode::kVsock, "vsock"}, {GuestChannelMode::kUserNet, "user-net"}}};
constexpr Names<NetworkMode, 3> kNetworkModes{
    {{NetworkMode::kUser, "user"}, {NetworkMode::kBridge, "bridge"}, {NetworkMode::kCustom, "custom"}}};

template <class E, size_t N>
std::string_view name_of(const Names<E, N>& names, E value) {
  for (const auto& [v, n] : names)
    if (v == value) return n;
  return names[0].second;
}

template <class E, size_t N>
std::optional<E> value_of(const Names<E, N>& names, std::string_view text) {
  for (const auto& [v, n] : names)
    if (n == text) return v;
  return std::nullopt;
}

}  // namespace

std::string_view to_string(Platform v) { return name_of(kPlatforms, v); }
std::string_view to_string(Accel v) { return name_of(kAccels, v); }
std::string_view to_string(GuestChannelMode v) { return name_of(kChannels, v); }
std::string_view to_string(NetworkMode v) { return name_of(kNetworkModes, v); }
std::optional<Platform> parse_platform(std::string_view t) { return value_of(kPlatforms, t); }
std::optional<Accel> parse_accel(std::string_view t) { return value_of(kAccels, t); }
std::optional<GuestChannelMode> parse_guest_channel(std::string_view t) { return value_of(kChannels, t); }
std::optional<NetworkMode> parse_network_mode(std::string_view t) { return value_of(kNetworkModes, t); }

}  // namespace dstackvmm

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages the project needs, and only those that are missing.
# Quiet when everything is there. Runs apt-get update at most once.
set -eu
packages=(
  # build
  meson ninja-build pkg-config g++ git
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libcpp-httplib-dev catch2
  libssl-dev libcrypt-dev libarchive-dev libsecp256k1-dev libcrypto++-dev libprotobuf-dev protobuf-compiler
  # sanitizers and fuzzing
  clang libclang-rt-14-dev
  # running guests, and building the test guest image
  qemu-system-x86 qemu-utils busybox-static cpio kmod python3 xz-utils mtools
  # the software TPM of VMs whose compose asks for the "tpm" key provider
  swtpm swtpm-tools
  # tests
  curl python3-protobuf python3-yaml man-db
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

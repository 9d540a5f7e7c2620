#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# build-image.sh DIR: builds (or reuses) the test guest image under DIR and prints the image
# folder's path as its last line. From Debian packages only: a linux-image-*-amd64 kernel
# (booted as an uncompressed PVH vmlinux, 2x faster under TCG), busybox-static and the
# virtio/9p/ACPI modules. Progress goes to stderr. Safe to run concurrently.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: build-image.sh DIR" >&2; exit 2; }
mkdir -p "$1"
dir=$(cd "$1" && pwd)
name=dstack-test-0.6.0
image="$dir/$name"
# The same guest for VMs with a software TPM: its kernel is told where the TPM sits
# (tpm_tis.force=1). Under PVH boot, SeaBIOS's ACPI tables with a TPM's event log outgrow the
# room QEMU leaves them above the initrd, so the guest would find no TPM through ACPI; real
# dstack images boot through OVMF and have no such problem.
tpm_image="$dir/dstack-test-tpm-0.6.0"
say() { echo "build-image: $*" >&2; }

exec 9>"$dir/.lock"
flock 9

kernel_pkg() {
  apt-cache search '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null | awk '{print $1}' | sort -V | tail -1
}
pkg=$(kernel_pkg)
if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
  say "no kernel package in the apt lists; running apt-get update"
  apt-get update -qq
  pkg=$(kernel_pkg)
fi
[ -n "$pkg" ] || { say "cannot find a linux-image-6.1.0-*-amd64 package (apt-get update?)"; exit 1; }
ver=${pkg#linux-image-}

key=$( (echo "$ver"; cat "$0" "$here"/rootfs/*) | sha256sum | cut -c1-16)
if [ -f "$image/.stamp" ] && [ "$(cat "$image/.stamp")" = "$key" ] && [ -f "$tpm_image/.stamp" ] && [ "$(cat "$tpm_image/.stamp")" = "$key" ]; then
  echo "$image"
  exit 0
fi

kx="$dir/.cache/kernel-$ver"
if [ ! -f "$kx/.unpacked" ]; then
  say "downloading $pkg"
  rm -rf "$kx" && mkdir -p "$kx"
  (cd "$dir/.cache" && apt-get download -q "$pkg" >/dev/null 2>&1) || {
    say "apt-get download $pkg failed"; exit 1; }
  say "unpacking $pkg"
  dpkg -x "$dir/.cache/${pkg}_"*.deb "$kx"
  rm -f "$dir/.cache/${pkg}_"*.deb
  depmod -b "$kx" "$ver"
  touch "$kx/.unpacked"
fi

work=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/acpi/PWRF,proc,sys,dev,shared,www,tmp,run}

say "assembling the initramfs"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
install -m 755 "$here/rootfs/init" "$root/init"
install -m 755 "$here/rootfs/notify" "$root/bin/notify"
install -m 755 "$here/rootfs/host-api" "$root/bin/host-api"
install -m 755 "$here/rootfs/guest-agent" "$root/bin/guest-agent"
install -m 755 "$here/rootfs/udhcpc.script" "$root/etc/udhcpc.script"
install -m 755 "$here/rootfs/powerbutton" "$root/etc/acpi/PWRF/00000080"

mods="$root/lib/modules/$ver"
mkdir -p "$mods"
for m in virtio_pci virtio_net 9pnet_virtio 9p virtio_blk button evdev; do
  modprobe -d "$kx" -S "$ver" --show-depends "$m" | awk '$1=="insmod" {print $2}'
done | sort -u | while read -r ko; do
  rel=${ko#"$kx/lib/modules/$ver/"}
  mkdir -p "$mods/$(dirname "$rel")"
  cp "$ko" "$mods/$rel"
done
cp "$kx/lib/modules/$ver"/modules.{order,builtin,builtin.modinfo} "$mods/"
depmod -b "$root" "$ver"

(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet --reproducible) \
  | gzip -6 -n > "$work/initrd.cpio.gz"

say "extracting the PVH vmlinux"
python3 - "$kx/boot/vmlinuz-$ver" "$work/vmlinux.pvh" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
at = data.find(b"\xfd7zXZ\x00")
if at < 0:
    sys.exit("no XZ stream in the bzImage")
elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
if not elf.startswith(b"\x7fELF"):
    sys.exit("the XZ stream is not an ELF kernel")
open(sys.argv[2], "wb").write(elf)
PY

cat > "$work/metadata.json" <<JSON
{
  "kernel": "vmlinux.pvh",
  "initrd": "initrd.cpio.gz",
  "cmdline": "console=ttyS0 panic=-1 quiet loglevel=4",
  "version": "0.6.0",
  "shared_ro": true,
  "is_dev": true
}
JSON
echo "$key" > "$work/.stamp"
staged="$work/$name"
mkdir "$staged"
mv "$work/metadata.json" "$work/vmlinux.pvh" "$work/initrd.cpio.gz" "$work/.stamp" "$staged/"
staged_tpm="$work/tpm"
mkdir "$staged_tpm"
ln "$staged/vmlinux.pvh" "$staged/initrd.cpio.gz" "$staged/.stamp" "$staged_tpm/"
sed 's/"cmdline": "\(.*\)"/"cmdline": "\1 tpm_tis.force=1 tpm_tis.interrupts=0"/' "$staged/metadata.json" > "$staged_tpm/metadata.json"
for pair in "$staged:$image" "$staged_tpm:$tpm_image"; do
  from=${pair%%:*} to=${pair#*:}
  rm -rf "$to.old"
  [ -d "$to" ] && mv "$to" "$to.old"
  mv "$from" "$to"
  rm -rf "$to.old"
done
say "image ready ($(du -sh "$image" | cut -f1))"
echo "$image"

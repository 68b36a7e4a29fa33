#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/kernel/fetch-kernel-image.sh - fetch the bootable Debian kernel image
# that matches the installed kernel headers, for the QEMU kernel tests
# (kernel.direct / kernel.swiotlb / kernel.iommu). Run by tools/install-deps.
#
# The image is NOT installed: installing linux-image-* pulls in
# initramfs-tools and udev and rebuilds /boot/initrd.img for nothing (2+ min,
# +121 MB). QEMU only needs vmlinuz, so the .deb is fetched with
# "apt-get download" and only its boot/ is unpacked.
#
#   IOMEM_KFLAVOUR       kernel flavour (default cloud-amd64; or amd64)
#   IOMEM_KERNEL_CACHE   where the image goes (default /var/cache/iomem/kernel)
#
# Headers and image are kept in step: the release (e.g. 6.1.0-56-cloud-amd64)
# is the one the linux-headers-<flavour> metapackage depends on, the image is
# re-fetched whenever the installed headers' package version changes, and a
# version mismatch between the two is reported. Never hard-code the release:
# Debian's mirror only keeps the current ABI.
#
# Writes $IOMEM_KERNEL_CACHE/env (shell syntax): KVER, KVERSION_PKG, VMLINUZ,
# KCONFIG, KDIR. Idempotent; needs no root when the cache dir is writable.
set -euo pipefail

FLAVOUR=${IOMEM_KFLAVOUR:-cloud-amd64}
CACHE=${IOMEM_KERNEL_CACHE:-/var/cache/iomem/kernel}

die() { echo "fetch-kernel-image: error: $*" >&2; exit 1; }

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found (Debian only)"
KVER=$(dpkg-query -W -f='${Depends}\n' "linux-headers-$FLAVOUR" 2>/dev/null |
	tr ',' '\n' | sed -n 's/^ *linux-headers-\([0-9][^ ]*\).*/\1/p' | head -1)
[ -n "$KVER" ] || die "cannot resolve the kernel release from linux-headers-$FLAVOUR (installed?)"
KDIR=/lib/modules/$KVER/build
[ -f "$KDIR/Makefile" ] || die "$KDIR missing (install linux-headers-$KVER)"
HDR_VERSION=$(dpkg-query -W -f='${Version}' "linux-headers-$KVER")

mkdir -p "$CACHE" 2>/dev/null || die "cannot create $CACHE (run as root, or set IOMEM_KERNEL_CACHE)"
[ -w "$CACHE" ] || die "$CACHE is not writable (run as root, or set IOMEM_KERNEL_CACHE)"
CACHE=$(cd "$CACHE" && pwd)
VMLINUZ=$CACHE/root/boot/vmlinuz-$KVER

if [ -f "$VMLINUZ" ] && [ "$(cat "$CACHE/image-version" 2>/dev/null)" = "$HDR_VERSION" ]; then
	echo "fetch-kernel-image: $VMLINUZ is current ($HDR_VERSION)"
else
	echo "fetch-kernel-image: downloading linux-image-$KVER ($HDR_VERSION) into $CACHE"
	rm -rf "$CACHE/root" "$CACHE/image-version" "$CACHE"/*.deb
	# APT::Sandbox::User=root: as root, apt would otherwise drop to _apt,
	# which cannot write into a root-owned cache dir
	sandbox=()
	[ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
	if ! (cd "$CACHE" && apt-get download -qq "${sandbox[@]}" "linux-image-$KVER"); then
		# stale or cleaned package lists: refresh once (root only)
		[ "$(id -u)" = 0 ] || die "apt-get download linux-image-$KVER failed (apt-get update first?)"
		apt-get update -qq
		(cd "$CACHE" && apt-get download -qq "${sandbox[@]}" "linux-image-$KVER") ||
			die "apt-get download linux-image-$KVER failed"
	fi
	deb=$(ls "$CACHE"/linux-image-"$KVER"_*.deb)
	img_version=$(dpkg-deb -f "$deb" Version)
	if [ "$img_version" != "$HDR_VERSION" ]; then
		# same $KVER = same Debian kernel ABI, so modules still load; say so
		echo "fetch-kernel-image: warning: linux-image-$KVER is $img_version, headers are $HDR_VERSION" >&2
	fi
	mkdir -p "$CACHE/root"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$CACHE/root" ./boot
	rm -f "$deb"
	[ -f "$VMLINUZ" ] || die "$VMLINUZ not in the package"
	echo "$HDR_VERSION" > "$CACHE/image-version"
fi

cat > "$CACHE/env" <<EOF
KVER=$KVER
KVERSION_PKG=$HDR_VERSION
VMLINUZ=$VMLINUZ
KCONFIG=$CACHE/root/boot/config-$KVER
KDIR=$KDIR
EOF

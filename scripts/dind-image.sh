#!/usr/bin/env bash
# Build the docker-in-docker node image's root filesystem offline, from the
# Debian archive only (debootstrap), and cache it as a tarball. The lab's dind
# backend (test/lab/dind.ts, `npm run test:dind`) `docker import`s it into its
# outer engine; every node container runs the image's dockerd, the ZooKeeper
# container its zookeeper.
#
#   scripts/dind-image.sh           build if not cached; print the tarball's path
#   scripts/dind-image.sh --path    only print where the tarball is (or would be)
#   scripts/dind-image.sh --force   build again even if cached
#
# The cache key is a hash of this script (suite, package list, mirror and
# steps all live here): edit the script and the next run builds a new
# tarball; older ones are removed. Cold build ~70 s on the 2-core test machine
# (most of it unpacking and configuring ~150 packages), then `tar` ~10 s.
#
# Environment:
#   TSL_DIND_CACHE   cache directory (default /var/cache/tsoverlay)
#   TSL_DIND_MIRROR  Debian mirror (default: the first URIs: line of
#                    /etc/apt/sources.list.d/debian.sources, else deb.debian.org)
set -euo pipefail

SUITE=bookworm
# docker.io: dockerd/containerd/runc of the nodes (20.10.24, as on the host);
# iproute2/iptables: dockerd needs them; procps, iputils-ping: for humans
# inside a node; zookeeper (+ its Java): the ZooKeeper container.
PACKAGES=docker.io,iproute2,iptables,procps,iputils-ping,zookeeper

CACHE=${TSL_DIND_CACHE:-/var/cache/tsoverlay}
key=$(sha256sum "$0" | cut -c1-16)
tarball=$CACHE/dind-node-$key.tar

case "${1:-}" in
  --path) echo "$tarball"; exit 0 ;;
  --force) rm -f "$tarball" ;;
  "") ;;
  *) echo "usage: $0 [--path|--force]" >&2; exit 2 ;;
esac

if [ -f "$tarball" ]; then
  echo "$tarball"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "dind-image: run as root (debootstrap)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "dind-image: debootstrap missing: run scripts/install-deps.sh" >&2; exit 1; }

mirror=${TSL_DIND_MIRROR:-}
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
root=$work/root
cleanup() {
  # debootstrap mounts /proc and /sys in the target while it configures;
  # after a failure they may still be there
  awk -v d="$root/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  rm -rf "$work"
}
trap cleanup EXIT

t0=$(date +%s)
echo "dind-image: debootstrap $SUITE from $mirror (cold build, about a minute)" >&2
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2
  tail -n 30 "$root/debootstrap/debootstrap.log" >&2 2>/dev/null || true
  echo "dind-image: debootstrap failed" >&2
  exit 1
fi
t1=$(date +%s)
# nothing in the image should need the package cache or the lists
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" --numeric-owner -cf "$work/node.tar" .
t2=$(date +%s)
# only the newest build is kept
find "$CACHE" -maxdepth 1 -name 'dind-node-*.tar' ! -name "$(basename "$tarball")" -delete
mv "$work/node.tar" "$tarball"
echo "dind-image: built $tarball ($(du -m "$tarball" | cut -f1) MB): debootstrap $((t1 - t0)) s, tar $((t2 - t1)) s" >&2
echo "$tarball"

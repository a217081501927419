#!/usr/bin/env bash
# Fetch a newer Docker engine from a newer Debian release, for the lab
# (TSL_ENGINE_DIR, test/lab/host.ts): its dockerd, containerd, shims,
# docker-proxy and CLI run on Debian 12. Prints the directory that holds the
# extracted tree (usr/sbin/dockerd, usr/bin/containerd, ...).
#
#   scripts/docker-engine.sh [SUITE]     SUITE: sid (default, docker.io 28.5)
#                                               or trixie (26.1)
#
# Never touches the machine's apt sources: a private apt configuration
# (sources list, lists and archive cache) under the cache directory. The
# extracted tree is cached in $TSL_ENGINE_CACHE (default
# /var/cache/tsoverlay)/docker-SUITE and reused without any network once there
# (delete it to fetch the suite's current version again). sid's runc needs a
# newer glibc than Debian 12's, so it is left out: dockerd finds Debian 12's
# runc (package runc, 1.1.5) on PATH. Needs root (apt-get) the first time.
set -euo pipefail

suite=${1:-sid}
case "$suite" in
  sid | trixie) ;;
  *) echo "docker-engine: unknown suite '$suite' (sid or trixie)" >&2; exit 2 ;;
esac
cache=${TSL_ENGINE_CACHE:-/var/cache/tsoverlay}
out=$cache/docker-$suite

if [ -x "$out/usr/sbin/dockerd" ] && [ -x "$out/usr/bin/containerd" ] && [ -f "$out/VERSIONS" ]; then
  echo "$out"
  exit 0
fi

# the mirror this machine already uses (first http(s) URI of a Debian source)
mirror=$(grep -hoE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+/debian/?' \
  /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -oE 'https?://[^[:space:]]+' | head -n 1 || true)
if [ -z "$mirror" ]; then
  echo "docker-engine: no Debian mirror found in /etc/apt/sources.list{,.d}" >&2
  exit 1
fi

apt=$cache/apt-$suite
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$apt/sources.list"
opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=- \
  -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
echo "docker-engine: fetching docker.io, containerd, docker-cli from $suite" >&2
apt-get "${opts[@]}" -qq update >&2
rm -f "$apt/debs"/*.deb
(cd "$apt/debs" && apt-get "${opts[@]}" -qq download docker.io containerd docker-cli >&2)

tmp=$(mktemp -d "$cache/docker-$suite.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for deb in "$apt/debs"/*.deb; do dpkg-deb -x "$deb" "$tmp"; done
rm -f "$tmp/usr/sbin/runc" "$tmp/usr/bin/runc"
for deb in "$apt/debs"/*.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"; done >"$tmp/VERSIONS"
"$tmp/usr/sbin/dockerd" --version >&2
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out"

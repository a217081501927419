#!/usr/bin/env bash
# Install everything tsoverlay's build and tests need on a fresh Debian 12
# (bookworm) machine, then the npm dependencies. Idempotent: run it again any
# time. Needs root.
#
#   docker.io        dockerd 20.10 + containerd + runc + docker CLI (lab hosts)
#   zookeeper        ZooKeeper 3.8 server jar + Java (cluster store tests)
#   iptables         dockerd programs NAT (docker_gwbridge) per namespace;
#                    Debian's default nft backend works, no alternatives switch
#   iproute2         ip netns / ip link for the lab
#   busybox-static   the offline container image (test/lab/image.ts) and nc
#   iputils-ping     ping with -i/-M/-W run inside container namespaces
#   util-linux       nsenter, unshare, mount
#   procps           ps, for humans checking for leftovers
#   docker-registry  a local registry (Docker distribution 2.8) for the
#                    managed-plugin test: docker plugin push/install
#                    (test/integration/managed-plugin.test.ts); the package's
#                    own service is not started (see below) nor used
#   iperf3, sockperf throughput and TCP request/response of `npm run bench`
#   debootstrap      builds the docker-in-docker node image offline from the
#                    Debian archive (scripts/dind-image.sh, npm run test:dind)
#   docker-compose, python3-docker  real Docker clients (compose 1.29,
#                    docker-py 5.0.3) in test/integration/clients.test.ts
#   systemd          systemd-analyze, which checks packaging/tsoverlay.service
#                    (test/component/packaging.test.ts); installing it starts
#                    nothing where systemd is not the init
#
# The docker.io package would start a system dockerd from its postinst where
# an init system runs. The tests never use a system dockerd (every lab host
# runs its own, with private paths, and hides /run/containerd from it), but we
# keep the install from starting services anyway with a temporary policy-rc.d.
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: run as root (apt-get, and the tests need root too)" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null; then
  echo "install-deps: apt-get not found; this script targets Debian 12" >&2
  exit 1
fi

PKGS=(docker.io zookeeper iptables iproute2 busybox-static iputils-ping util-linux procps tar docker-registry debootstrap iperf3 sockperf docker-compose python3-docker systemd)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# installed by tsoverlay scripts/install-deps.sh while it runs\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
  trap cleanup EXIT
  for i in 1 2 3; do
    if apt-get update -q; then break; fi
    [ "$i" = 3 ] && { echo "install-deps: apt-get update failed" >&2; exit 1; }
    sleep 5
  done
  # with Recommends (apparmor, cgroupfs-mount, ...), as on the machines the lab was checked on
  NEEDRESTART_SUSPEND=1 apt-get install -y -q "${PKGS[@]}"
  cleanup
  trap - EXIT
else
  echo "install-deps: Debian packages already installed"
fi

# Node 20+ and npm come with the machine image (Debian 12's nodejs is 18).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: node and npm (Node >= 20) are required but not installed" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "install-deps: Node >= 20 required, found $(node --version)" >&2
  exit 1
fi

# Sanity: the tools the lab uses are really there now.
for tool in dockerd containerd runc docker nsenter unshare ip iptables ping tar java docker-registry debootstrap docker-compose; do
  command -v "$tool" >/dev/null || { echo "install-deps: $tool still missing after install" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "install-deps: /bin/busybox missing (busybox-static)" >&2; exit 1; }
[ -f /usr/share/java/zookeeper.jar ] || { echo "install-deps: /usr/share/java/zookeeper.jar missing" >&2; exit 1; }

echo "install-deps: npm ci"
npm ci --no-audit --no-fund

echo "install-deps: done"

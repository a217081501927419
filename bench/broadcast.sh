#!/bin/bash
# Broadcast delivery to containers, three ways, side by side on one kernel
# (no dockerd, no plugin): what a burst of broadcasts from a remote node
# costs the receiving node's containers. Two namespace "hosts" joined by a
# veth underlay, one VXLAN device per host (learning off, proxy on, head-end
# replication to the peer as tsoverlay programs it); host A's container
# sends COUNT UDP broadcasts as fast as it can, and N containers on host B
# count what they receive (rx_packets), REPS times interleaved.
#
#   Q  macvlan (bridge mode) on the VXLAN device with the kernel's default:
#      broadcasts go through the port's work queue (bc_queue_len 1000)
#   M  the same with IFLA_MACVLAN_BC_CUTOFF -1, as tsoverlay creates its
#      macvlans: broadcasts delivered inline (Linux 6.5+)
#   B  tsoverlay's bridge layout: a bridge with the VXLAN device and a veth
#      per container
#
# usage: sudo bash bench/broadcast.sh [REPS] [N] [COUNT]   (needs node; ~1 min)
# All addresses live in namespaces this script creates and deletes.
set -euo pipefail
REPS=${1:-5}
N=${2:-8}
COUNT=${3:-200000}
HERE=$(cd "$(dirname "$0")" && pwd)
P=tslbc
# shellcheck source=bench/netns-lib.sh
. "$HERE/netns-lib.sh"

# one way: build, send, count; prints "delivered expected pps"
way() {
  cleanup
  ip netns add $A
  ip netns add $B
  ip -n $A link add ul type veth peer name ul netns $B
  ip -n $A addr add 192.168.252.1/24 dev ul
  ip -n $B addr add 192.168.252.2/24 dev ul
  local h l r
  for h in $A $B; do
    ip -n $h link set lo up
    ip -n $h link set ul up
    [ $h = $A ] && l=192.168.252.1 r=192.168.252.2 || l=192.168.252.2 r=192.168.252.1
    ip -n $h link add tsvx type vxlan id 42 dstport 4789 local $l dev ul nolearning proxy
    ip -n $h link set tsvx mtu 1450 up
    bridge -n $h fdb append 00:00:00:00:00:00 dev tsvx dst $r self permanent
  done
  ip netns add $A-c
  ip -n $A link add c0 link tsvx type macvlan mode bridge
  ip -n $A link set c0 netns $A-c
  ip -n $A-c link set c0 up
  ip -n $A-c addr add 10.42.0.1/24 dev c0
  if [ "$1" = B ]; then
    ip -n $B link add tsbr type bridge
    ip -n $B link set tsvx master tsbr
    ip -n $B link set tsbr up
  else
    ip -n $B link add tsbr link tsvx type macvlan mode bridge # the host's own macvlan
    ip -n $B link set tsbr up
    [ "$1" = M ] && nsx $B node "$HERE/tools/macvlan-bc-cutoff.mjs" "$(nsx $B cat /sys/class/net/tsbr/ifindex)" -1
  fi
  local i c
  for i in $(seq "$N"); do
    c=$B-c$i
    ip netns add "$c"
    if [ "$1" = B ]; then
      ip -n $B link add e$i type veth peer name eth0 netns "$c"
      ip -n $B link set e$i master tsbr up
    else
      ip -n $B link add e$i link tsvx type macvlan mode bridge
      ip -n $B link set e$i netns "$c"
      ip -n "$c" link set e$i name eth0
    fi
    ip -n "$c" link set eth0 up
    ip -n "$c" addr add "10.42.0.$((10 + i))/24" dev eth0
  done
  rx() {
    local s=0
    for i in $(seq "$N"); do s=$((s + $(nsx "$B-c$i" cat /sys/class/net/eth0/statistics/rx_packets))); done
    echo $s
  }
  local r0 r1 out sent
  r0=$(rx)
  out=$(nsx $A-c node "$HERE/tools/udp-burst.mjs" 10.42.0.255 "$COUNT")
  sent=$(sed 's/.*"sent":\([0-9]*\).*/\1/' <<< "$out")
  # delivered: the counters stop moving (the queue drains in the background)
  r1=$(rx)
  for _ in $(seq 50); do sleep 0.1; local r2; r2=$(rx); [ "$r2" = "$r1" ] && break; r1=$r2; done
  echo "$((r1 - r0)) $((sent * N)) $(sed 's/.*"pps":\([0-9]*\).*/\1/' <<< "$out")"
}

declare -A PART PPS
for r in $(seq "$REPS"); do
  for w in Q M B; do
    read -r got want pps <<< "$(way $w)"
    # a few more than sent: the containers' own IPv6 router solicitations and the like
    part=$(awk -v g="$got" -v w="$want" 'BEGIN {f = g / w; printf "%.4f", (f > 1 ? 1 : f)}')
    PART[$w]+=" $part"
    PPS[$w]+=" $pps"
    echo "rep $r $w: $got of $want delivered ($part), sent at $pps/s"
  done
done
mean() { tr ' ' '\n' <<< "$*" | grep . | awk '{s += $1} END {printf "%.4f", s / NR}'; }
median() { tr ' ' '\n' <<< "$*" | grep . | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "way  delivered (mean of $REPS, worst)   sent (median, broadcasts/s)"
for w in Q M B; do
  worst=$(tr ' ' '\n' <<< "${PART[$w]}" | grep . | sort -g | head -1)
  awk -v w=$w -v m="$(mean ${PART[$w]})" -v x="$worst" -v p="$(median ${PPS[$w]})" \
    'BEGIN {printf "%s    %6.2f %%  %6.2f %%                %d\n", w, m * 100, x * 100, p}'
done

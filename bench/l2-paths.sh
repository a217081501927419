#!/bin/bash
# Three ways to wire a container to a VXLAN overlay, side by side on the same
# kernel, with nothing else running (no dockerd, no plugin): which data path
# is worth building. Two namespace "hosts" joined by a veth underlay, one
# container namespace per way and host, static FDB/neighbour entries as
# tsoverlay programs them (learning off, proxy on), and per way the TCP round
# trip (2 x sockperf ping-pong's median one-way latency) and iperf3
# throughput from host A's container to host B's, interleaved over REPS.
#
#   T  tsoverlay's bridge layout: bridge + VXLAN in the host namespace, with
#      bridge-nf-call-iptables=1 and a dockerd-like filter table (tsoverlay's
#      ACCEPT and NOTRACK rules first), the container on a veth
#   S  Docker's overlay: the VXLAN device created in the host namespace and
#      moved with a bridge into a namespace of the network's own
#   M  macvlan (bridge mode) on the VXLAN device in the host namespace: no
#      bridge at all
#
# usage: sudo bash bench/l2-paths.sh [REPS] [UNDERLAY_MTU]   (needs sockperf, iperf3; ~1 min)
# All addresses live in namespaces this script creates and deletes.
set -euo pipefail
REPS=${1:-7}
UMTU=${2:-1500}
MTU=$((UMTU - 50))
P=tsl2p
# shellcheck source=bench/netns-lib.sh
. "$(cd "$(dirname "$0")" && pwd)/netns-lib.sh"
cleanup

declare -A UL=([$A]=192.168.250.1 [$B]=192.168.250.2)
declare -A WAY=([T]=1 [S]=2 [M]=3)
peer() { [ "$1" = $A ] && echo $B || echo $A; }
nth() { [ "$1" = $A ] && echo 1 || echo 2; }
cip() { echo "10.7${WAY[$1]}.0.$(nth "$2")"; }
cmac() { echo "02:00:00:0${WAY[$1]}:00:0$(nth "$2")"; }

# remote entries (ns, vxlan device, way, this host): the peer's container
entries() {
  local r; r=$(peer "$4")
  bridge -n "$1" fdb add "$(cmac "$3" "$r")" dev "$2" dst "${UL[$r]}" self permanent
  bridge -n "$1" fdb append 00:00:00:00:00:00 dev "$2" dst "${UL[$r]}" self permanent
  ip -n "$1" neigh add "$(cip "$3" "$r")" lladdr "$(cmac "$3" "$r")" dev "$2" nud permanent
}
# a container namespace whose eth0 is already there (way, host)
container() {
  local c=$2-c$1
  ip -n "$c" link set eth0 address "$(cmac "$1" "$2")" mtu $MTU up
  ip -n "$c" addr add "$(cip "$1" "$2")/24" dev eth0
}

ip netns add $A
ip netns add $B
ip -n $A link add ul type veth peer name ul netns $B
for H in $A $B; do
  ip -n "$H" addr add "${UL[$H]}/24" dev ul
  ip -n "$H" link set ul mtu "$UMTU" up
  ip -n "$H" link set lo up
  nsx "$H" sysctl -qw net.bridge.bridge-nf-call-iptables="${BRNF:-1}"
  nsx "$H" iptables -P FORWARD DROP
  for c in DOCKER-USER DOCKER-ISOLATION-STAGE-1 DOCKER; do nsx "$H" iptables -N $c; done
  nsx "$H" iptables -A DOCKER-USER -j RETURN
  nsx "$H" iptables -A FORWARD -j DOCKER-USER
  nsx "$H" iptables -A FORWARD -j DOCKER-ISOLATION-STAGE-1
  nsx "$H" iptables -A FORWARD -o docker0 -j DOCKER
  nsx "$H" iptables -I FORWARD -i tsbr+ -o tsbr+ -j ACCEPT
  nsx "$H" iptables -I DOCKER-USER -i tsbr+ -o tsbr+ -j ACCEPT
  nsx "$H" iptables -t raw -A PREROUTING -i tsbr+ -j CT --notrack
  for w in T S M; do ip netns add "$H-c$w"; ip -n "$H-c$w" link set lo up; done
  L=${UL[$H]}
  # T
  ip -n "$H" link add tsbr-t type bridge
  ip -n "$H" link set tsbr-t mtu $MTU up
  ip -n "$H" link add vx-t mtu $MTU type vxlan id 100 local "$L" dstport 4789 nolearning proxy dev ul
  ip -n "$H" link set vx-t master tsbr-t up
  ip -n "$H" link add tsh-t mtu $MTU type veth peer name eth0 netns "$H-cT"
  ip -n "$H" link set tsh-t master tsbr-t up
  container T "$H"
  entries "$H" vx-t T "$H"
  # S
  O=$H-ovs
  ip netns add "$O"
  ip -n "$O" link set lo up
  ip -n "$H" link add vx-s mtu $MTU type vxlan id 200 local "$L" dstport 4790 nolearning proxy dev ul
  ip -n "$H" link set vx-s netns "$O"
  ip -n "$O" link add br0 type bridge
  ip -n "$O" link set br0 mtu $MTU up
  ip -n "$O" link set vx-s master br0 up
  ip -n "$O" link add veth0 mtu $MTU type veth peer name eth0 netns "$H-cS"
  ip -n "$O" link set veth0 master br0 up
  container S "$H"
  entries "$O" vx-s S "$H"
  # M
  ip -n "$H" link add vx-m mtu $MTU type vxlan id 300 local "$L" dstport 4791 nolearning proxy dev ul
  ip -n "$H" link set vx-m up
  ip -n "$H" link add mv-m link vx-m mtu $MTU type macvlan mode bridge
  ip -n "$H" link set mv-m netns "$H-cM"
  ip -n "$H-cM" link set mv-m name eth0
  container M "$H"
  entries "$H" vx-m M "$H"
done

for w in T S M; do
  nsx "$A-c$w" ping -c 2 -W 1 "$(cip $w $B)" > /dev/null || { echo "way $w: no ping" >&2; exit 1; }
  nsx "$B-c$w" sockperf server --tcp -i "$(cip $w $B)" -p 11111 > /dev/null 2>&1 &
  nsx "$B-c$w" iperf3 -s -B "$(cip $w $B)" -p 5201 > /dev/null 2>&1 &
done
for w in T S M; do # servers listening
  for _ in $(seq 100); do nsx "$A-c$w" bash -c "exec 3<>/dev/tcp/$(cip $w $B)/5201" 2> /dev/null && break; sleep 0.05; done
done

declare -A RTT GBPS
for r in $(seq "$REPS"); do
  for w in T S M; do
    out=$(nsx "$A-c$w" sockperf ping-pong --tcp -i "$(cip $w $B)" -p 11111 -t 3 2>&1)
    rtt=$(awk '/percentile 50.000 =/ {print 2 * $NF}' <<< "$out")
    gbps=$(nsx "$A-c$w" iperf3 -c "$(cip $w $B)" -p 5201 -t 3 | awk '/receiver/ {print $(NF-2) ($(NF-1) == "Mbits/sec" ? "e-3" : "")}')
    RTT[$w]+=" $rtt"
    GBPS[$w]+=" $(awk "BEGIN {print $gbps}")"
    echo "rep $r $w: TCP round trip $rtt us, $gbps Gbit/s"
  done
done
median() { tr ' ' '\n' <<< "$*" | grep . | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "way  TCP round trip (median us, vs S)   throughput (median Gbit/s, vs S)"
s_rtt=$(median ${RTT[S]})
s_gbps=$(median ${GBPS[S]})
for w in T S M; do
  awk -v w=$w -v r="$(median ${RTT[$w]})" -v g="$(median ${GBPS[$w]})" -v sr="$s_rtt" -v sg="$s_gbps" \
    'BEGIN {printf "%s    %6.2f  %.2fx                      %6.2f  %.2fx\n", w, r, r / sr, g, g / sg}'
done

#!/usr/bin/env bash
# Clean up test labs (test/lab) whose test process died without tearing down,
# e.g. after a SIGKILL or a machine-level timeout. A lab records everything it
# creates in <base>/tsl-<id>/lab.state as it goes:
#   owner PID STARTTIME            the test process
#   pid PID STARTTIME RANK LABEL   every long-running process it started
#   netns NAME                     every network namespace (also those of
#                                  dind node containers, attached by name)
# Labs whose owner is still alive are left alone. For the others, recorded
# processes are stopped in rank order (dockerd first: it stops its containers,
# then its containerd; probes; plugins; ZooKeeper; last the outer engine of a
# docker-in-docker lab, which stops its node containers), but only when the pid
# still has the recorded start time -- never by name. Then leftover mounts
# under the lab directory are unmounted, the namespaces deleted, the
# directory removed. Also deletes tsl-* namespaces whose lab directory is gone
# and that hold no process.
#
#   scripts/lab-sweep.sh            sweep dead labs
#   scripts/lab-sweep.sh --check    only report; exit 1 if anything is left
set -uo pipefail

base=${TSL_BASE_DIR:-/tmp}
check_only=0
[ "${1:-}" = "--check" ] && check_only=1
left=0

starttime() { # pid -> field 22 of /proc/pid/stat, empty if gone or zombie
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  [ "$1" = Z ] && return 0
  echo "${20}"
}

alive_as() { # pid starttime
  [ -n "$2" ] && [ "$(starttime "$1")" = "$2" ]
}

wait_gone() { # pid starttime seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    alive_as "$1" "$2" || return 0
    sleep 0.1
  done
  return 1
}

sweep_lab() {
  local dir=$1 state=$1/lab.state
  local owner owner_st
  read -r _ owner owner_st < <(grep -m1 '^owner ' "$state")
  if [ -n "${owner:-}" ] && alive_as "$owner" "$owner_st"; then
    echo "lab-sweep: $dir in use by pid $owner, left alone"
    return
  fi
  if [ "$check_only" = 1 ]; then
    echo "lab-sweep: stale lab $dir (owner ${owner:-?} gone)"
    left=1
    return
  fi
  echo "lab-sweep: cleaning stale lab $dir"
  local rank pid st _r label
  for rank in 1 2 3 4 5 6; do
    while read -r _ pid st _r label; do
      [ "$_r" = "$rank" ] || continue
      if alive_as "$pid" "$st"; then
        echo "lab-sweep:   SIGTERM $label (pid $pid)"
        kill -TERM "$pid" 2>/dev/null
        if ! wait_gone "$pid" "$st" 60; then
          echo "lab-sweep:   SIGKILL $label (pid $pid)"
          kill -KILL "$pid" 2>/dev/null
          wait_gone "$pid" "$st" 10
        fi
      fi
    done < <(grep '^pid ' "$state")
  done
  local m
  while read -r m; do
    [ -n "$m" ] || continue
    echo "lab-sweep:   umount $m"
    umount "$m" 2>/dev/null || umount -l "$m"
  done < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  local ns
  while read -r _ ns; do
    if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
      echo "lab-sweep:   ip netns del $ns"
      ip netns del "$ns"
    fi
  done < <(grep '^netns ' "$state")
  rm -rf "$dir"
}

shopt -s nullglob
for state in "$base"/tsl-*/lab.state; do
  sweep_lab "$(dirname "$state")"
done

# namespaces of labs whose directory is gone
while read -r ns; do
  id=${ns#tsl-}
  id=${id%%-*}
  [ -d "$base/tsl-$id" ] && continue
  if [ -n "$(ip netns pids "$ns" 2>/dev/null)" ]; then
    echo "lab-sweep: orphan namespace $ns still has processes: $(ip netns pids "$ns" | tr '\n' ' ')(left alone)"
    left=1
    continue
  fi
  if [ "$check_only" = 1 ]; then
    echo "lab-sweep: orphan namespace $ns"
    left=1
  else
    echo "lab-sweep: deleting orphan namespace $ns"
    ip netns del "$ns"
  fi
done < <(ip netns list 2>/dev/null | awk '{print $1}' | grep '^tsl-[0-9a-f]\{6\}-')

exit "$left"

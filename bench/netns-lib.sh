# Shared by the namespace benches (bench/l2-paths.sh, bench/broadcast.sh):
# source it after setting P, the prefix of every namespace the bench makes.
# Two namespace "hosts" $A and $B; cleanup() kills what runs in them and
# deletes every $P-* namespace, and runs on exit.
A=$P-ha
B=$P-hb
cleanup() {
  for n in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
    ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$n"
  done
}
trap cleanup EXIT
nsx() { ip netns exec "$@"; }

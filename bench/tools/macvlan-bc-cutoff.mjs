// usage (inside the macvlan's namespace): node macvlan-bc-cutoff.mjs IFINDEX CUTOFF
// Sets IFLA_MACVLAN_BC_CUTOFF (Linux 6.5+) on a macvlan, which applies to
// every macvlan on its lower device; iproute2 6.1 has no "bclim" yet.
// tsoverlay creates its macvlans with -1 (src/dataplane/linux.ts). For bench/broadcast.sh.
import { AttrStream, createRtNetlink, ifla } from 'netlink';

const IFLA_MACVLAN_BC_CUTOFF = 9;
const MACVLAN_MODE_BRIDGE = 4;
const [index, cutoff] = process.argv.slice(2).map(Number);
if (!Number.isInteger(index) || !Number.isInteger(cutoff)) {
  console.error('usage: node macvlan-bc-cutoff.mjs IFINDEX CUTOFF');
  process.exit(2);
}
const encode = (data) => {
  const out = new AttrStream();
  out.emit(data);
  return Buffer.concat(out.bufs);
};
const data = encode((out) => {
  out.emit(ifla.formatMacvlan({ mode: MACVLAN_MODE_BRIDGE }));
  out.push(IFLA_MACVLAN_BC_CUTOFF, Buffer.from(Int32Array.of(cutoff).buffer));
});
const socket = createRtNetlink();
try {
  // RTM_NEWLINK on the existing device: the kind's changelink
  await socket.newLink({ index }, { linkinfo: encode(ifla.formatInfo({ kind: 'macvlan', data })) });
} finally {
  socket.socket.close();
}

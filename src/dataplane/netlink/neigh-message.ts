/**
 * RTM_NEWNEIGH answers (of RTM_GETNEIGH: FDB and neighbour entries) read by
 * hand: only entries that are ours become objects.
 *
 * Why: a full reconcile pass dumps the host's whole FDB and neighbour table
 * (at 5,000 endpoints ~18,000 entries, most of them the bridges' own entries
 * for their ports), and the `netlink` package's parser made objects of every
 * attribute of every one.
 */
import { bytesToIp, bytesToMac, isAllZero, isMulticastIp } from './addr.js';
import { AF_BRIDGE, AF_INET, AF_INET6, NDA_DST, NDA_LLADDR, NTF_SELF, NUD_PERMANENT } from './linux.js';
import { scanAttributes } from './raw-answers.js';

/** An FDB entry as read (the port's `FdbEntry`). */
export interface KernelFdb {
  mac: string;
  dst: string;
}

/** A neighbour entry as read (the port's `NeighEntry`). */
export interface KernelNeigh {
  ip: string;
  mac: string;
}

const NDMSG = 12; // struct ndmsg: family u8, pad u8+u16, ifindex s32, state u16, flags u8, type u8
const NTF_PROXY = 0x8;

/** Where NDA_DST and NDA_LLADDR of the last scanned message are (see scanAttributes). */
const from = new Int32Array(NDA_LLADDR + 1);
const to = new Int32Array(NDA_LLADDR + 1);
const scan = (b: Buffer): void => scanAttributes(b, NDMSG, b.length, from, to);

/** The unicast MAC and the 4- or 16-byte IP of the scanned message, or undefined. */
const macAndIp = (b: Buffer): { mac: Buffer; ip: Buffer } | undefined => {
  const dst = from[NDA_DST] ?? 0;
  const dstEnd = to[NDA_DST] ?? 0;
  const ll = from[NDA_LLADDR] ?? 0;
  const llEnd = to[NDA_LLADDR] ?? 0;
  const ipLen = dstEnd - dst;
  if (ll === 0 || llEnd - ll !== 6 || dst === 0 || (ipLen !== 4 && ipLen !== 16)) return undefined;
  return { mac: b.subarray(ll, llEnd), ip: b.subarray(dst, dstEnd) };
};

/**
 * The FDB entry in an RTM_NEWNEIGH payload, with its device's ifindex, if it
 * is one we program: AF_BRIDGE, `self`, `permanent`, a unicast dst. The
 * group's default entry (all-zero MAC, multicast dst) is the kernel's own.
 */
export const parseFdb = (b: Buffer): [number, KernelFdb] | undefined => {
  if (b.length < NDMSG || b.readUInt8(0) !== AF_BRIDGE) return undefined;
  if (!(b.readUInt8(10) & NTF_SELF) || !(b.readUInt16LE(8) & NUD_PERMANENT)) return undefined;
  scan(b);
  const e = macAndIp(b);
  if (!e || isMulticastIp(e.ip) || isAllZero(e.ip)) return undefined;
  return [b.readInt32LE(4), { mac: bytesToMac(e.mac), dst: bytesToIp(e.ip) }];
};

/**
 * The neighbour entry in an RTM_NEWNEIGH payload, with its device's
 * ifindex, if it is a permanent one (not a proxy entry, not one the kernel
 * resolved).
 */
export const parseNeigh = (b: Buffer): [number, KernelNeigh] | undefined => {
  if (b.length < NDMSG) return undefined;
  const family = b.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  if (!(b.readUInt16LE(8) & NUD_PERMANENT) || b.readUInt8(10) & NTF_PROXY) return undefined;
  scan(b);
  const e = macAndIp(b);
  if (!e) return undefined;
  return [b.readInt32LE(4), { ip: bytesToIp(e.ip), mac: bytesToMac(e.mac) }];
};

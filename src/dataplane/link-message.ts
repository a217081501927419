/**
 * RTM_NEWLINK answers (of RTM_GETLINK) read by hand, only for what the
 * adapter compares on: index, up, name, MTU, MAC, master, kind, and a VXLAN
 * device's settings.
 *
 * Why: the `netlink` package turns every attribute of every link into
 * objects (statistics, XDP, per-family data, ...). A node's reconcile pass
 * dumps all of its links: at 5,000 endpoints ~3,700 links, ~90 MB of garbage
 * for the package's parse, against what we read here. A dump also passes a
 * `keep` test of the name, so a link that is not ours costs one attribute
 * walk and no object.
 */
import { ifla } from 'netlink';
import { bytesToIp, bytesToMac, isAllZero } from './addr.js';
import type { VxlanState } from './spec.js';

/** A link as read from the kernel, with what we compare on. */
export interface KernelLink {
  index: number;
  name: string;
  kind: string;
  mtu: number;
  up: boolean;
  mac?: string;
  master?: number;
  vxlan?: VxlanState;
}

// linux/if_link.h, linux/if.h
const IFINFOMSG = 16;
const IFF_UP = 0x1;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
/** nla_type's flag bits (NLA_F_NESTED, NLA_F_NET_BYTEORDER). */
const NLA_TYPE_MASK = 0x3fff;

/** Offsets of the attributes in `b[start, end)`, by type (the first of each type). */
const attributes = (b: Buffer, start: number, end: number): Map<number, [number, number]> => {
  const out = new Map<number, [number, number]>();
  for (let at = start; at + 4 <= end; ) {
    const len = b.readUInt16LE(at);
    if (len < 4 || at + len > end) break; // malformed: stop, keep what was read
    const type = b.readUInt16LE(at + 2) & NLA_TYPE_MASK;
    if (!out.has(type)) out.set(type, [at + 4, at + len]);
    at += (len + 3) & ~3;
  }
  return out;
};

/** A NUL-terminated string attribute. */
const text = (b: Buffer, [from, to]: [number, number]): string => {
  const nul = b.indexOf(0, from);
  return b.toString('latin1', from, nul === -1 || nul > to ? to : nul);
};

const parseVxlan = (data: Buffer): VxlanState => {
  const v = ifla.parseVxlan(data);
  const localBytes = v.local ?? v.local6;
  const groupBytes = v.group ?? v.group6;
  const state: VxlanState = {
    vni: v.id ?? 0,
    port: v.port && v.port.length >= 2 ? v.port.readUInt16BE(0) : 0,
    learning: Boolean(v.learning),
    proxy: Boolean(v.proxy),
    l2miss: Boolean(v.l2miss),
    l3miss: Boolean(v.l3miss),
  };
  // The kernel always reports a local address; 0.0.0.0 / :: means unset.
  if (localBytes && !isAllZero(localBytes)) state.local = bytesToIp(localBytes);
  if (groupBytes && !isAllZero(groupBytes)) state.group = bytesToIp(groupBytes);
  if (v.link) state.link = v.link;
  return state;
};

/**
 * The link in the payload of one RTM_NEWLINK message (struct ifinfomsg and
 * its attributes); undefined if it is too short or `keep` refuses its name.
 * Netlink is host byte order; like the rest of the adapter this reads
 * little-endian (every platform Node runs Docker on).
 */
export const parseLinkMessage = (b: Buffer, keep?: (name: string) => boolean): KernelLink | undefined => {
  if (b.length < IFINFOMSG) return undefined;
  const attrs = attributes(b, IFINFOMSG, b.length);
  const nameAt = attrs.get(IFLA_IFNAME);
  const name = nameAt ? text(b, nameAt) : '';
  if (keep && !keep(name)) return undefined;
  const mtuAt = attrs.get(IFLA_MTU);
  const link: KernelLink = {
    index: b.readInt32LE(4),
    name,
    kind: '',
    mtu: mtuAt && mtuAt[1] - mtuAt[0] >= 4 ? b.readUInt32LE(mtuAt[0]) : 0,
    up: (b.readUInt32LE(8) & IFF_UP) !== 0,
  };
  const macAt = attrs.get(IFLA_ADDRESS);
  if (macAt && macAt[1] > macAt[0]) link.mac = bytesToMac(b.subarray(macAt[0], macAt[1]));
  const masterAt = attrs.get(IFLA_MASTER);
  if (masterAt && masterAt[1] - masterAt[0] >= 4) {
    const master = b.readUInt32LE(masterAt[0]);
    if (master) link.master = master;
  }
  const infoAt = attrs.get(IFLA_LINKINFO);
  if (infoAt) {
    const info = attributes(b, infoAt[0], infoAt[1]);
    const kindAt = info.get(IFLA_INFO_KIND);
    if (kindAt) link.kind = text(b, kindAt);
    const dataAt = info.get(IFLA_INFO_DATA);
    if (link.kind === 'vxlan' && dataAt) link.vxlan = parseVxlan(b.subarray(dataAt[0], dataAt[1]));
  }
  return link;
};

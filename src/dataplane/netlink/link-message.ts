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
import { IFLA_MACVLAN_BC_CUTOFF } from './linux.js';
import { scanAttributes } from './raw-answers.js';

/** What we know of an existing VXLAN device, as read back. */
export interface VxlanState {
  vni: number;
  port: number;
  local?: string;
  link?: number;
  group?: string;
  learning: boolean;
  proxy: boolean;
  l2miss?: boolean;
  l3miss?: boolean;
}

/** A link as read from the kernel, with what we compare on. */
export interface KernelLink {
  index: number;
  name: string;
  kind: string;
  mtu: number;
  up: boolean;
  mac?: string;
  master?: number;
  /** IFLA_LINK: the lower device (of a macvlan, a VXLAN device's underlay is in `vxlan.link`). */
  link?: number;
  /** IFLA_MACVLAN_MODE of a macvlan. */
  macvlanMode?: number;
  /** IFLA_MACVLAN_BC_CUTOFF of a macvlan (reported only when not 1). */
  macvlanBcCutoff?: number;
  vxlan?: VxlanState;
}

// linux/if_link.h, linux/if.h
const IFINFOMSG = 16;
const IFF_UP = 0x1;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_MACVLAN_MODE = 1;

/** Attribute types we read are below this. */
const TYPES = 32;

const linkFrom = new Int32Array(TYPES);
const linkTo = new Int32Array(TYPES);
const infoFrom = new Int32Array(TYPES);
const infoTo = new Int32Array(TYPES);

/** A NUL-terminated string attribute. */
const text = (b: Buffer, from: number, to: number): string => {
  const nul = b.indexOf(0, from);
  return b.toString('latin1', from, nul === -1 || nul > to ? to : nul);
};

/** A u32 attribute's value, or undefined if absent or short. */
const u32At = (b: Buffer, type: number): number | undefined => {
  const from = linkFrom[type] ?? 0;
  return from > 0 && (linkTo[type] ?? 0) - from >= 4 ? b.readUInt32LE(from) : undefined;
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

/** A 4-byte attribute found by the last scan into infoFrom/infoTo, or undefined. */
const info4 = (b: Buffer, type: number, signed: boolean): number | undefined => {
  const at = infoFrom[type] ?? 0;
  if (at === 0 || (infoTo[type] ?? 0) - at < 4) return undefined;
  return signed ? b.readInt32LE(at) : b.readUInt32LE(at);
};

/** Mode and broadcast cutoff inside a macvlan's IFLA_INFO_DATA (from/to: that attribute's payload). */
const readMacvlan = (b: Buffer, from: number, to: number, link: KernelLink): void => {
  scanAttributes(b, from, to, infoFrom, infoTo);
  const mode = info4(b, IFLA_MACVLAN_MODE, false);
  if (mode !== undefined) link.macvlanMode = mode;
  const cutoff = info4(b, IFLA_MACVLAN_BC_CUTOFF, true);
  if (cutoff !== undefined) link.macvlanBcCutoff = cutoff;
};

/**
 * The link in the payload of one RTM_NEWLINK message (struct ifinfomsg and
 * its attributes); undefined if it is too short or `keep` refuses its name.
 * Netlink is host byte order; like the rest of the adapter this reads
 * little-endian (every platform Node runs Docker on).
 */
export const parseLinkMessage = (b: Buffer, keep?: (name: string) => boolean): KernelLink | undefined => {
  if (b.length < IFINFOMSG) return undefined;
  scanAttributes(b, IFINFOMSG, b.length, linkFrom, linkTo);
  const name = linkFrom[IFLA_IFNAME] ? text(b, linkFrom[IFLA_IFNAME] ?? 0, linkTo[IFLA_IFNAME] ?? 0) : '';
  if (keep && !keep(name)) return undefined;
  const link: KernelLink = {
    index: b.readInt32LE(4),
    name,
    kind: '',
    mtu: u32At(b, IFLA_MTU) ?? 0,
    up: (b.readUInt32LE(8) & IFF_UP) !== 0,
  };
  const macFrom = linkFrom[IFLA_ADDRESS] ?? 0;
  const macTo = linkTo[IFLA_ADDRESS] ?? 0;
  if (macFrom > 0 && macTo > macFrom) link.mac = bytesToMac(b.subarray(macFrom, macTo));
  const master = u32At(b, IFLA_MASTER);
  if (master) link.master = master;
  const lower = u32At(b, IFLA_LINK);
  if (lower) link.link = lower;
  const infoAt = linkFrom[IFLA_LINKINFO] ?? 0;
  if (infoAt > 0) {
    scanAttributes(b, infoAt, linkTo[IFLA_LINKINFO] ?? 0, infoFrom, infoTo);
    const kindAt = infoFrom[IFLA_INFO_KIND] ?? 0;
    if (kindAt > 0) link.kind = text(b, kindAt, infoTo[IFLA_INFO_KIND] ?? 0);
    const dataAt = infoFrom[IFLA_INFO_DATA] ?? 0;
    if (link.kind === 'vxlan' && dataAt > 0) link.vxlan = parseVxlan(b.subarray(dataAt, infoTo[IFLA_INFO_DATA] ?? 0));
    if (link.kind === 'macvlan' && dataAt > 0) readMacvlan(b, dataAt, infoTo[IFLA_INFO_DATA] ?? 0, link);
  }
  return link;
};

/**
 * Validation rules shared by `NetlinkDataplane` and `FakeDataplane`, so the
 * fake accepts and rejects exactly what the adapter does (VXLAN device
 * compatibility: vxlan-compat.ts; the MTU limit: vxlan-mtu.ts).
 */
import { TsoverlayError } from '../errors.js';
import { canonicalIp, ipToBytes, isMulticastIp, isUnicastMac, macToBytes } from './netlink/addr.js';
import type { EndpointDevices, FdbEntry, Forwarding, NeighEntry, NetworkDevices } from './dataplane.js';
import { hostDevice } from './layout.js';
import { maxVxlanMtu } from './vxlan-mtu.js';
import { isOwnedName, OWNED_PREFIX } from './names.js';

export type { VxlanState } from './netlink/link-message.js';

export const MIN_MTU = 68;
export const MAX_MTU = 65535;
export const MAX_VNI = 0xffffff;

const invalid = (message: string): TsoverlayError => new TsoverlayError('INVALID_OPTION', message);

const checkName = (what: string, name: string): void => {
  if (!isOwnedName(name)) {
    throw invalid(`${what} name "${name}" must start with "${OWNED_PREFIX}" and be a valid device name of at most 15 bytes`);
  }
};

const checkInt = (what: string, v: number, min: number, max: number): void => {
  if (!Number.isInteger(v) || v < min || v > max) throw invalid(`${what} ${v} is not an integer in ${min}..${max}`);
};

/** A unicast MAC for a host device, or INVALID_OPTION. */
const checkHostMac = (what: string, mac: string | undefined): void => {
  if (mac === undefined) return;
  const bytes = macToBytes(mac);
  if (!bytes || (bytes[0]! & 1) !== 0) throw invalid(`${what} MAC "${mac}" is not a unicast MAC address`);
};

/** The host device's checks, per layout: its name (ours, not the VXLAN device's) and its MAC. */
const checkHostDevice = (spec: NetworkDevices): void => {
  switch (spec.layout) {
    case 'bridge':
      checkName('bridge', spec.bridge);
      checkName('vxlan', spec.vxlan);
      if (spec.bridge === spec.vxlan) throw invalid(`bridge and vxlan device need different names (both "${spec.bridge}")`);
      return checkHostMac('bridge', spec.bridgeMac);
    case 'macvlan':
      checkName('host macvlan', spec.hostMacvlan);
      checkName('vxlan', spec.vxlan);
      if (spec.hostMacvlan === spec.vxlan) throw invalid(`host macvlan and vxlan device need different names (both "${spec.hostMacvlan}")`);
      return checkHostMac('host macvlan', spec.hostMacvlanMac);
    default: {
      const never: never = spec;
      throw invalid(`unknown layout ${JSON.stringify(never)}`);
    }
  }
};

/** Validate a network spec; returns it with `local` in canonical form. */
export const checkNetworkSpec = (spec: NetworkDevices): NetworkDevices => {
  checkHostDevice(spec);
  checkInt('VNI', spec.vni, 1, MAX_VNI);
  checkInt('VXLAN port', spec.port, 1, 65535);
  checkInt('MTU', spec.mtu, MIN_MTU, MAX_MTU);
  checkInt('underlay interface index', spec.underlayIndex, 1, 0x7fffffff);
  const local = canonicalIp(spec.local);
  if (!local) throw invalid(`VXLAN local address "${spec.local}" is not an IP address`);
  if (spec.group === undefined) {
    // Drop an explicit `group: undefined` so the result compares cleanly.
    const { group: _, ...rest } = spec;
    return { ...rest, local: local.address };
  }
  const group = canonicalIp(spec.group);
  if (!group || !isMulticastIp(ipToBytes(group.address) ?? Buffer.alloc(0))) {
    throw invalid(`VXLAN group "${spec.group}" is not a multicast IP address`);
  }
  if (group.family !== local.family) {
    throw invalid(`VXLAN group ${group.address} is IPv${group.family} but local ${local.address} is IPv${local.family}`);
  }
  return { ...spec, local: local.address, group: group.address };
};

/** Validate an endpoint spec; returns it with the MAC in lower case. */
export const checkEndpointSpec = (spec: EndpointDevices): EndpointDevices => {
  switch (spec.layout) {
    case 'bridge':
      checkName('veth host end', spec.hostIf);
      checkName('veth container end', spec.containerIf);
      checkName('bridge', spec.bridge);
      if (spec.hostIf === spec.containerIf) throw invalid(`veth ends need different names (both "${spec.hostIf}")`);
      break;
    case 'macvlan':
      checkName('macvlan', spec.containerIf);
      checkName('vxlan', spec.vxlan);
      break;
    default: {
      const never: never = spec;
      throw invalid(`unknown layout ${JSON.stringify(never)}`);
    }
  }
  checkInt('MTU', spec.mtu, MIN_MTU, MAX_MTU);
  const mac = macToBytes(spec.mac);
  if (!mac || !isUnicastMac(mac)) throw invalid(`MAC "${spec.mac}" is not a unicast MAC address (aa:bb:cc:dd:ee:ff)`);
  return { ...spec, mac: spec.mac.toLowerCase() };
};

/**
 * Refuse a VXLAN MTU the underlay cannot carry, before touching anything.
 * (At creation the kernel silently clamps IFLA_MTU to the lower device's
 * limit; on change it answers EINVAL. Neither is a useful answer.)
 */
export const checkVxlanMtu = (spec: NetworkDevices, underlay: { name: string; mtu: number } | undefined): void => {
  if (!underlay) {
    throw new TsoverlayError(
      'KERNEL_FAILURE',
      `ensure network ${hostDevice(spec)}: underlay interface #${spec.underlayIndex} does not exist`,
    );
  }
  const family = canonicalIp(spec.local)?.family ?? 4;
  const max = maxVxlanMtu(underlay.mtu, family);
  if (spec.mtu > max) {
    throw invalid(
      `ensure network ${hostDevice(spec)}: MTU ${spec.mtu} is above ${max}, the most VXLAN over IPv${family} allows on underlay ${underlay.name} (MTU ${underlay.mtu})`,
    );
  }
};

// ------------------------------------------------------------ forwarding

/** The name given to a forwarding call must be one of ours (we never program foreign devices). */
export const checkForwardingDevice = (vxlan: string): void => checkName('vxlan', vxlan);

/** A unicast IP (not multicast, unspecified or 255.255.255.255), canonical, for FDB dsts and neighbour addresses. */
const unicastIp = (what: string, text: string): { address: string; family: 4 | 6 } => {
  const ip = canonicalIp(text);
  const bytes = ip && ipToBytes(ip.address);
  const broadcast = bytes?.length === 4 && bytes.every((b) => b === 0xff);
  if (!ip || !bytes || isMulticastIp(bytes) || broadcast || bytes.every((b) => b === 0)) {
    throw invalid(`${what} "${text}" is not a unicast IP address`);
  }
  return ip;
};

/**
 * Validate an FDB entry for a VXLAN device whose `local` has family
 * `localFamily` (undefined = unknown, left to the kernel); returns it canonical.
 */
export const checkFdbEntry = (vxlan: string, entry: FdbEntry, localFamily: 4 | 6 | undefined): FdbEntry => {
  const mac = macToBytes(entry.mac);
  if (!mac || !(isUnicastMac(mac) || mac.every((b) => b === 0))) {
    throw invalid(`FDB entry on ${vxlan}: MAC "${entry.mac}" is neither unicast nor all zeros`);
  }
  const dst = unicastIp(`FDB entry on ${vxlan}: dst`, entry.dst);
  if (localFamily !== undefined && dst.family !== localFamily) {
    throw invalid(`FDB entry on ${vxlan}: dst ${dst.address} is IPv${dst.family} but the device's local address is IPv${localFamily}`);
  }
  return { mac: entry.mac.toLowerCase(), dst: dst.address };
};

/** Validate a neighbour entry; returns it canonical, with the address family. */
export const checkNeighEntry = (vxlan: string, entry: NeighEntry): NeighEntry & { family: 4 | 6 } => {
  const ip = unicastIp(`neighbour entry on ${vxlan}: IP`, entry.ip);
  const mac = macToBytes(entry.mac);
  if (!mac || !isUnicastMac(mac)) throw invalid(`neighbour entry on ${vxlan}: MAC "${entry.mac}" is not a unicast MAC address`);
  return { ip: ip.address, mac: entry.mac.toLowerCase(), family: ip.family };
};

/** Sort key of an IP: IPv4 before IPv6, then numerically. */
const ipKey = (ip: string): string => {
  const b = ipToBytes(ip);
  return b ? `${b.length === 4 ? 4 : 6}${b.toString('hex')}` : `9${ip}`;
};

/** The order `listForwarding` returns entries in (both implementations). */
export const sortForwarding = (f: Forwarding): Forwarding => {
  const fdb = f.fdb
    .map((e) => ({ e, k: `${e.mac}/${ipKey(e.dst)}` }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((x) => x.e);
  const neigh = f.neigh
    .map((e) => ({ e, k: ipKey(e.ip) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((x) => x.e);
  return { fdb, neigh };
};

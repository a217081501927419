/**
 * Validation and compatibility rules shared by `NetlinkDataplane` and
 * `FakeDataplane`, so the fake accepts and rejects exactly what the adapter does.
 */
import { TsoverlayError } from '../errors.js';
import { canonicalIp, isUnicastMac, macToBytes } from './addr.js';
import type { EndpointDevices, NetworkDevices } from './dataplane.js';
import { isOwnedName, OWNED_PREFIX } from './names.js';

/** VXLAN encapsulation overhead over an IPv4 underlay (outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14). */
export const VXLAN_OVERHEAD_V4 = 50;
/** Same over an IPv6 underlay (outer IP header 40). */
export const VXLAN_OVERHEAD_V6 = 70;
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

/** Validate a network spec; returns it with `local` in canonical form. */
export const checkNetworkSpec = (spec: NetworkDevices): NetworkDevices => {
  checkName('bridge', spec.bridge);
  checkName('vxlan', spec.vxlan);
  if (spec.bridge === spec.vxlan) throw invalid(`bridge and vxlan device need different names (both "${spec.bridge}")`);
  checkInt('VNI', spec.vni, 1, MAX_VNI);
  checkInt('VXLAN port', spec.port, 1, 65535);
  checkInt('MTU', spec.mtu, MIN_MTU, MAX_MTU);
  checkInt('underlay interface index', spec.underlayIndex, 1, 0x7fffffff);
  const local = canonicalIp(spec.local);
  if (!local) throw invalid(`VXLAN local address "${spec.local}" is not an IP address`);
  return { ...spec, local: local.address };
};

/** Validate an endpoint spec; returns it with the MAC in lower case. */
export const checkEndpointSpec = (spec: EndpointDevices): EndpointDevices => {
  checkName('veth host end', spec.hostIf);
  checkName('veth container end', spec.containerIf);
  checkName('bridge', spec.bridge);
  if (spec.hostIf === spec.containerIf) throw invalid(`veth ends need different names (both "${spec.hostIf}")`);
  checkInt('MTU', spec.mtu, MIN_MTU, MAX_MTU);
  const mac = macToBytes(spec.mac);
  if (!mac || !isUnicastMac(mac)) throw invalid(`MAC "${spec.mac}" is not a unicast MAC address (aa:bb:cc:dd:ee:ff)`);
  return { ...spec, mac: spec.mac.toLowerCase() };
};

/** What we know of an existing VXLAN device, as read back. */
export interface VxlanState {
  vni: number;
  port: number;
  local?: string;
  link?: number;
  learning: boolean;
  proxy: boolean;
  l2miss?: boolean;
  l3miss?: boolean;
}

/**
 * Why an existing device named `spec.vxlan` cannot be kept for `spec`
 * ('' = compatible; master, MTU and up are converged in place instead).
 * Everything listed here needs a delete and recreate.
 */
export const vxlanIncompat = (kind: string, vx: VxlanState | undefined, spec: NetworkDevices): string => {
  if (kind !== 'vxlan' || !vx) return `kind is ${kind || 'unknown'}, want vxlan`;
  const reasons: string[] = [];
  if (vx.vni !== spec.vni) reasons.push(`vni ${vx.vni}, want ${spec.vni}`);
  if (vx.port !== spec.port) reasons.push(`port ${vx.port}, want ${spec.port}`);
  const want = canonicalIp(spec.local)?.address ?? spec.local;
  if (vx.local !== want) reasons.push(`local ${vx.local ?? 'unset'}, want ${want}`);
  if (vx.link !== spec.underlayIndex) reasons.push(`link ${vx.link ?? 'unset'}, want ${spec.underlayIndex}`);
  if (vx.learning) reasons.push('learning on, want off');
  if (!vx.proxy) reasons.push('proxy off, want on');
  if (vx.l2miss) reasons.push('l2miss on, want off');
  if (vx.l3miss) reasons.push('l3miss on, want off');
  return reasons.join(', ');
};

/** Largest VXLAN MTU the kernel accepts over an underlay of this MTU and family. */
export const maxVxlanMtu = (underlayMtu: number, family: 4 | 6): number =>
  underlayMtu - (family === 4 ? VXLAN_OVERHEAD_V4 : VXLAN_OVERHEAD_V6);

/**
 * Refuse a VXLAN MTU the underlay cannot carry, before touching anything.
 * (At creation the kernel silently clamps IFLA_MTU to the lower device's
 * limit; on change it answers EINVAL. Neither is a useful answer.)
 */
export const checkVxlanMtu = (spec: NetworkDevices, underlay: { name: string; mtu: number } | undefined): void => {
  if (!underlay) {
    throw new TsoverlayError(
      'KERNEL_FAILURE',
      `ensure network ${spec.bridge}: underlay interface #${spec.underlayIndex} does not exist`,
    );
  }
  const family = canonicalIp(spec.local)?.family ?? 4;
  const max = maxVxlanMtu(underlay.mtu, family);
  if (spec.mtu > max) {
    throw invalid(
      `ensure network ${spec.bridge}: MTU ${spec.mtu} is above ${max}, the most VXLAN over IPv${family} allows on underlay ${underlay.name} (MTU ${underlay.mtu})`,
    );
  }
};

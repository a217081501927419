/**
 * Deterministic kernel device names. Every name carries the `ts` ownership
 * prefix (the reconciler only ever deletes links with it) and fits IFNAMSIZ
 * (15 bytes + NUL).
 *
 *   tsbr-<vni:06x>   bridge of a network          (11 bytes)
 *                    (macvlan layout: the host macvlan, same name)
 *   tsvx-<vni:06x>   VXLAN device of a network    (11 bytes)
 *   tsh<endpoint:11> host end of an endpoint veth (14 bytes)
 *   tsc<endpoint:11> container end before Docker moves and renames it
 */
import { isValidIfname } from './netlink/ifname.js';

export const OWNED_PREFIX = 'ts';
export { IFNAME_MAX, isValidIfname } from './netlink/ifname.js';

const hex6 = (vni: number): string => vni.toString(16).padStart(6, '0');

export const bridgeName = (vni: number): string => `tsbr-${hex6(vni)}`;
/** The host's macvlan of a macvlan-layout network: the bridge's name (a network has one or the other). */
export const hostMacvlanName = (vni: number): string => bridgeName(vni);
export const vxlanName = (vni: number): string => `tsvx-${hex6(vni)}`;

const endpointStem = (endpointId: string): string => {
  const stem = endpointId.toLowerCase().replace(/[^0-9a-z]/g, '').slice(0, 11);
  if (stem.length < 6) throw new Error(`endpoint id "${endpointId}" is too short to name a device`);
  return stem;
};
export const hostIfName = (endpointId: string): string => `tsh${endpointStem(endpointId)}`;
export const containerIfName = (endpointId: string): string => `tsc${endpointStem(endpointId)}`;

export type OwnedKind = 'bridge' | 'vxlan' | 'host' | 'container';

/** What a name of ours denotes, or undefined for names we do not own. */
export const parseOwnedName = (name: string): { kind: OwnedKind; vni?: number; stem?: string } | undefined => {
  let m = /^ts(br|vx)-([0-9a-f]{6})$/.exec(name);
  if (m) return { kind: m[1] === 'br' ? 'bridge' : 'vxlan', vni: Number.parseInt(m[2] ?? '', 16) };
  m = /^ts([hc])([0-9a-z]{6,11})$/.exec(name);
  if (m) return { kind: m[1] === 'h' ? 'host' : 'container', stem: m[2] ?? '' };
  return undefined;
};


/** True for valid device names carrying the ownership prefix. */
export const isOwnedName = (name: string): boolean => name.startsWith(OWNED_PREFIX) && isValidIfname(name);

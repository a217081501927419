/**
 * VXLAN device compatibility, in one place: how an existing VXLAN device
 * differs from a network's spec, and which differences the kernel changes on
 * the running device (kept: its entries and the macvlans on it stay) and
 * which need a delete and recreate. The adapter and the fake (whether to
 * keep, change or recreate a device) and the planner (whether a network
 * needs an ensure) all read `vxlanDifferences`.
 *
 * Recreate: the kernel refuses to change the VNI, the port and the proxy
 * and miss flags of a device, `local` across address families, and a
 * multicast group is joined only when the device comes up. In place: `local`
 * within its family, the underlay interface (`link`), learning.
 * (Master, MTU and up are the link's, not the VXLAN device's: converged in
 * place by their owners.)
 */
import type { NetworkDevices } from './dataplane.js';
import { canonicalIp } from './netlink/addr.js';
import type { VxlanState } from './netlink/link-message.js';

/** One way a device differs from the spec: `have` as read, `want` from the spec (display text). */
export interface VxlanDifference {
  what: 'kind' | 'vni' | 'port' | 'local' | 'link' | 'group' | 'learning' | 'proxy' | 'l2miss' | 'l3miss';
  have: string;
  want: string;
  /** The kernel changes it on the running device (else: delete and recreate). */
  inPlace: boolean;
}

const onOff = (b: boolean): string => (b ? 'on' : 'off');

/**
 * Every difference between an existing device (`kind`, and its VXLAN
 * settings as read) and the spec, in a fixed order; [] when it matches.
 * A device that is no VXLAN device differs by its kind alone.
 */
export const vxlanDifferences = (kind: string, vx: VxlanState | undefined, spec: NetworkDevices): VxlanDifference[] => {
  if (kind !== 'vxlan' || !vx) return [{ what: 'kind', have: kind || 'unknown', want: 'vxlan', inPlace: false }];
  const out: VxlanDifference[] = [];
  const add = (what: VxlanDifference['what'], have: string, want: string, inPlace: boolean): void => {
    out.push({ what, have, want, inPlace });
  };
  if (vx.vni !== spec.vni) add('vni', String(vx.vni), String(spec.vni), false);
  if (vx.port !== spec.port) add('port', String(vx.port), String(spec.port), false);
  const want = canonicalIp(spec.local);
  const have = canonicalIp(vx.local ?? '');
  const wantLocal = want?.address ?? spec.local;
  if (vx.local !== wantLocal) add('local', vx.local ?? 'unset', wantLocal, have !== undefined && have.family === (want?.family ?? 4));
  if (vx.link !== spec.underlayIndex) add('link', String(vx.link ?? 'unset'), String(spec.underlayIndex), true);
  const group = spec.group === undefined ? undefined : (canonicalIp(spec.group)?.address ?? spec.group);
  if (vx.group !== group) add('group', vx.group ?? 'unset', group ?? 'unset', false);
  if (vx.learning) add('learning', onOff(true), onOff(false), true);
  if (!vx.proxy) add('proxy', onOff(false), onOff(true), false);
  if (vx.l2miss) add('l2miss', onOff(true), onOff(false), false);
  if (vx.l3miss) add('l3miss', onOff(true), onOff(false), false);
  return out;
};

/**
 * Why an existing device named `spec.vxlan` cannot be kept for `spec`
 * ('' = compatible; master, MTU, up and what `vxlanChanges` lists are
 * changed in place instead).
 */
export const vxlanIncompat = (kind: string, vx: VxlanState | undefined, spec: NetworkDevices): string =>
  vxlanDifferences(kind, vx, spec)
    .filter((d) => !d.inPlace)
    .map((d) => (d.what === 'kind' ? `kind is ${d.have}, want ${d.want}` : `${d.what} ${d.have}, want ${d.want}`))
    .join(', ');

/** What of a compatible VXLAN device differs from the spec and is changed in place. */
export interface VxlanChange {
  /** The new `local` (same family as the old). */
  local?: string;
  /** The new underlay interface index. */
  link?: number;
  /** Learning goes off. */
  learningOff?: true;
}

/**
 * The in-place changes that bring a device `vxlanIncompat` accepts to the
 * spec (none: `{}`).
 */
export const vxlanChanges = (vx: VxlanState, spec: NetworkDevices): VxlanChange => {
  const out: VxlanChange = {};
  for (const d of vxlanDifferences('vxlan', vx, spec)) {
    if (d.what === 'local') out.local = d.want;
    else if (d.what === 'link') out.link = spec.underlayIndex;
    else if (d.what === 'learning') out.learningOff = true;
  }
  return out;
};

/** `vxlanChanges` as log text ('' = none). */
export const describeVxlanChanges = (vx: VxlanState, c: VxlanChange): string =>
  [
    ...(c.local === undefined ? [] : [`local ${vx.local ?? 'unset'} -> ${c.local}`]),
    ...(c.link === undefined ? [] : [`link ${vx.link ?? 'unset'} -> ${c.link}`]),
    ...(c.learningOff ? ['learning on -> off'] : []),
  ].join(', ');

/**
 * Pure reconcile planning: what the kernel should hold (from the store) versus
 * what it holds (our links, read through netlink) → the actions that converge
 * it. Compatible devices produce no action, so a restarted plugin leaves
 * running containers alone.
 */
import type {
  BridgeNetworkDevices,
  EndpointDevices,
  FdbEntry,
  Forwarding,
  MacvlanNetworkDevices,
  NeighEntry,
  NetworkDevices,
  ObservedLink,
  TableRoute,
} from '../dataplane/dataplane.js';
import type { ResolverSource } from '../dataplane/firewall.js';
import { hostDevice, hostDeviceMac } from '../dataplane/layout.js';
import { type VxlanDifference, vxlanDifferences } from '../dataplane/vxlan-compat.js';
import { MACVLAN_MODE_BRIDGE } from '../dataplane/netlink/linux.js';
import { parseOwnedName } from '../dataplane/names.js';
import { canonicalIp } from '../net/ip.js';
import type { Desired, ResolverRouting } from './desired.js';

export type { Desired } from './desired.js';

export type Action =
  | { kind: 'ensureNetwork'; spec: NetworkDevices; reason: string }
  | { kind: 'ensureEndpoint'; spec: EndpointDevices; reason: string }
  | { kind: 'deleteLink'; name: string; reason: string }
  | { kind: 'addNeigh' | 'deleteNeigh'; vxlan: string; entry: NeighEntry; reason: string }
  | { kind: 'addFdb' | 'deleteFdb'; vxlan: string; entry: FdbEntry; reason: string }
  | { kind: 'addBridgeAddress'; bridge: string; address: string; reason: string }
  | { kind: 'addTableRoute' | 'deleteTableRoute'; route: TableRoute; reason: string };

/** Why an observed network's devices differ from the spec; '' when they match. */
export const networkDrift = (spec: NetworkDevices, byName: ReadonlyMap<string, ObservedLink>): string => {
  const vxlan = byName.get(spec.vxlan);
  switch (spec.layout) {
    case 'bridge':
      return bridgeDrift(spec, byName.get(spec.bridge)) || vxlanDrift(spec, vxlan, spec.bridge);
    case 'macvlan':
      return vxlanDrift(spec, vxlan, undefined) || hostMacvlanDrift(spec, byName.get(spec.hostMacvlan));
    default: {
      const never: never = spec;
      throw new Error(`unknown layout ${JSON.stringify(never)}`);
    }
  }
};

const bridgeDrift = (spec: BridgeNetworkDevices, bridge: ObservedLink | undefined): string => {
  if (!bridge) return `bridge ${spec.bridge} missing`;
  if (bridge.kind !== 'bridge') return `${spec.bridge} is a ${bridge.kind}, not a bridge`;
  return deviceDrift(spec, bridge);
};

/** MTU, MAC and up of the host's device (the bridge or the host macvlan). */
const deviceDrift = (spec: NetworkDevices, dev: ObservedLink): string => {
  const name = hostDevice(spec);
  const mac = hostDeviceMac(spec);
  if (dev.mtu !== spec.mtu) return `${name} mtu ${dev.mtu} != ${spec.mtu}`;
  if (mac && dev.mac !== mac) return `${name} mac ${dev.mac ?? 'none'} != ${mac}`;
  if (!dev.up) return `${name} is down`;
  return '';
};

/** A difference (vxlan-compat.ts) as the planner words it. */
const driftText = (name: string, d: VxlanDifference): string => {
  switch (d.what) {
    case 'kind':
      return `${name} is a ${d.have}, not a vxlan`;
    case 'link':
      return `${name} underlay link ${d.have} != ${d.want}`;
    case 'learning':
    case 'proxy':
    case 'l2miss':
    case 'l3miss':
      return `${name} has ${d.what} ${d.have}`;
    default:
      return `${name} ${d.what} ${d.have} != ${d.want}`;
  }
};

/**
 * The VXLAN device, on the bridge `master` (undefined: on none, the macvlan
 * layout). Its VXLAN settings are compared by the adapter's own rules
 * (`vxlanDifferences`): whatever the adapter would change or recreate is drift.
 */
const vxlanDrift = (spec: NetworkDevices, vxlan: ObservedLink | undefined, master: string | undefined): string => {
  if (!vxlan) return `vxlan ${spec.vxlan} missing`;
  const [first] = vxlanDifferences(vxlan.kind, vxlan.vxlan, spec);
  if (first) return driftText(spec.vxlan, first);
  if (vxlan.mtu !== spec.mtu) return `${spec.vxlan} mtu ${vxlan.mtu} != ${spec.mtu}`;
  if (master === undefined && vxlan.master !== undefined) return `${spec.vxlan} is on ${vxlan.master}, want no bridge`;
  if (master !== undefined && vxlan.master !== master) return `${spec.vxlan} not on ${master}`;
  if (!vxlan.up) return `${spec.vxlan} is down`;
  return '';
};

/** A macvlan in bridge mode on `lower`: '' when it is, else why not. */
const macvlanDrift = (name: string, link: ObservedLink, lower: string): string => {
  if (link.kind !== 'macvlan') return `${name} is a ${link.kind}, not a macvlan`;
  if (link.lower !== lower) return `${name} not on ${lower}`;
  if (link.macvlanMode !== MACVLAN_MODE_BRIDGE) return `${name} macvlan mode ${link.macvlanMode ?? 'unknown'} is not bridge`;
  return '';
};

/** Macvlan layout: the host's macvlan on the VXLAN device. */
const hostMacvlanDrift = (spec: MacvlanNetworkDevices, host: ObservedLink | undefined): string => {
  if (!host) return `host macvlan ${spec.hostMacvlan} missing`;
  return macvlanDrift(spec.hostMacvlan, host, spec.vxlan) || deviceDrift(spec, host);
};

/** Why an observed endpoint device (the veth's host end, or the macvlan while here) differs from the spec; '' when it matches. */
export const endpointDrift = (spec: EndpointDevices, host: ObservedLink): string => {
  switch (spec.layout) {
    case 'macvlan': {
      // `host` is the container end, still in this namespace
      const why = macvlanDrift(spec.containerIf, host, spec.vxlan);
      if (why) return why;
      if (host.mtu !== spec.mtu) return `${spec.containerIf} mtu ${host.mtu} != ${spec.mtu}`;
      if (host.mac !== spec.mac) return `${spec.containerIf} mac ${host.mac ?? 'none'} != ${spec.mac}`;
      return '';
    }
    case 'bridge':
      if (host.kind !== 'veth') return `${spec.hostIf} is a ${host.kind}, not a veth`;
      if (host.master !== spec.bridge) return `${spec.hostIf} not on ${spec.bridge}`;
      if (host.mtu !== spec.mtu) return `${spec.hostIf} mtu ${host.mtu} != ${spec.mtu}`;
      if (!host.up) return `${spec.hostIf} is down`;
      return '';
    default: {
      const never: never = spec;
      throw new Error(`unknown layout ${JSON.stringify(never)}`);
    }
  }
};

const fdbKey = (e: FdbEntry): string => `${e.mac} ${canonicalIp(e.dst) ?? e.dst}`;
const neighKey = (e: NeighEntry): string => `${canonicalIp(e.ip) ?? e.ip} ${e.mac}`;

/**
 * Entries to add and remove on one VXLAN device. Neighbours are added before
 * FDB entries and removed after them, so the kernel never answers ARP for a
 * MAC it cannot forward to.
 */
export const planForwarding = (vxlan: string, want: Forwarding, have: Forwarding | undefined): Action[] => {
  const out: Action[] = [];
  const haveFdb = new Set((have?.fdb ?? []).map(fdbKey));
  const haveNeigh = new Map((have?.neigh ?? []).map((n) => [canonicalIp(n.ip) ?? n.ip, n]));
  const wantFdb = new Set(want.fdb.map(fdbKey));
  const wantNeigh = new Set(want.neigh.map(neighKey));
  for (const entry of want.neigh) {
    const cur = haveNeigh.get(canonicalIp(entry.ip) ?? entry.ip);
    if (!cur || cur.mac !== entry.mac) out.push({ kind: 'addNeigh', vxlan, entry, reason: cur ? 'MAC changed' : 'remote endpoint' });
  }
  for (const entry of want.fdb) if (!haveFdb.has(fdbKey(entry))) out.push({ kind: 'addFdb', vxlan, entry, reason: 'remote endpoint' });
  for (const entry of have?.fdb ?? []) if (!wantFdb.has(fdbKey(entry))) out.push({ kind: 'deleteFdb', vxlan, entry, reason: 'no longer in the store' });
  const wantNeighIps = new Set(want.neigh.map((w) => canonicalIp(w.ip) ?? w.ip));
  for (const entry of have?.neigh ?? []) {
    if (!wantNeigh.has(neighKey(entry)) && !wantNeighIps.has(canonicalIp(entry.ip) ?? entry.ip)) {
      out.push({ kind: 'deleteNeigh', vxlan, entry, reason: 'no longer in the store' });
    }
  }
  return out;
};

/**
 * Device actions: bridges, VXLAN devices and veths. Forwarding entries are
 * planned per device afterwards (planForwarding), once the devices exist,
 * because a recreated VXLAN device starts without entries.
 */
export const plan = (desired: Desired, observed: readonly ObservedLink[]): Action[] => {
  const byName = new Map(observed.map((l) => [l.name, l]));
  const actions: Action[] = [];
  const wanted = new Set<string>();

  for (const spec of desired.networks) {
    wanted.add(hostDevice(spec)).add(spec.vxlan);
    const reason = networkDrift(spec, byName);
    if (reason) actions.push({ kind: 'ensureNetwork', spec, reason });
  }
  for (const spec of desired.endpoints) actions.push(...planEndpoint(spec, byName, wanted));
  for (const link of observed) {
    if (wanted.has(link.name) || !parseOwnedName(link.name)) continue;
    const vni = removedVniOf(link, byName, desired.removable);
    if (vni !== undefined) actions.push({ kind: 'deleteLink', name: link.name, reason: `network ${vni} was removed through Docker` });
  }
  return actions;
};

/**
 * The VNI of a removed network this link belongs to (its own name, or the
 * bridge or VXLAN device it hangs off), if that network was removed through
 * Docker; undefined otherwise: the link is kept.
 */
const removedVniOf = (link: ObservedLink, byName: ReadonlyMap<string, ObservedLink>, removable: ReadonlySet<number> | undefined): number | undefined => {
  if (!removable || removable.size === 0) return undefined;
  const own = parseOwnedName(link.name)?.vni;
  if (own !== undefined) return removable.has(own) ? own : undefined;
  for (const parent of [link.master, link.lower]) {
    const vni = parent !== undefined && byName.has(parent) ? parseOwnedName(parent)?.vni : undefined;
    if (vni !== undefined && removable.has(vni)) return vni;
  }
  return undefined;
};

/**
 * Our links that the store does not ask for and that are not known to be
 * removed: kept (absence is not deletion), and worth one log line each.
 */
export const keptLinks = (desired: Desired, observed: readonly ObservedLink[], actions: readonly Action[] = plan(desired, observed)): string[] => {
  const deleted = new Set(actions.flatMap((a) => (a.kind === 'deleteLink' ? [a.name] : [])));
  const wanted = new Set<string>();
  for (const spec of desired.networks) wanted.add(hostDevice(spec)).add(spec.vxlan);
  for (const spec of desired.endpoints) {
    wanted.add(spec.containerIf);
    if (spec.layout === 'bridge') wanted.add(spec.hostIf);
  }
  return observed.filter((l) => parseOwnedName(l.name) && !wanted.has(l.name) && !deleted.has(l.name)).map((l) => l.name);
};

/** The action an endpoint needs, if any; its devices' names go to `wanted`. */
const planEndpoint = (spec: EndpointDevices, byName: ReadonlyMap<string, ObservedLink>, wanted: Set<string>): Action[] => {
  switch (spec.layout) {
    case 'macvlan': {
      // The endpoint is its container end alone. Absent, it is in the
      // container (or died with it, or with a recreated VXLAN device):
      // nothing here can tell, and nothing is made again.
      wanted.add(spec.containerIf);
      const own = byName.get(spec.containerIf);
      const reason = own && endpointDrift(spec, own);
      return reason ? [{ kind: 'ensureEndpoint', spec, reason }] : [];
    }
    case 'bridge': {
      wanted.add(spec.hostIf).add(spec.containerIf);
      const host = byName.get(spec.hostIf);
      if (host) {
        const reason = endpointDrift(spec, host);
        return reason ? [{ kind: 'ensureEndpoint', spec, reason }] : [];
      }
      // Not joined yet (or left) and the host end vanished: make the pair again.
      if (byName.has(spec.containerIf)) return [{ kind: 'ensureEndpoint', spec, reason: `${spec.hostIf} missing` }];
      // Neither end present: the container's namespace holds nothing of ours any
      // more (the pair dies with it); Docker's DeleteEndpoint will clean the record.
      return [];
    }
    default: {
      const never: never = spec;
      throw new Error(`unknown layout ${JSON.stringify(never)}`);
    }
  }
};

/**
 * Device actions between two passes, without reading the kernel: networks
 * that appeared or changed in the store are ensured (idempotent), networks
 * that left it lose their devices. Endpoints are left to the Docker calls
 * that make and remove them; their drift, like every other drift, is the
 * full pass's (plan) to find.
 */
export const planDelta = (prev: Desired, next: Desired): Action[] => {
  const actions: Action[] = [];
  const before = new Map(prev.networks.map((n) => [n.vxlan, n]));
  const after = new Set(next.networks.map((n) => n.vxlan));
  for (const spec of next.networks) {
    const old = before.get(spec.vxlan);
    if (!old || JSON.stringify(old) !== JSON.stringify(spec)) {
      actions.push({ kind: 'ensureNetwork', spec, reason: old ? 'changed in the store' : 'new in the store' });
    }
  }
  for (const spec of prev.networks) {
    // gone from here: its devices go only if it was removed through Docker (else a full pass keeps them, with a log line)
    if (after.has(spec.vxlan) || !next.removable?.has(spec.vni)) continue;
    actions.push({ kind: 'deleteLink', name: spec.vxlan, reason: 'network removed through Docker' });
    actions.push({ kind: 'deleteLink', name: hostDevice(spec), reason: 'network removed through Docker' });
  }
  return actions;
};

/**
 * A reply route of the resolver's table that no desired network asks for
 * but stays while its device does: that of a network kept here although
 * the store no longer has it here (absence is not deletion; its containers
 * must go on resolving). A route of a desired device to a subnet no longer
 * desired goes.
 */
const keptResolverRoute = (want: ResolverRouting, r: TableRoute): boolean =>
  !want.bridges.includes(r.dev) && !want.routes.some((w) => w.dst === r.dst);

/**
 * The subnets the resolver answers and the device each must come in on
 * (its source filter): the desired networks', and those of kept networks
 * whose reply routes are in the table (`routes`, read from the kernel: a
 * route goes with its device).
 */
export const resolverSources = (want: ResolverRouting, routes: readonly TableRoute[]): ResolverSource[] =>
  [...want.routes, ...routes.filter((r) => keptResolverRoute(want, r))].map((r) => ({ subnet: r.dst, device: r.dev }));

/**
 * The resolver's addresses and reply routes, after the devices exist (a
 * route's `src` must be on a device first, so addresses come before routes).
 * A route toward a kept network's device stays while the device exists.
 */
export const planResolver = (want: ResolverRouting, links: readonly ObservedLink[], routes: readonly TableRoute[]): Action[] => {
  const out: Action[] = [];
  const byName = new Map(links.map((l) => [l.name, l]));
  const ip = canonicalIp(want.address) ?? want.address;
  for (const bridge of want.bridges) {
    const has = (byName.get(bridge)?.addresses ?? []).some((a) => canonicalIp(a) === ip);
    if (!has) out.push({ kind: 'addBridgeAddress', bridge, address: want.address, reason: 'resolver address missing' });
  }
  const key = (r: TableRoute): string => `${r.dst} ${r.dev} ${canonicalIp(r.src ?? '') ?? ''}`;
  const have = new Set(routes.map(key));
  const wanted = new Set(want.routes.map(key));
  for (const r of want.routes) if (!have.has(key(r))) out.push({ kind: 'addTableRoute', route: r, reason: 'resolver reply route missing' });
  const wantedDst = new Set(want.routes.map((r) => r.dst));
  for (const r of routes) {
    if (wanted.has(key(r)) || wantedDst.has(r.dst) || (byName.has(r.dev) && keptResolverRoute(want, r))) continue;
    out.push({ kind: 'deleteTableRoute', route: r, reason: 'network gone' });
  }
  return out;
};

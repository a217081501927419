/**
 * Pure reconcile planning: what the kernel should hold (from the store) versus
 * what it holds (our links, read through netlink) → the actions that converge
 * it. Compatible devices produce no action, so a restarted plugin leaves
 * running containers alone.
 */
import type { EndpointDevices, FdbEntry, Forwarding, NeighEntry, NetworkDevices, ObservedLink, TableRoute } from '../dataplane/dataplane.js';
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

/** Why an observed bridge/VXLAN pair differs from the spec; '' when it matches. */
export const networkDrift = (spec: NetworkDevices, bridge: ObservedLink | undefined, vxlan: ObservedLink | undefined): string => {
  if (!bridge) return `bridge ${spec.bridge} missing`;
  if (bridge.kind !== 'bridge') return `${spec.bridge} is a ${bridge.kind}, not a bridge`;
  if (bridge.mtu !== spec.mtu) return `${spec.bridge} mtu ${bridge.mtu} != ${spec.mtu}`;
  if (spec.bridgeMac && bridge.mac !== spec.bridgeMac) return `${spec.bridge} mac ${bridge.mac ?? 'none'} != ${spec.bridgeMac}`;
  if (!bridge.up) return `${spec.bridge} is down`;
  if (!vxlan) return `vxlan ${spec.vxlan} missing`;
  const vx = vxlan.vxlan;
  if (vxlan.kind !== 'vxlan' || !vx) return `${spec.vxlan} is a ${vxlan.kind}, not a vxlan`;
  if (vx.vni !== spec.vni) return `${spec.vxlan} vni ${vx.vni} != ${spec.vni}`;
  if (vx.port !== spec.port) return `${spec.vxlan} port ${vx.port} != ${spec.port}`;
  if (canonicalIp(vx.local ?? '') !== canonicalIp(spec.local)) return `${spec.vxlan} local ${vx.local ?? 'unset'} != ${spec.local}`;
  if (vx.link !== undefined && vx.link !== spec.underlayIndex) return `${spec.vxlan} underlay link ${vx.link} != ${spec.underlayIndex}`;
  if (canonicalIp(vx.group ?? '') !== canonicalIp(spec.group ?? '')) return `${spec.vxlan} group ${vx.group ?? 'unset'} != ${spec.group ?? 'unset'}`;
  if (vx.learning) return `${spec.vxlan} has learning on`;
  if (!vx.proxy) return `${spec.vxlan} has proxy off`;
  if (vxlan.mtu !== spec.mtu) return `${spec.vxlan} mtu ${vxlan.mtu} != ${spec.mtu}`;
  if (vxlan.master !== spec.bridge) return `${spec.vxlan} not on ${spec.bridge}`;
  if (!vxlan.up) return `${spec.vxlan} is down`;
  return '';
};

/** Why an observed host veth end differs from the spec; '' when it matches. */
export const endpointDrift = (spec: EndpointDevices, host: ObservedLink): string => {
  if (host.kind !== 'veth') return `${spec.hostIf} is a ${host.kind}, not a veth`;
  if (host.master !== spec.bridge) return `${spec.hostIf} not on ${spec.bridge}`;
  if (host.mtu !== spec.mtu) return `${spec.hostIf} mtu ${host.mtu} != ${spec.mtu}`;
  if (!host.up) return `${spec.hostIf} is down`;
  return '';
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
    wanted.add(spec.bridge).add(spec.vxlan);
    const reason = networkDrift(spec, byName.get(spec.bridge), byName.get(spec.vxlan));
    if (reason) actions.push({ kind: 'ensureNetwork', spec, reason });
  }
  for (const spec of desired.endpoints) {
    wanted.add(spec.hostIf).add(spec.containerIf);
    const host = byName.get(spec.hostIf);
    if (host) {
      const reason = endpointDrift(spec, host);
      if (reason) actions.push({ kind: 'ensureEndpoint', spec, reason });
    } else if (byName.has(spec.containerIf)) {
      // Not joined yet (or left) and the host end vanished: make the pair again.
      actions.push({ kind: 'ensureEndpoint', spec, reason: `${spec.hostIf} missing` });
    }
    // Neither end present: the container's namespace holds nothing of ours any
    // more (the pair dies with it); Docker's DeleteEndpoint will clean the record.
  }
  for (const link of observed) {
    if (wanted.has(link.name) || !parseOwnedName(link.name)) continue;
    actions.push({ kind: 'deleteLink', name: link.name, reason: 'not in the store' });
  }
  return actions;
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
    if (after.has(spec.vxlan)) continue;
    actions.push({ kind: 'deleteLink', name: spec.vxlan, reason: 'network left the store' });
    actions.push({ kind: 'deleteLink', name: spec.bridge, reason: 'network left the store' });
  }
  return actions;
};

/**
 * The resolver's addresses and reply routes, after the devices exist (a
 * route's `src` must be on a device first, so addresses come before routes).
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
    if (!wanted.has(key(r)) && !wantedDst.has(r.dst)) out.push({ kind: 'deleteTableRoute', route: r, reason: 'network gone' });
  }
  return out;
};

/**
 * A reconcile pass scoped to the networks a store change concerns
 * (src/cluster/store-change.ts): it reads only those networks' records and
 * endpoints, computes their share of the desired state (desired.ts,
 * networkPart), puts it in place of theirs in what the last good pass made
 * true, and plans device actions for them alone. Neither the kernel nor any
 * other network is read, so its cost follows the size of the networks it
 * looks at, not the cluster's.
 *
 * Absence is not deletion, and a scoped read sees too little to decide a
 * removal: everything outside the scope stays exactly as the last pass left
 * it. A network whose record is gone, or that this node had and no longer
 * has, widens the pass to the whole store (the removal rules of
 * Desired.removable need every record and tombstone). A network whose record
 * cannot be read is left alone (said once while it lasts); the periodic full
 * pass still looks at everything.
 */
import type { EndpointDevices, Forwarding, NetworkDevices, TableRoute } from '../dataplane/dataplane.js';
import { hostDevice } from '../dataplane/layout.js';
import { networkDevices } from '../dataplane/record-devices.js';
import { errorText } from '../errors.js';
import type { Log } from '../log.js';
import type { NetworkRecord, NodeRecord } from '../model.js';
import { type Desired, type NetworkPart, networkPart } from './desired.js';
import { type DesiredSource, type Observation, readsEndpoints } from './observe.js';
import { planDelta } from './plan.js';

/** What a scoped read found: the merged desired state, or why the pass must read everything. */
export type ScopedRead =
  | { kind: 'read'; desired: Desired; actions: Observation['actions']; devices: Set<string> }
  | { kind: 'widen'; why: string };

/** One scoped network as read: its record and, if this node takes part in it, its endpoints; or unreadable, or gone. */
type Read =
  | { key: string; rec: NetworkRecord; endpoints?: Awaited<ReturnType<DesiredSource['state']['listEndpointsStamped']>> }
  | { key: string; unreadable: unknown }
  | { key: string; gone: true };

/** The network device an endpoint hangs off: its bridge, or its VXLAN device (macvlan). */
const parentOf = (ep: EndpointDevices): string => (ep.layout === 'bridge' ? ep.bridge : ep.vxlan);

export class PartialPass {
  /** Networks whose record could not be read, as last said (once each while it lasts). */
  private readonly unreadable = new Set<string>();

  constructor(
    private readonly src: DesiredSource,
    private readonly log: Log,
  ) {}

  /**
   * Read the scoped networks and merge their parts into `previous`; a read
   * that fails widens the pass (the whole read then says why, or succeeds).
   */
  async read(keys: ReadonlySet<string>, previous: Desired): Promise<ScopedRead> {
    const { state, node, underlay, vxlanPort, dnsAddress, peers } = this.src;
    let reads: Read[];
    let live: NodeRecord[];
    try {
      [reads, live] = await Promise.all([Promise.all([...keys].map((key) => this.readOne(key))), state.listNodes()]);
    } catch (e) {
      return { kind: 'widen', why: `store read failed: ${errorText(e)}` };
    }
    const nodes = new Map((peers ? peers.members(live) : live).map((n) => [n.node, n]));
    const ctx = { nodes, me: node, underlay, vxlanPort, ...(dnsAddress ? { dnsAddress } : {}) };
    const had = new Set(previous.networks.map((n) => n.vxlan));
    const parts: Array<{ key: string; vxlan: string; part: NetworkPart | undefined }> = [];
    const records: NetworkRecord[] = [];
    for (const r of reads) {
      if ('gone' in r) return { kind: 'widen', why: `network ${r.key} has no record any more` };
      if ('unreadable' in r) {
        this.sayUnreadable(r.key, r.unreadable);
        continue; // left alone: its devices and entries stay as they are
      }
      this.unreadable.delete(r.key);
      const vxlan = networkDevices(r.rec, underlay, vxlanPort).vxlan;
      // a network this node has but takes no part in: its devices, no remote entries
      const part = networkPart({ net: r.rec, takesPart: r.endpoints !== undefined, ...(r.endpoints ?? { endpoints: [] }) }, ctx);
      if (!part && had.has(vxlan)) return { kind: 'widen', why: `network ${r.key} left this node` };
      records.push(r.rec);
      parts.push({ key: r.key, vxlan, part });
    }
    this.src.onNetworksRead?.(records, new Set(records.map((r) => r.id)));
    const desired = mergeParts(previous, parts);
    const before = previous.networks.filter((n) => parts.some((p) => p.vxlan === n.vxlan));
    const after = parts.flatMap((p) => (p.part ? [p.part.devices] : []));
    // no `removable`: a scoped pass never deletes a device
    const actions = planDelta(only(before), only(after));
    return { kind: 'read', desired, actions, devices: new Set(after.map((d) => d.vxlan)) };
  }

  private async readOne(key: string): Promise<Read> {
    let rec: NetworkRecord | undefined;
    try {
      rec = await this.src.state.getNetwork(key);
    } catch (e) {
      return { key, unreadable: e };
    }
    if (!rec) return { key, gone: true };
    // endpoints matter only for networks this node takes part in
    if (!readsEndpoints(this.src, rec)) return { key, rec };
    return { key, rec, endpoints: await this.src.state.listEndpointsStamped(rec.id) };
  }

  private sayUnreadable(key: string, e: unknown): void {
    if (this.unreadable.has(key)) return;
    this.unreadable.add(key);
    this.log.warn({ network: key, err: e, error: errorText(e) }, 'network record unreadable: its devices and entries are left as they are');
  }
}

const only = (networks: NetworkDevices[]): Desired => ({ networks, endpoints: [], forwarding: new Map() });

/**
 * `items` with every item of a replaced group (`groupOf`: its group, or
 * undefined if it is in none) swapped for that group's new items, in the
 * place of the group's first item; groups new to `items` come last. Keeping
 * the order keeps an unchanged state equal to the last one, item for item.
 */
const replaceGroups = <T>(items: readonly T[], groupOf: (item: T) => string | undefined, next: ReadonlyMap<string, readonly T[]>): T[] => {
  const out: T[] = [];
  const placed = new Set<string>();
  for (const item of items) {
    const g = groupOf(item);
    if (g === undefined) out.push(item);
    else if (!placed.has(g)) {
      placed.add(g);
      out.push(...(next.get(g) ?? []));
    }
  }
  for (const [g, added] of next) if (!placed.has(g)) out.push(...added);
  return out;
};

/**
 * `previous` with the parts of the scoped networks (grouped by VXLAN device)
 * in place of theirs; a scoped network without a part here has none. Every
 * other network's devices, endpoints, entries and resolver routes are kept
 * as they were, and so are the host-wide members and removable VNIs.
 */
export const mergeParts = (
  previous: Desired,
  parts: ReadonlyArray<{ key: string; vxlan: string; part: NetworkPart | undefined }>,
): Desired => {
  // every device of a scoped network, old or new → its VXLAN device (the group)
  const group = new Map<string, string>();
  for (const p of parts) group.set(p.vxlan, p.vxlan);
  for (const n of previous.networks) if (group.has(n.vxlan)) group.set(hostDevice(n), n.vxlan);
  const by = <T>(pick: (part: NetworkPart) => readonly T[]): Map<string, readonly T[]> => {
    const m = new Map<string, readonly T[]>();
    for (const p of parts) m.set(p.vxlan, p.part ? pick(p.part) : []);
    return m;
  };
  for (const p of parts) if (p.part) group.set(hostDevice(p.part.devices), p.vxlan);

  const networks = replaceGroups(previous.networks, (n) => group.get(n.vxlan), by((p) => [p.devices]));
  const endpoints = replaceGroups(previous.endpoints, (ep) => group.get(parentOf(ep)), by((p) => p.endpoints));
  const forwarding = new Map<string, Forwarding>(previous.forwarding);
  for (const p of parts) {
    if (p.part) forwarding.set(p.vxlan, p.part.forwarding);
    else forwarding.delete(p.vxlan);
  }
  const keyGroup = new Map(parts.map((p) => [p.key, p.vxlan]));
  const conflicts = replaceGroups(previous.conflicts ?? [], (c) => keyGroup.get(c.network), by((p) => p.conflicts));

  const out: Desired = { networks, endpoints, forwarding };
  if (previous.resolver) {
    const { address } = previous.resolver;
    const bridges = replaceGroups(previous.resolver.bridges, (b) => group.get(b), by((p) => [hostDevice(p.devices)]));
    const routes: TableRoute[] = replaceGroups(previous.resolver.routes, (r) => group.get(r.dev), by((p) => p.resolverRoutes ?? []));
    out.resolver = { address, bridges, routes };
  }
  if (previous.vxlanMembers) out.vxlanMembers = previous.vxlanMembers;
  if (conflicts.length > 0) out.conflicts = conflicts;
  if (previous.removable) out.removable = previous.removable;
  return out;
};

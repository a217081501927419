/**
 * `tsoverlay status` as data: the cluster as the store tells it, and where
 * this node's kernel differs from what the store asks of it. Pure: a
 * Snapshot (status-read.ts) in, a StatusReport out.
 *
 * The differences are the reconciler's own: the desired state is
 * computeDesired's, device drift is plan()'s, forwarding drift is
 * planForwarding()'s and the resolver's is planResolver()'s. This file only
 * sorts the actions those would take into what a person reads (a missing
 * entry, an extra one, an entry toward the wrong VTEP).
 */
import { FLOOD_MAC, type FdbEntry, type NeighEntry } from '../dataplane/dataplane.js';
import { vxlanName } from '../dataplane/names.js';
import { networkLayout } from '../model.js';
import { type Desired, computeDesired } from '../reconcile/desired.js';
import { type Action, keptLinks, plan, planForwarding, planResolver } from '../reconcile/plan.js';
import type { Snapshot } from './status-read.js';

export interface NodeStatus {
  name: string;
  vtep: string;
  vxlanPort?: number;
  hostname?: string;
  /** The plugin version the node's record carries (absent in records that have none). */
  version?: string;
  /** alive: its membership record is there; gone: the store still holds its endpoints or networks (or a record of it being gone) but it has no membership. */
  state: 'alive' | 'gone';
  /** When its plugin process started (from its record); absent for a gone node. */
  startedAt?: string;
  /**
   * A gone node only: when the collector first saw it gone (/gone/<node>, ISO),
   * or null if no record says (not seen gone yet, or a collector of an older
   * version).
   */
  goneSince?: string | null;
  /** Seconds since its store session created its membership record, where the store keeps that (ZooKeeper). */
  sessionAgeS?: number;
  self: boolean;
}

export interface NetworkStatus {
  key: string;
  names: string[];
  vni: number;
  subnets: string[];
  layout: string;
  mtu: number;
  internal: boolean;
  multicast?: string;
  options: Record<string, string>;
  /** Removed through Docker somewhere; each node drops its copy once unused. */
  deleted: boolean;
  /** Nodes whose engine has the network, with how many endpoints each has in it. */
  nodes: Array<{ node: string; endpoints: number }>;
}

export interface EndpointStatus {
  network: string;
  id: string;
  ipv4?: string;
  ipv6?: string;
  mac: string;
  device: string;
  joined: boolean;
}

/** One forwarding entry the store and the kernel disagree about. */
export interface EntryDifference {
  network: string;
  vxlan: string;
  table: 'fdb' | 'neigh';
  problem: 'missing' | 'extra' | 'wrong-vtep' | 'wrong-mac';
  /** FDB: the MAC; neighbour: the IP. */
  key: string;
  /** What the store asks for (FDB: VTEP; neighbour: MAC); absent for an extra entry. */
  want?: string;
  /** What the kernel holds; absent for a missing entry. */
  have?: string;
}

/** A device (or resolver address/route) the reconciler would change. */
export interface DeviceDifference {
  network?: string;
  device: string;
  problem: string;
}

export interface StatusReport {
  node: string;
  vtep: string;
  at: string;
  nodes: NodeStatus[];
  networks: NetworkStatus[];
  endpoints: EndpointStatus[];
  devices: DeviceDifference[];
  forwarding: EntryDifference[];
  /** Our links the store does not ask for, kept (absence is not deletion): not a difference. */
  kept: string[];
  /** Store records that do not decode (skipped, like the plugin skips them). */
  badRecords: string[];
  converged: boolean;
}

const networkName = (s: Snapshot, vxlan: string): string => {
  const net = s.networks.find((n) => vxlanName(n.net.vni) === vxlan)?.net;
  return net?.name ?? net?.id ?? vxlan;
};

const nodeStatuses = (s: Snapshot): NodeStatus[] => {
  const out: NodeStatus[] = s.nodes.map(({ rec, sessionSinceMs }) => ({
    name: rec.node,
    vtep: rec.address,
    vxlanPort: rec.vxlanPort,
    hostname: rec.hostname,
    ...(typeof rec.version === 'string' && rec.version !== '' ? { version: rec.version } : {}),
    state: 'alive',
    startedAt: rec.startedAt,
    ...(sessionSinceMs !== undefined ? { sessionAgeS: Math.max(0, Math.round((s.at - sessionSinceMs) / 1000)) } : {}),
    self: rec.node === s.me,
  }));
  const alive = new Set(out.map((n) => n.name));
  const referenced = new Set<string>();
  for (const { net, endpoints } of s.networks) {
    for (const n of Object.values(net.aliases)) referenced.add(n);
    for (const ep of endpoints) referenced.add(ep.node);
  }
  for (const name of s.goneSince.keys()) referenced.add(name);
  for (const name of [...referenced].sort()) {
    if (!alive.has(name)) out.push({ name, vtep: '', state: 'gone', goneSince: s.goneSince.get(name) ?? null, self: name === s.me });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
};

const networkStatuses = (s: Snapshot): NetworkStatus[] =>
  s.networks
    .map(({ net, endpoints }) => {
      const count = new Map<string, number>();
      for (const n of Object.values(net.aliases)) count.set(n, 0);
      for (const ep of endpoints) count.set(ep.node, (count.get(ep.node) ?? 0) + 1);
      return {
        key: net.id,
        names: net.name ? [net.name] : [],
        vni: net.vni,
        subnets: [...net.ipv4, ...net.ipv6].map((x) => x.pool),
        layout: networkLayout(net),
        mtu: net.mtu,
        internal: net.internal,
        ...(net.multicast ? { multicast: net.multicast } : {}),
        options: net.options,
        deleted: net.deleted,
        nodes: [...count].sort(([a], [b]) => a.localeCompare(b)).map(([node, endpoints]) => ({ node, endpoints })),
      };
    })
    .sort((a, b) => a.vni - b.vni);

const endpointStatuses = (s: Snapshot): EndpointStatus[] =>
  s.networks.flatMap(({ net, endpoints }) =>
    endpoints
      .filter((ep) => ep.node === s.me)
      .map((ep) => ({
        network: net.name ?? net.id,
        id: ep.id,
        ...(ep.ipv4 ? { ipv4: ep.ipv4 } : {}),
        ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}),
        mac: ep.mac,
        device: networkLayout(net) === 'bridge' ? ep.hostIf : ep.containerIf,
        joined: ep.sandboxKey !== undefined,
      })),
  );

/** A device action as a difference; undefined for the forwarding and resolver actions (reported apart). */
const deviceDifference = (s: Snapshot, a: Action): DeviceDifference | undefined => {
  switch (a.kind) {
    case 'ensureNetwork':
      return { network: networkName(s, a.spec.vxlan), device: a.spec.vxlan, problem: a.reason };
    case 'ensureEndpoint':
      return { device: a.spec.layout === 'bridge' ? a.spec.hostIf : a.spec.containerIf, problem: a.reason };
    case 'deleteLink':
      return { device: a.name, problem: `to be deleted: ${a.reason}` };
    case 'addBridgeAddress':
      return { device: a.bridge, problem: `${a.reason} (${a.address})` };
    case 'addTableRoute':
    case 'deleteTableRoute':
      return { device: a.route.dev, problem: `${a.reason}: ${a.route.dst}` };
    default:
      return undefined;
  }
};

/**
 * planForwarding's actions for one device, as differences: a unicast MAC
 * both added (store's VTEP) and deleted (kernel's) is one entry toward the
 * wrong VTEP; a neighbour added because its MAC changed is a wrong MAC.
 */
export const entryDifferences = (network: string, vxlan: string, actions: readonly Action[]): EntryDifference[] => {
  const adds: FdbEntry[] = [];
  const dels: FdbEntry[] = [];
  const out: EntryDifference[] = [];
  const base = { network, vxlan };
  for (const a of actions) {
    if (a.kind === 'addFdb') adds.push(a.entry);
    else if (a.kind === 'deleteFdb') dels.push(a.entry);
    else if (a.kind === 'addNeigh' || a.kind === 'deleteNeigh') out.push(neighDifference(network, vxlan, a));
  }
  for (const add of adds) {
    const i = add.mac === FLOOD_MAC ? -1 : dels.findIndex((d) => d.mac === add.mac);
    if (i < 0) {
      out.push({ ...base, table: 'fdb', problem: 'missing', key: add.mac, want: add.dst });
      continue;
    }
    const [have] = dels.splice(i, 1);
    out.push({ ...base, table: 'fdb', problem: 'wrong-vtep', key: add.mac, want: add.dst, ...(have ? { have: have.dst } : {}) });
  }
  for (const d of dels) out.push({ ...base, table: 'fdb', problem: 'extra', key: d.mac, have: d.dst });
  return out;
};

const neighDifference = (network: string, vxlan: string, a: Action & { entry: NeighEntry }): EntryDifference => {
  const base = { network, vxlan, table: 'neigh' as const, key: a.entry.ip };
  if (a.kind === 'deleteNeigh') return { ...base, problem: 'extra', have: a.entry.mac };
  return a.reason === 'MAC changed' ? { ...base, problem: 'wrong-mac', want: a.entry.mac } : { ...base, problem: 'missing', want: a.entry.mac };
};

/** The kernel's neighbour MAC for a wrong-mac entry (planForwarding words only the wanted one). */
const withKernelMacs = (s: Snapshot, diffs: EntryDifference[]): EntryDifference[] =>
  diffs.map((d) => {
    if (d.problem !== 'wrong-mac') return d;
    const have = s.forwarding.get(d.vxlan)?.neigh.find((n) => n.ip === d.key)?.mac;
    return have ? { ...d, have } : d;
  });

export const desiredOf = (s: Snapshot): Desired =>
  computeDesired({
    networks: s.networks,
    tombstones: s.tombstones,
    claimedVnis: s.claimedVnis,
    nodes: s.nodes.map((n) => n.rec),
    me: s.me,
    underlay: s.underlay,
    vxlanPort: s.vxlanPort,
    ...(s.dnsAddress ? { dnsAddress: s.dnsAddress } : {}),
  });

export const statusReport = (s: Snapshot): StatusReport => {
  const desired = desiredOf(s);
  const actions = plan(desired, s.links);
  const resolverActions = desired.resolver ? planResolver(desired.resolver, s.links, s.resolverRoutes) : [];
  const devices = [...actions, ...resolverActions].flatMap((a) => deviceDifference(s, a) ?? []);
  const present = new Set(s.links.map((l) => l.name));
  const forwarding: EntryDifference[] = [];
  for (const [vxlan, want] of desired.forwarding) {
    // a missing device is a device difference already; its entries would all be missing with it
    if (!present.has(vxlan)) continue;
    forwarding.push(...entryDifferences(networkName(s, vxlan), vxlan, planForwarding(vxlan, want, s.forwarding.get(vxlan))));
  }
  return {
    node: s.me,
    vtep: s.underlay.address,
    at: new Date(s.at).toISOString(),
    nodes: nodeStatuses(s),
    networks: networkStatuses(s),
    endpoints: endpointStatuses(s),
    devices,
    forwarding: withKernelMacs(s, forwarding),
    kept: keptLinks(desired, s.links, actions),
    badRecords: s.badRecords,
    converged: devices.length === 0 && forwarding.length === 0,
  };
};

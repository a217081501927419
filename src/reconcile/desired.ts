/**
 * What this node's kernel should hold, computed from store records. Pure.
 *
 * Per network that has an alias on this node (its engine has the network):
 * - its devices (record-devices.ts: the VXLAN device and, per layout, the
 *   host macvlan on it or the bridge it is a port of);
 * - a device per local endpoint (a macvlan, checked only while it is in
 *   this namespace; or a veth pair);
 * - if this node takes part in the network (has an endpoint of its own in
 *   it, src/cluster/local-endpoints.ts), for every endpoint on another *live*
 *   node: a static FDB entry (MAC → that node's VTEP) and a permanent
 *   neighbour entry (IP → MAC) on the VXLAN device, so ARP/ND is answered
 *   locally and nothing is learned by flooding; and one all-zero-MAC FDB
 *   entry per other live node with endpoints in the network (head-end
 *   replication of broadcast/multicast), unless the network sends BUM
 *   traffic to a multicast group. Without a local endpoint, no remote
 *   entries: they would serve no container here. The reconciler reads a
 *   network's endpoints only where it takes part.
 * Entries toward a node whose membership is gone are simply not desired, so
 * the next pass removes them (node loss; the reconciler keeps a lost node in
 * `nodes` for a grace period first, src/cluster/peer-grace.ts). Records that
 * share an IP or MAC are programmed once, the newest (duplicates.ts).
 *
 * And host-wide: the VXLAN port's member list (every live node's VTEP of the
 * underlay's family, this node's own always among them), so that the port
 * takes packets from members only. It is computed only from a successful
 * read of membership; a pass whose read fails changes nothing, so the list
 * last written stays.
 */
import {
  type EndpointDevices,
  type FdbEntry,
  FLOOD_MAC,
  type Forwarding,
  type NeighEntry,
  type NetworkDevices,
  type TableRoute,
  type Underlay,
} from '../dataplane/dataplane.js';
import { hostDevice } from '../dataplane/layout.js';
import { endpointDevices, networkDevices } from '../dataplane/record-devices.js';
import type { EndpointRecord, NetworkRecord, NodeRecord } from '../model.js';
import { type DuplicateConflict, resolveDuplicates } from './duplicates.js';

/** Policy routing table and rule priority of the resolver's replies. */
export const RESOLVER_TABLE = 5353;
export const RESOLVER_RULE_PRIORITY = 5353;

/**
 * The node resolver's kernel side: its address on every bridge (the host
 * answers ARP for it there) and, in a table only packets from it use, a route
 * to each network's subnet through that network's bridge.
 */
export interface ResolverRouting {
  address: string;
  bridges: string[];
  routes: TableRoute[];
}

export interface VxlanMembers {
  port: number;
  /** Sorted, unique, bare addresses of the underlay's family. */
  members: string[];
}

export interface Desired {
  networks: NetworkDevices[];
  /** Endpoints owned by this node. */
  endpoints: EndpointDevices[];
  /** Remote entries per VXLAN device name. */
  forwarding: Map<string, Forwarding>;
  resolver?: ResolverRouting;
  /** The VXLAN port and the VTEP addresses it takes packets from (never empty: this node's own is one). */
  vxlanMembers?: VxlanMembers;
  /**
   * VNIs whose devices may be deleted here: networks removed through Docker
   * (a tombstone, or a record marked deleted that this node's engine no
   * longer has), and in use by no live network. A device of any other VNI
   * that the store does not ask for is kept: absence is not deletion.
   * Absent = nothing may be deleted.
   */
  removable?: ReadonlySet<number>;
  /** Endpoint records left out because a newer one holds the same IP or MAC. */
  conflicts?: DuplicateConflict[];
}

const bareIp = (cidr: string): string => cidr.split('/')[0] ?? cidr;

export const remoteForwarding = (
  net: NetworkRecord,
  endpoints: readonly EndpointRecord[],
  nodes: ReadonlyMap<string, NodeRecord>,
  me: string,
): Forwarding => {
  const fdb: FdbEntry[] = [];
  const neigh: NeighEntry[] = [];
  const peers = new Set<string>();
  for (const ep of endpoints) {
    if (ep.node === me) continue;
    const peer = nodes.get(ep.node);
    if (!peer) continue;
    fdb.push({ mac: ep.mac, dst: peer.address });
    if (ep.ipv4) neigh.push({ ip: bareIp(ep.ipv4), mac: ep.mac });
    if (ep.ipv6) neigh.push({ ip: bareIp(ep.ipv6), mac: ep.mac });
    peers.add(peer.address);
  }
  if (!net.multicast) for (const dst of [...peers].sort()) fdb.push({ mac: FLOOD_MAC, dst });
  return { fdb, neigh };
};

export interface DesiredInput {
  networks: ReadonlyArray<{
    net: NetworkRecord;
    endpoints: readonly EndpointRecord[];
    /**
     * Whether this node takes part in the network (src/cluster/local-endpoints.ts,
     * which follows this node's own Docker calls); absent: whether `endpoints`
     * holds one of this node's (tsoverlay status, which reads every list).
     */
    takesPart?: boolean;
    /** Creation stamps of the endpoint records by id (missing: 0), for the duplicate rule. */
    created?: ReadonlyMap<string, number>;
  }>;
  /** Networks removed through Docker (the store's tombstones). */
  tombstones?: ReadonlyArray<{ vni: number }>;
  /**
   * VNIs claimed by a network now (/vnis), whether or not its record could be
   * read: a tombstone of an earlier network never removes a VNI in use again.
   */
  claimedVnis?: ReadonlySet<number>;
  nodes: readonly NodeRecord[];
  me: string;
  underlay: Underlay;
  vxlanPort: number;
  dnsAddress?: string;
}

/** One network's share of the desired state (undefined: this node does not have the network). */
export interface NetworkPart {
  devices: NetworkDevices;
  /** Its endpoints owned by this node. */
  endpoints: EndpointDevices[];
  /** Its remote entries, on `devices.vxlan`. */
  forwarding: Forwarding;
  /** The resolver's bridge and reply routes for it, if the resolver runs. */
  resolverRoutes?: TableRoute[];
  conflicts: DuplicateConflict[];
}

export interface PartContext {
  nodes: ReadonlyMap<string, NodeRecord>;
  me: string;
  underlay: Underlay;
  vxlanPort: number;
  dnsAddress?: string;
}

/**
 * What one network asks of this node's kernel, from its record and endpoints
 * alone: a pass scoped to some networks (partial.ts) computes just theirs,
 * a whole pass every network's (computeDesired).
 */
export const networkPart = (
  { net, endpoints, created, takesPart }: DesiredInput['networks'][number],
  ctx: PartContext,
): NetworkPart | undefined => {
  if (!Object.values(net.aliases).includes(ctx.me)) return undefined;
  const devices = networkDevices(net, ctx.underlay, ctx.vxlanPort);
  const dns = ctx.dnsAddress;
  let resolverRoutes: TableRoute[] | undefined;
  if (dns) {
    const host = hostDevice(devices);
    const family = dns.includes(':') ? 6 : 4;
    resolverRoutes = (family === 4 ? net.ipv4 : net.ipv6).map((s) => ({ dst: s.pool, dev: host, src: dns }));
  }
  const mine = endpoints.filter((ep) => ep.node === ctx.me).map((ep) => endpointDevices(ep, net));
  // Its own record missing or unreadable does not stop a node that takes part: its containers keep their peers.
  if (!(takesPart ?? mine.length > 0)) return { devices, endpoints: [], forwarding: { fdb: [], neigh: [] }, ...(resolverRoutes ? { resolverRoutes } : {}), conflicts: [] };
  const chosen = resolveDuplicates(net.id, endpoints, (ep) => created?.get(ep.id) ?? 0);
  return {
    devices,
    endpoints: mine,
    forwarding: remoteForwarding(net, chosen.programmed, ctx.nodes, ctx.me),
    ...(resolverRoutes ? { resolverRoutes } : {}),
    conflicts: chosen.conflicts,
  };
};

export const computeDesired = (input: DesiredInput): Desired => {
  const ctx: PartContext = {
    nodes: new Map(input.nodes.map((n) => [n.node, n])),
    me: input.me,
    underlay: input.underlay,
    vxlanPort: input.vxlanPort,
    ...(input.dnsAddress ? { dnsAddress: input.dnsAddress } : {}),
  };
  const out: Desired = { networks: [], endpoints: [], forwarding: new Map() };
  const dns = input.dnsAddress;
  const resolver: ResolverRouting | undefined = dns ? { address: dns, bridges: [], routes: [] } : undefined;
  const conflicts: DuplicateConflict[] = [];
  for (const network of input.networks) {
    const part = networkPart(network, ctx);
    if (!part) continue;
    out.networks.push(part.devices);
    if (resolver) {
      resolver.bridges.push(hostDevice(part.devices));
      resolver.routes.push(...(part.resolverRoutes ?? []));
    }
    out.endpoints.push(...part.endpoints);
    conflicts.push(...part.conflicts);
    out.forwarding.set(part.devices.vxlan, part.forwarding);
  }
  if (resolver) out.resolver = resolver;
  out.vxlanMembers = vxlanMembers(input.nodes, input.underlay, input.vxlanPort);
  if (conflicts.length > 0) out.conflicts = conflicts;
  out.removable = removableVnis(input);
  return out;
};

/** The live nodes' VTEPs of the underlay's family, and this node's own. */
export const vxlanMembers = (nodes: readonly NodeRecord[], underlay: Underlay, port: number): VxlanMembers => {
  const v6 = (a: string): boolean => a.includes(':');
  const same = nodes.map((n) => n.address).filter((a) => v6(a) === (underlay.family === 6));
  return { port, members: [...new Set([underlay.address, ...same])].sort() };
};

/**
 * The rule of Desired.removable: an explicit deletion (a record marked
 * deleted that this node's engine no longer has, or a tombstone of a VNI no
 * network claims now), and no live network on the VNI.
 */
export const removableVnis = (input: DesiredInput): Set<number> => {
  const live = new Set<number>();
  const removed = new Set<number>();
  for (const { net } of input.networks) {
    if (net.deleted && !Object.values(net.aliases).includes(input.me)) removed.add(net.vni);
    else live.add(net.vni);
  }
  for (const t of input.tombstones ?? []) if (!input.claimedVnis?.has(t.vni)) removed.add(t.vni);
  for (const vni of live) removed.delete(vni);
  return removed;
};

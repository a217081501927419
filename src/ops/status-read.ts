/**
 * What `tsoverlay status` looks at, read once: the store's records (every
 * network with its endpoints, live nodes, when gone nodes left, tombstones,
 * VNI claims) and this
 * node's kernel (our links, their forwarding entries, the resolver's table).
 * Reads only: nothing here writes to the store or the kernel.
 */
import type { Dataplane, Forwarding, ObservedLink, TableRoute, Underlay } from '../dataplane/dataplane.js';
import type { EndpointRecord, NetworkRecord, NodeRecord } from '../model.js';
import { RESOLVER_TABLE } from '../reconcile/desired.js';
import type { ClusterState } from '../store/cluster-state.js';
import type { KvStore } from '../store/kv-store.js';
import { nodePath } from '../store/paths.js';

/** A live node's record and, where the store keeps it, when its session created it. */
export interface LiveNode {
  rec: NodeRecord;
  /** When the node's ephemeral record was created (its store session's membership), ms since the epoch. */
  sessionSinceMs?: number;
}

export interface Snapshot {
  /** This node's name (`--node-name`, else its advertise address), as the plugin computes it. */
  me: string;
  underlay: Underlay;
  vxlanPort: number;
  dnsAddress?: string;
  networks: Array<{ net: NetworkRecord; endpoints: EndpointRecord[] }>;
  nodes: LiveNode[];
  tombstones: Array<{ vni: number }>;
  claimedVnis: Set<number>;
  /** Our links in the kernel. */
  links: ObservedLink[];
  /** Forwarding entries per VXLAN device name (devices present in the kernel only). */
  forwarding: Map<string, Forwarding>;
  /** Routes of the resolver's policy table (empty when no resolver is configured). */
  resolverRoutes: TableRoute[];
  /** When nodes without membership were first seen gone (/gone records that decode), by node. */
  goneSince: Map<string, string>;
  /** Records the store holds that do not decode (skipped, as the plugin skips them). */
  badRecords: string[];
  /** When the snapshot was taken, ms since the epoch. */
  at: number;
}

export interface SnapshotSource {
  state: ClusterState;
  kv: KvStore;
  dataplane: Dataplane;
  underlay: Underlay;
  me: string;
  vxlanPort: number;
  dnsAddress?: string;
  now?: () => number;
}

const liveNodes = async (state: ClusterState, kv: KvStore): Promise<LiveNode[]> => {
  const records = await state.listNodes();
  return Promise.all(
    records.map(async (rec) => {
      const owner = await kv.getOwner(nodePath(rec.node)).catch(() => undefined);
      return owner?.createdMs !== undefined ? { rec, sessionSinceMs: owner.createdMs } : { rec };
    }),
  );
};

/** Kernel first, then the store (as a reconcile pass reads): a device made in between is never taken for an orphan. */
export const readSnapshot = async (src: SnapshotSource): Promise<Snapshot> => {
  const { state, kv, dataplane } = src;
  const links = await dataplane.listOwnedLinks();
  const byIndex = await dataplane.listAllForwarding();
  const forwarding = new Map<string, Forwarding>();
  for (const l of links) if (l.kind === 'vxlan') forwarding.set(l.name, byIndex.get(l.index) ?? { fdb: [], neigh: [] });
  const resolverRoutes = src.dnsAddress ? await dataplane.listTableRoutes(RESOLVER_TABLE) : [];
  const records = await state.listNetworks();
  const networks = await Promise.all(records.map(async (net) => ({ net, endpoints: await state.listEndpoints(net.id) })));
  const [nodes, tombstones, claimedVnis, gone] = await Promise.all([liveNodes(state, kv), state.listTombstones(), state.usedVnis(), state.nodes.listGone()]);
  return {
    me: src.me,
    underlay: src.underlay,
    vxlanPort: src.vxlanPort,
    ...(src.dnsAddress ? { dnsAddress: src.dnsAddress } : {}),
    networks,
    nodes,
    tombstones,
    claimedVnis,
    links,
    forwarding,
    resolverRoutes,
    goneSince: new Map(gone.map((g) => [g.node, g.since])),
    badRecords: state.badRecords().map((b) => b.path),
    at: (src.now ?? Date.now)(),
  };
};

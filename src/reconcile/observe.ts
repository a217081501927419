/**
 * The first steps of a reconcile pass: observe what is and what should be,
 * and plan the device actions between them.
 *
 * - A full pass reads our links from the kernel first, then the store, and
 *   plans from the two (plan). Observed first, desired second: a device
 *   created by a Docker call between the two reads is then already in the
 *   desired state, never mistaken for an orphan.
 * - A delta pass reads only the store and plans from what the last good
 *   pass made true (planDelta).
 * - If a read fails, nothing is planned: the kernel keeps what it has and
 *   traffic keeps flowing.
 */
import type { ObservedLink, Underlay } from '../dataplane/dataplane.js';
import { errorText } from '../errors.js';
import type { NetworkRecord, NodeRecord } from '../model.js';
import type { Participation } from '../cluster/local-endpoints.js';
import type { ClusterState } from '../store/cluster-state.js';
import { type Desired, computeDesired } from './desired.js';
import type { PassIo } from './pass-state.js';
import { type Action, plan, planDelta } from './plan.js';

/** Which peers to program: the live ones, and lost ones still within their grace (cluster/peer-grace.ts). */
export interface PeerSet {
  members(live: readonly NodeRecord[]): NodeRecord[];
  /** When the set changes by itself next (a grace ends); undefined: not by itself. */
  nextChangeInMs(): number | undefined;
}

/** Where the desired state comes from: the store, as this node sees it. */
export interface DesiredSource {
  state: ClusterState;
  underlay: Underlay;
  node: string;
  /** The networks this node takes part in: only theirs are endpoints read. */
  local: Participation;
  vxlanPort: number;
  /** The node resolver's address, if it runs. */
  dnsAddress?: string;
  /**
   * Told which networks a read looked at (cluster replication follows them
   * with store watches); `scope`: the read covered only these network keys.
   */
  onNetworksRead?: (networks: readonly NetworkRecord[], scope?: ReadonlySet<string>) => void;
  /** Without it, only live nodes are programmed. */
  peers?: PeerSet;
}

/** Whether a pass reads this network's endpoints: its engine has it, and this node takes part in it. */
export const readsEndpoints = (src: Pick<DesiredSource, 'node' | 'local'>, net: NetworkRecord): boolean =>
  Object.values(net.aliases).includes(src.node) && src.local.takesPart(net.id);

/** The kernel's desired state from the store: every network, endpoints of those this node takes part in, live nodes. */
export const readDesired = async (src: DesiredSource): Promise<Desired> => {
  const { state, underlay, vxlanPort, node, dnsAddress } = src;
  const records = await state.listNetworks();
  // all networks' reads at once: the store pipelines them
  const networks = await Promise.all(
    records.map(async (net) =>
      readsEndpoints(src, net) ? { net, takesPart: true, ...(await state.listEndpointsStamped(net.id)) } : { net, takesPart: false, endpoints: [] },
    ),
  );
  src.onNetworksRead?.(records);
  const [live, tombstones, claimedVnis] = await Promise.all([state.listNodes(), state.listTombstones(), state.usedVnis()]);
  const nodes = src.peers ? src.peers.members(live) : live;
  return computeDesired({ networks, tombstones, claimedVnis, nodes, me: node, underlay, vxlanPort, ...(dnsAddress ? { dnsAddress } : {}) });
};

export interface Observation {
  desired: Desired;
  /** Our links, read in a full pass only. */
  observed: ObservedLink[] | undefined;
  /** Device actions (networks, endpoints, orphans); forwarding is planned per device later. */
  actions: Action[];
  /** A pass scoped to some networks (partial.ts): their VXLAN devices, the only ones it looks at. */
  scope?: ReadonlySet<string>;
}

/** Device actions: against the kernel as read, or else against the last applied state. */
export const planDevices = (desired: Desired, basis: { observed: readonly ObservedLink[] } | { previous: Desired }): Action[] =>
  'observed' in basis ? plan(desired, basis.observed) : planDelta(basis.previous, desired);

/** Read (kernel in a full pass, then store) and plan; undefined, logged, if a read failed. */
export const observe = async (
  io: PassIo,
  src: DesiredSource,
  pass: { full: boolean; previous: Desired | undefined; lap(name: string): void },
): Promise<Observation | undefined> => {
  try {
    if (pass.full || !pass.previous) {
      const observed = await io.dataplane.listOwnedLinks();
      pass.lap('kernel');
      const desired = await readDesired(src);
      return { desired, observed, actions: planDevices(desired, { observed }) };
    }
    const desired = await readDesired(src);
    return { desired, observed: undefined, actions: planDevices(desired, { previous: pass.previous }) };
  } catch (e) {
    io.log.warn({ err: e, error: errorText(e) }, 'reconcile could not read desired or observed state; kernel left as is');
    return undefined;
  }
};

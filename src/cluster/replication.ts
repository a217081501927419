/**
 * Cross-node replication, in one place: what this node watches in the store,
 * and how a change there (made by any node) reaches this node's engine,
 * driver and kernel. docs/architecture.md walks the two flows end to end.
 *
 * What is watched (`watchedPaths`), re-decided after every store read of the
 * reconciler (`networksRead`; a pass scoped to some networks updates only
 * theirs): the node list (membership: a node gone means its entries go), the
 * network list and every network record (created, named, removed, aliases),
 * and, for the networks this node takes part in (has an endpoint in:
 * local-endpoints.ts), their endpoints (forwarding entries) and published
 * names (the resolver). A network this node's engine merely has costs one
 * watch, on its record: endpoint events there never reach this node.
 *
 * How a change travels (`changed`, also called by this node's driver after
 * each Docker call and by main.ts when the store session comes back). Each
 * change carries what it concerns (store-change.ts): the networks of the
 * watched path that fired, or the whole cluster.
 *   1. Every follower is marked dirty with that scope: the reconciler
 *      (kernel: devices and forwarding entries, src/reconcile/reconciler.ts;
 *      a scoped change gets a pass over those networks only) and the name
 *      index (src/dns/name-index.ts; those networks' names only), each
 *      converging to the store on its own.
 *   2. Only if a network record changed (or the whole cluster): the
 *      Replicator (src/cluster/replicator.ts) is marked dirty: a network this
 *      engine lacks is created through the engine, which then calls this
 *      node's plugin socket (src/server → src/driver), which joins the
 *      cluster network and makes its devices; a network removed elsewhere is
 *      removed from this engine the same way. Endpoints and names never
 *      change what it does.
 * Marking only asks each loop for a pass soon; the loops never wait on each
 * other, so their order here does not matter.
 */
import type { DockerEngine } from '../engine/engine.js';
import type { Log } from '../log.js';
import type { NetworkRecord } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';
import { dnsNamesDir, endpointsDir, networkPath } from '../store/paths.js';
import type { Participation } from './local-endpoints.js';
import { Replicator } from './replicator.js';
import { type StoreChange, WHOLE_CLUSTER, touchesRecords } from './store-change.js';
import { WatchSet } from './watch-set.js';

/** The store paths whose changes matter to `node`, given every network record and the networks it takes part in. */
export const watchedPaths = (networks: ReadonlyArray<Pick<NetworkRecord, 'id' | 'aliases'>>, node: string, local: Participation): string[] => {
  const paths = ['/nodes', '/networks'];
  for (const net of networks) {
    paths.push(networkPath(net.id));
    // Endpoints and names matter only for networks this node takes part in (has an endpoint in).
    if (Object.values(net.aliases).includes(node) && local.takesPart(net.id)) paths.push(endpointsDir(net.id), dnsNamesDir(net.id));
  }
  return paths;
};

export interface ReplicationDeps {
  state: ClusterState;
  node: string;
  /** The networks this node takes part in: only their endpoints and names are watched. */
  local: Participation;
  /** This node's engine; without one (a single node) networks are not replicated through it. */
  engine?: DockerEngine;
  intervalMs: number;
  log: Log;
  /**
   * Asked before every pass: false while the cluster store is refused
   * (cluster/identity.ts), and the pass then changes nothing.
   */
  mayChange?: () => Promise<boolean>;
}

export class Replication {
  /** The engine side: networks made or removed elsewhere, made or removed here. */
  readonly replicator: Replicator | undefined;
  private readonly watches: WatchSet;
  private readonly followers: Array<(change: StoreChange) => void> = [];
  /** The network records the last reads saw (a scoped read updates only its networks). */
  private readonly known = new Map<string, Pick<NetworkRecord, 'id' | 'aliases'>>();

  constructor(private readonly deps: ReplicationDeps) {
    const { state, engine, node, intervalMs, log, mayChange } = deps;
    this.watches = new WatchSet(state, (change) => this.changed(change));
    this.replicator = engine && new Replicator({ state, engine, node, intervalMs, log, ...(mayChange ? { mayChange } : {}) });
  }

  /** A loop of this node that converges to the store: asked for a pass on every change, told its scope. */
  follow(markDirty: (change: StoreChange) => void): void {
    this.followers.push(markDirty);
  }

  /**
   * The store changed, here or on another node: every loop of this node
   * looks again at what the change concerns; the replicator only if a
   * network record may have changed.
   */
  changed(change: StoreChange = WHOLE_CLUSTER): void {
    for (const markDirty of this.followers) markDirty(change);
    if (touchesRecords(change)) this.replicator?.markDirty();
  }

  /**
   * The reconciler read these networks: watch exactly what they make
   * relevant here. `scope`: the read covered only these network keys (a
   * key of the scope missing from `networks` is gone); without it, every
   * network.
   */
  networksRead(networks: ReadonlyArray<Pick<NetworkRecord, 'id' | 'aliases'>>, scope?: ReadonlySet<string>): void {
    if (scope) for (const key of scope) this.known.delete(key);
    else this.known.clear();
    for (const net of networks) this.known.set(net.id, net);
    this.watches.sync(watchedPaths([...this.known.values()], this.deps.node, this.deps.local));
  }

  /** Start the engine side (after the first reconcile). */
  start(): void {
    this.replicator?.start();
  }

  /** Stop watching and replicating; what is in the kernel stays. */
  async stop(): Promise<void> {
    this.watches.close();
    await this.replicator?.stop();
  }
}

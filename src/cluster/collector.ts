/**
 * Garbage collection of what Docker calls never removed (docs/cluster-state.md,
 * "Collection"). Absence is not deletion: records go only on lasting,
 * explicit evidence, decided by collect-plan.ts.
 * - Own orphans: this node's endpoint records that its engine, answering,
 *   has not known for `orphanGraceMs` (two checks). An engine that does not
 *   answer proves nothing. Looked for only in the networks this node takes
 *   part in (local-endpoints.ts): its own records can be elsewhere only if
 *   something other than this run of its plugin wrote them (an earlier run:
 *   the start scan then makes the node take part), and reading every
 *   network's endpoints per pass is the cost per cluster size that lazy
 *   following removed. A collected orphan is forgotten there too.
 * - Gone nodes: records of a node whose membership (/nodes/<node>) has been
 *   gone for `collectAfterMs`, collected by the one live node holding the
 *   collector lock, in commits that fail if the node came back.
 * Nothing is collected while the store is refused (cluster/identity.ts), and
 * never this node's records as a gone node's.
 * The lock holder also keeps /gone/<node>, when each gone node was first
 * seen gone (`tsoverlay status` shows it): written once, removed when the
 * node is live or nothing names it any more. It does not time collection:
 * a holder that takes over times each node from its own first observation,
 * since a record can outlive what made it true (a store restored from a
 * backup holds records of nodes that were live until the data loss).
 */
import type { Log } from '../log.js';
import { errorText } from '../errors.js';
import type { DockerEngine } from '../engine/engine.js';
import type { EndpointRecord, NetworkRecord, PoolRecord } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';
import type { LocalEndpoints } from './local-endpoints.js';
import type { HeldAddress } from '../store/state/collection.js';
import { SerialLoop } from '../util/serial-loop.js';
import { goneNodes, orphanEndpoints } from './collect-plan.js';

export interface CollectorDeps {
  state: ClusterState;
  /** The networks this node takes part in: the only ones its own orphans are looked for in; told of each one collected. */
  local: Pick<LocalEndpoints, 'takesPart' | 'remove'>;
  /** This node's engine; without one, own orphans are not looked for. */
  engine?: Pick<DockerEngine, 'inspectNetwork'>;
  node: string;
  collectAfterMs: number;
  orphanGraceMs: number;
  intervalMs: number;
  log: Log;
  /** Asked before every pass and every collection: false while the store is refused. */
  mayChange: () => Promise<boolean>;
  now?: () => number;
}

export interface CollectResult {
  /** Gone nodes collected in this pass. */
  nodes: string[];
  /** Endpoint records removed (own orphans and gone nodes'). */
  endpoints: number;
  /** Address claims released. */
  addresses: number;
  failed: boolean;
}

const bare = (cidr: string | undefined): string | undefined => cidr?.split('/')[0];
const ipsOf = (ep: EndpointRecord): string[] => [bare(ep.ipv4), bare(ep.ipv6)].filter((ip): ip is string => ip !== undefined);
const poolIdsOf = (n: NetworkRecord): string[] => [...n.ipv4, ...n.ipv6].map((s) => s.poolId);

export class Collector {
  private goneSince = new Map<string, number>();
  /** /gone records that could not be written or removed, said once until it works again. */
  private goneWriteFailed = false;
  private orphanSince = new Map<string, number>();
  /** Gone nodes collected once: collected again only if they still hold something collectable. */
  private readonly done = new Set<string>();
  /** Last aliases / last users kept, each said once. */
  private readonly keptSaid = new Set<string>();
  private readonly loop: SerialLoop<CollectResult>;

  constructor(private readonly deps: CollectorDeps) {
    this.loop = new SerialLoop(() => this.pass(), { intervalMs: deps.intervalMs, failed: (r) => r.failed });
  }

  start(): void {
    void this.loop.start().catch(() => undefined);
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** One pass now (tests, and the first one at start). */
  runOnce(): Promise<CollectResult> {
    return this.loop.runOnce();
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private async pass(): Promise<CollectResult> {
    const r: CollectResult = { nodes: [], endpoints: 0, addresses: 0, failed: false };
    if (!(await this.deps.mayChange())) {
      // Evidence seen through a refused store counts for nothing.
      this.goneSince.clear();
      this.orphanSince.clear();
      return r;
    }
    try {
      await this.ownOrphans(r);
      await this.gone(r);
    } catch (e) {
      this.deps.log.warn({ err: errorText(e) }, 'collection pass failed; nothing more removed until the next one');
      r.failed = true;
    }
    return r;
  }

  /** This node's endpoint records its engine no longer has. */
  private async ownOrphans(r: CollectResult): Promise<void> {
    const { state, engine, node, log } = this.deps;
    if (!engine) return;
    const seen: Array<{ id: string; checked: boolean; known: boolean }> = [];
    const byId = new Map<string, { ep: EndpointRecord; net: NetworkRecord; all: EndpointRecord[] }>();
    for (const net of await state.listNetworks()) {
      const mine = Object.keys(net.aliases).filter((id) => net.aliases[id] === node);
      if (mine.length === 0 || !this.deps.local.takesPart(net.id)) continue;
      const all = await state.listEndpoints(net.id);
      const own = all.filter((ep) => ep.node === node);
      if (own.length === 0) continue;
      let checked = true;
      const known = new Set<string>();
      for (const id of mine) {
        const answer = await engine.inspectNetwork(id).catch((e: unknown) => {
          log.debug({ network: net.id, err: errorText(e) }, 'engine did not answer: endpoints kept');
          return undefined;
        });
        if (!answer?.endpoints) checked = false;
        for (const ep of answer?.endpoints ?? []) known.add(ep.endpointId);
      }
      for (const ep of own) {
        seen.push({ id: ep.id, checked, known: known.has(ep.id) });
        byId.set(ep.id, { ep, net, all });
      }
    }
    const d = orphanEndpoints({ endpoints: seen, since: this.orphanSince, now: this.now(), graceMs: this.deps.orphanGraceMs });
    this.orphanSince = d.missing;
    for (const id of d.collect) {
      const hit = byId.get(id);
      if (!hit || !(await this.deps.mayChange())) continue;
      const { ep, net, all } = hit;
      // An address another record holds (a duplicate) stays claimed.
      const others = new Set(all.filter((o) => o.id !== ep.id).flatMap(ipsOf));
      const claims: HeldAddress[] = ipsOf(ep)
        .filter((ip) => !others.has(ip))
        .flatMap((ip) => poolIdsOf(net).map((poolId) => ({ poolId, ip })));
      await state.collection.removeEndpoints([ep], claims, node);
      this.deps.local.remove(net.id, ep.id);
      r.endpoints++;
      r.addresses += ipsOf(ep).length;
      log.info(
        { network: net.id, endpoint: ep.id, ip: ipsOf(ep).join(','), reason: `unknown to this node's engine for ${Math.round(this.deps.orphanGraceMs / 1000)} s or more` },
        'collected: endpoint record without a Docker endpoint',
      );
    }
  }

  /** Records of nodes gone for `collectAfterMs`, if this node holds the collector lock. */
  private async gone(r: CollectResult): Promise<void> {
    const { state, node } = this.deps;
    if (!(await state.collection.holdLock(node))) {
      this.goneSince.clear(); // another node collects; timers start over if this one takes over
      this.done.clear();
      return;
    }
    const live = new Set(await state.collection.liveNodes());
    const networks = await state.listNetworks();
    const pools = await state.collection.readablePools();
    const endpoints = new Map<string, EndpointRecord[]>();
    const referenced: string[] = [];
    /** Nodes holding something a collection would remove (not just a kept last alias or last pool use). */
    const collectable = new Set<string>();
    for (const net of networks) {
      const eps = await state.listEndpoints(net.id);
      endpoints.set(net.id, eps);
      const names = (await state.listDnsNames(net.id)).map((n) => n.node);
      const aliasNodes = new Set(Object.values(net.aliases));
      referenced.push(...aliasNodes, ...eps.map((e) => e.node), ...names);
      for (const n of [...eps.map((e) => e.node), ...names, ...(aliasNodes.size > 1 ? aliasNodes : [])]) collectable.add(n);
    }
    for (const p of pools) {
      referenced.push(...p.users);
      if (p.users.length > 1) for (const u of p.users) collectable.add(u);
    }
    for (const n of live) this.done.delete(n);
    await this.recordGone(new Set(referenced), live);
    const d = goneNodes({ referenced, live, self: node, since: this.goneSince, now: this.now(), afterMs: this.deps.collectAfterMs });
    this.goneSince = d.missing;
    for (const gone of d.collect) {
      if (this.done.has(gone) && !collectable.has(gone)) continue; // what is left of it is kept
      if (!(await this.deps.mayChange())) return;
      if (await this.collectNode(gone, networks, pools, endpoints, r)) {
        r.nodes.push(gone);
        this.done.add(gone);
      }
    }
  }

  /**
   * Keep /gone/<node> true: a record for each referenced node without
   * membership (written once, with the time this holder first saw it gone),
   * none for live or no longer named nodes. A record that cannot be read or
   * written changes nothing else: collection goes on.
   */
  private async recordGone(referenced: ReadonlySet<string>, live: ReadonlySet<string>): Promise<void> {
    const { state, node, log } = this.deps;
    const goneNow = (n: string): boolean => n !== node && !live.has(n) && referenced.has(n);
    try {
      const names = new Set(await state.nodes.goneNames());
      for (const n of names) {
        if (!goneNow(n) && (await state.nodes.clearGone(n))) log.info({ gone: n, reason: live.has(n) ? 'registered again' : 'no record names it' }, 'gone-node record removed');
      }
      for (const n of referenced) {
        if (!goneNow(n) || names.has(n)) continue;
        const since = new Date(this.goneSince.get(n) ?? this.now()).toISOString();
        if (await state.nodes.markGone({ node: n, since, by: node })) log.info({ gone: n, since }, 'node gone: recorded since when');
      }
      this.goneWriteFailed = false;
    } catch (e) {
      if (!this.goneWriteFailed) log.warn({ err: errorText(e) }, 'gone-node records not kept this pass; collection goes on');
      this.goneWriteFailed = true;
    }
  }

  /** Remove a gone node's records. False if it came back meanwhile. */
  private async collectNode(
    gone: string,
    networks: NetworkRecord[],
    pools: PoolRecord[],
    endpoints: Map<string, EndpointRecord[]>,
    r: CollectResult,
  ): Promise<boolean> {
    const { state, log } = this.deps;
    const why = `node gone (no /nodes/${gone}) for ${Math.round(this.deps.collectAfterMs / 1000)} s or more`;
    const back = (): boolean => (log.info({ gone }, 'collection stopped: the node registered again'), false);
    const eps = [...endpoints.values()].flat().filter((ep) => ep.node === gone);
    const claims: Array<HeldAddress & { network?: string }> = [];
    for (const p of pools) {
      for (const a of await state.collection.addresses(p.id)) {
        if (a.node === gone && a.kind === 'endpoint') claims.push({ poolId: p.id, ip: a.ip });
      }
    }
    if (!(await state.collection.removeEndpoints(eps, claims, gone, gone))) return back();
    for (const ep of eps) {
      log.info({ gone, network: ep.networkId, endpoint: ep.id, ip: ipsOf(ep).join(','), reason: why }, 'collected: endpoint of a gone node');
    }
    const withEndpoint = new Set(eps.flatMap(ipsOf));
    for (const c of claims.filter((x) => !withEndpoint.has(x.ip))) {
      log.info({ gone, pool: c.poolId, ip: c.ip, reason: why }, 'collected: address claim of a gone node');
    }
    r.endpoints += eps.length;
    r.addresses += claims.length;
    for (const net of networks) {
      if (!Object.values(net.aliases).includes(gone)) continue;
      const out = await state.collection.dropAliases(net.id, gone);
      if (out === 'back') return back();
      if (out === 'kept-last') this.keptOnce(`alias ${gone} ${net.id}`, { gone, network: net.id }, 'not collected: the last alias of the network (only Docker removes a network)');
      else for (const alias of out) log.info({ gone, network: net.id, alias, reason: why }, 'collected: engine alias of a gone node');
    }
    for (const p of pools.filter((x) => x.users.includes(gone))) {
      const out = await state.collection.dropPoolUser(p, gone);
      if (out === 'back') return back();
      if (out === 'kept-last') this.keptOnce(`pool ${gone} ${p.id}`, { gone, pool: p.id }, 'not collected: the last user of the pool (only Docker releases it)');
      if (out === 'dropped') log.info({ gone, pool: p.id, reason: why }, 'collected: pool user of a gone node');
    }
    return true;
  }

  private keptOnce(key: string, fields: Record<string, string>, msg: string): void {
    if (this.keptSaid.has(key)) return;
    this.keptSaid.add(key);
    this.deps.log.info(fields, msg);
  }
}

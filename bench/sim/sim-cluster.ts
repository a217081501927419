/**
 * Simulated nodes (sim-node.ts) in one process, each on its own ZooKeeper
 * session, and the churn they make. The sims of a cluster may be spread
 * over several processes (sim-fleet.ts): this process has the sims of
 * global index `first` .. `first + nodes - 1` of `total`, so names and
 * addresses stay unique.
 *
 * Layout: the cluster's sims are split into `groups` (about `total /
 * groupSize`); sim i belongs to group i % groups. Each group has one
 * network of its own, `sog<g>` (`10.150+g/256.g%256.0/24`), created by its
 * first sim (sim g) and named the way a real node names the networks its
 * engine created, so the real nodes' replicators create it in their
 * engines as they do any named network (each real node then has an alias
 * in it, but no container). Every sim also joins the `shared` subnet (a
 * network the real nodes created), as an engine does when a network is
 * replicated to it.
 *
 * Setup comes in three steps, so that with several processes every group
 * network exists before any other sim joins it: register (start), create
 * the groups this process's sims found (createGroups), join the rest
 * (joinNetworks).
 *
 * Churn: `rate` container lifecycles per second, each on the next sim in
 * turn: attach (RequestAddress, CreateEndpoint, Join), keep it `holdMs`,
 * detach (Leave, DeleteEndpoint, ReleaseAddress) — two endpoint events — on
 * the sim's group network (`own`), the shared one (`shared`) or every
 * other one on each (`mixed`). A lifecycle due while its sim still has
 * `maxInFlight` running (default: twice what it would have with quick
 * calls, at least 4) is skipped and counted (the sims cannot keep up),
 * never queued.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isTsoverlayError } from '../../src/errors.js';
import type { KvStore } from '../../src/store/kv-store.js';
import { round } from '../stats.js';
import { SimNode, type SimNetwork } from './sim-node.js';

export interface SimClusterOptions {
  /** sims in this process */
  nodes: number;
  /** global index of this process's first sim (default 0) */
  first?: number;
  /** sims in the whole cluster, all processes (default `first + nodes`) */
  total?: number;
  /** opens one store session per sim */
  openStore: (name: string) => Promise<KvStore>;
  /** subnet of the network shared with the real nodes (joined by every sim); none if absent */
  shared?: string;
  /**
   * at most this many sims join the shared network (default all), spread
   * evenly over the indexes (joinsShared): with every sim on it, each event
   * there makes every sim re-read it, and at N = 300 the sims' own reads
   * saturated this 2-core machine (a 10 s churn at 20/s did not end in 130 s)
   */
  sharedLimit?: number;
  /** sims per group network (default 10: N = 300 makes 30 networks, each created by every real engine) */
  groupSize?: number;
  follow?: boolean;
  /** how many sims register at once */
  startConcurrency?: number;
  log?: Logger;
}

export type ChurnTarget = 'own' | 'shared' | 'mixed';

export interface ChurnResult {
  target: ChurnTarget;
  rate: number;
  seconds: number;
  /** endpoint events done: creates + deletes */
  events: number;
  lifecycles: number;
  skipped: number;
  errors: number;
  firstError?: string;
  /** attach (the three calls) and detach latency, ms */
  attachMs: { p50: number; p99: number };
  detachMs: { p50: number; p99: number };
  wallS: number;
  /** every attach and detach latency (ms, 0.1 ms), so several processes' percentiles can be merged exactly */
  samples?: { attach: number[]; detach: number[] };
}

/** The VXLAN address of sim i: 198.18.0.0/15 (benchmarking range, reachable nowhere in the lab). */
export const simAddress = (i: number): string => `198.18.${Math.floor(i / 250)}.${1 + (i % 250)}`;
export const simName = (i: number): string => `sim${String(i).padStart(3, '0')}`;
export const groupSubnet = (g: number): string => `10.${150 + Math.floor(g / 256)}.${g % 256}.0/24`;
export const groupName = (g: number): string => `sog${g}`;
export const DEFAULT_GROUP_SIZE = 10;
/** Whether sim i of `total` joins the shared network when at most `limit` do: every ceil(total / limit)-th one. */
export const joinsShared = (i: number, total: number, limit = total): boolean => i % Math.max(1, Math.ceil(total / Math.max(1, limit))) === 0;
/** How many group networks a cluster of `total` sims has. */
export const groupCount = (total: number, groupSize = DEFAULT_GROUP_SIZE): number => Math.max(1, Math.ceil(total / groupSize));

interface Member {
  /** global index */
  index: number;
  node: SimNode;
  own: SimNetwork | undefined;
  shared: SimNetwork | undefined;
  inFlight: number;
}

/**
 * Joining a network is a few compare-and-sets (the pool list, the pool's
 * users, the network's aliases), each retried by the plugin's code a
 * bounded number of times; hundreds of sims joining at once may still lose
 * them all, and a sim then tries again, as dockerd's caller would.
 */
const join = async (node: SimNode, subnet: string): Promise<SimNetwork> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await node.joinNetwork(subnet);
    } catch (e) {
      if (attempt >= 5 || !isTsoverlayError(e, 'STORE_CONFLICT')) throw e;
      await sleep(50 * attempt);
    }
  }
};

/** Run `fn` over `items`, at most `limit` at a time. */
const pooled = async <T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> => {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
  }));
  return out;
};

/** Nearest-rank percentile of sorted values (0 for none). */
const nearestRank = (sorted: readonly number[], q: number): number =>
  sorted.length ? sorted[Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length))) - 1]! : 0;

const p50p99 = (values: number[]): { p50: number; p99: number } => {
  const sorted = [...values].sort((x, y) => x - y);
  return { p50: round(nearestRank(sorted, 0.5), 1), p99: round(nearestRank(sorted, 0.99), 1) };
};

/**
 * Several processes' churn results as one: counts summed, percentiles over
 * every process's samples (exact, not an average of percentiles), the
 * longest wall time; the samples themselves are dropped.
 */
export function mergeChurn(parts: readonly ChurnResult[]): ChurnResult {
  if (parts.length === 0) throw new Error('no churn results to merge');
  const attach = parts.flatMap((p) => p.samples?.attach ?? []);
  const detach = parts.flatMap((p) => p.samples?.detach ?? []);
  const sum = (k: 'rate' | 'events' | 'lifecycles' | 'skipped' | 'errors'): number => parts.reduce((n, p) => n + p[k], 0);
  const firstError = parts.find((p) => p.firstError)?.firstError;
  return {
    target: parts[0]!.target,
    rate: round(sum('rate'), 2),
    seconds: parts[0]!.seconds,
    events: sum('events'),
    lifecycles: sum('lifecycles'),
    skipped: sum('skipped'),
    errors: sum('errors'),
    ...(firstError ? { firstError } : {}),
    attachMs: p50p99(attach),
    detachMs: p50p99(detach),
    wallS: Math.max(...parts.map((p) => p.wallS)),
  };
}

export class SimCluster {
  private readonly groups: number;

  private constructor(private readonly members: Member[], private readonly opts: SimClusterOptions) {
    this.groups = groupCount(opts.total ?? (opts.first ?? 0) + opts.nodes, opts.groupSize);
  }

  get size(): number {
    return this.members.length;
  }

  /** Register this process's sims (no networks yet: createGroups, joinNetworks). */
  static async register(opts: SimClusterOptions): Promise<SimCluster> {
    const first = opts.first ?? 0;
    const idx = Array.from({ length: opts.nodes }, (_, i) => first + i);
    const nodes = await pooled(idx, opts.startConcurrency ?? 20, async (i) => SimNode.start(await opts.openStore(simName(i)), {
      name: simName(i), address: simAddress(i), follow: false, ownsStore: true, ...(opts.log ? { log: opts.log } : {}),
    }));
    return new SimCluster(nodes.map((node, k) => ({ index: first + k, node, own: undefined, shared: undefined, inFlight: 0 })), opts);
  }

  /** Register, create the groups, join the networks: the whole setup in one process. */
  static async start(opts: SimClusterOptions): Promise<SimCluster> {
    const c = await SimCluster.register(opts);
    await c.createGroups();
    await c.joinNetworks();
    return c;
  }

  /** Create and name the group networks whose first sim is here; returns how many. */
  async createGroups(): Promise<number> {
    const founders = this.members.filter((m) => m.index < this.groups);
    await pooled(founders, 4, async (m) => {
      m.own = await join(m.node, groupSubnet(m.index));
      await m.node.nameNetwork(m.own, groupName(m.index));
    });
    return founders.length;
  }

  /**
   * Every other sim joins its group network, then every sim the shared one
   * (if any); then, with `follow` (the default), every sim starts keeping a
   * real node's watches (not during the setup: see SimNode.startFollowing).
   */
  async joinNetworks(): Promise<void> {
    await pooled(this.members.filter((m) => !m.own), 4, async (m) => {
      m.own = await join(m.node, groupSubnet(m.index % this.groups));
    });
    const shared = this.opts.shared;
    const total = this.opts.total ?? (this.opts.first ?? 0) + this.opts.nodes;
    const onShared = this.members.filter((m) => joinsShared(m.index, total, this.opts.sharedLimit));
    if (shared) await pooled(onShared, 4, async (m) => { m.shared = await join(m.node, shared); });
    if (this.opts.follow ?? true) await pooled(this.members, 10, (m) => m.node.startFollowing());
  }

  /** Churn for `seconds` at `rate` lifecycles/s on the sims' own networks or the shared one; waits for the last detach. */
  async churn(target: ChurnTarget, rate: number, seconds: number, opts: { holdMs?: number; maxInFlight?: number } = {}): Promise<ChurnResult> {
    const holdMs = opts.holdMs ?? 1000;
    // room for twice the containers a sim has alive at once when the calls are quick (at least 4):
    // at N = 10 and 50/s a sim starts 5 a second, each alive for holdMs and its calls
    const maxInFlight = opts.maxInFlight ?? Math.max(4, Math.ceil(2 * (rate / (target === 'shared' ? Math.max(1, this.members.filter((m) => m.shared).length) : this.members.length)) * (holdMs / 1000 + 1)));
    const attach: number[] = [];
    const detach: number[] = [];
    const r: ChurnResult = {
      target, rate, seconds, events: 0, lifecycles: 0, skipped: 0, errors: 0,
      attachMs: { p50: 0, p99: 0 }, detachMs: { p50: 0, p99: 0 }, wallS: 0,
    };
    const running = new Set<Promise<void>>();
    const lifecycle = async (m: Member, net: SimNetwork): Promise<void> => {
      m.inFlight++;
      try {
        let t0 = performance.now();
        const ep = await m.node.attach(net);
        attach.push(performance.now() - t0);
        r.events++;
        await sleep(holdMs);
        t0 = performance.now();
        await m.node.detach(ep);
        detach.push(performance.now() - t0);
        r.events++;
        r.lifecycles++;
      } catch (e) {
        r.errors++;
        r.firstError ??= e instanceof Error ? e.message : String(e);
      } finally {
        m.inFlight--;
      }
    };
    // the shared network's churn only on the sims that joined it; mixed: those alternate, the others stay on their group's
    const members = target === 'shared' ? this.members.filter((m) => m.shared) : this.members;
    if (members.length === 0) throw new Error(`no sim here is on the ${target} network`);
    const t0 = performance.now();
    const total = Math.round(rate * seconds);
    for (let k = 0; k < total; k++) {
      // paced against the start, so a late tick catches up instead of drifting
      const due = t0 + (k * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const m = members[k % members.length]!;
      // mixed: every sim alternates between its group network and the shared one, round by round
      const net = target === 'shared' || (target === 'mixed' && m.shared && Math.floor(k / members.length) % 2 === 1) ? m.shared : m.own;
      if (!net) throw new Error(`no ${target} network: the sims were started without one (or their networks not joined)`);
      if (m.inFlight >= maxInFlight) {
        r.skipped++;
        continue;
      }
      const p = lifecycle(m, net);
      running.add(p);
      void p.finally(() => running.delete(p));
    }
    await Promise.all(running);
    r.wallS = round((performance.now() - t0) / 1000, 1);
    r.attachMs = p50p99(attach);
    r.detachMs = p50p99(detach);
    r.samples = { attach: attach.map((v) => round(v, 1)), detach: detach.map((v) => round(v, 1)) };
    return r;
  }

  /** Store reads the sims made after watches fired. */
  followReads(): number {
    return this.members.reduce((n, m) => n + m.node.followReads, 0);
  }

  /** End every sim's session (their node records go; their store records stay, as a crashed node's would). */
  async stop(): Promise<void> {
    await pooled(this.members, 50, (m) => m.node.stop().catch(() => undefined));
  }
}

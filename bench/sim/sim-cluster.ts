/**
 * N simulated nodes (sim-node.ts) in one process, each on its own ZooKeeper
 * session, and the churn they make.
 *
 * Layout: the sims are split into groups of about `groupSize`; each group
 * has one network of its own (sims only: `10.150+g/8.g%256.0/24`), and every
 * sim also joins the `shared` subnet (a network the real nodes created), as
 * an engine does when a network is replicated to it.
 *
 * Churn: `rate` container lifecycles per second cluster-wide, each on the
 * next sim in turn: attach (RequestAddress, CreateEndpoint, Join), keep it
 * `holdMs`, detach (Leave, DeleteEndpoint, ReleaseAddress) — two endpoint
 * events. A lifecycle due while its sim still has `maxInFlight` running is
 * skipped and counted (the sims cannot keep up), never queued.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isTsoverlayError } from '../../src/errors.js';
import type { KvStore } from '../../src/store/kv-store.js';
import { percentile, round } from '../stats.js';
import { SimNode, type SimNetwork } from './sim-node.js';

export interface SimClusterOptions {
  nodes: number;
  /** opens one store session per sim */
  openStore: (name: string) => Promise<KvStore>;
  /** subnet of the network shared with the real nodes (joined by every sim); none if absent */
  shared?: string;
  groupSize?: number;
  follow?: boolean;
  /** how many sims register at once */
  startConcurrency?: number;
  log?: Logger;
}

export type ChurnTarget = 'own' | 'shared';

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
}

/** The VXLAN address of sim i: 198.18.0.0/15 (benchmarking range, reachable nowhere in the lab). */
export const simAddress = (i: number): string => `198.18.${Math.floor(i / 250)}.${1 + (i % 250)}`;
export const simName = (i: number): string => `sim${String(i).padStart(3, '0')}`;
const groupSubnet = (g: number): string => `10.${150 + Math.floor(g / 256)}.${g % 256}.0/24`;

interface Member {
  node: SimNode;
  own: SimNetwork;
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

export class SimCluster {
  private constructor(private readonly members: Member[]) {}

  get size(): number {
    return this.members.length;
  }

  /** Register every sim, create the group networks, join the shared one. */
  static async start(opts: SimClusterOptions): Promise<SimCluster> {
    const groupSize = opts.groupSize ?? 5;
    const groups = Math.max(1, Math.ceil(opts.nodes / groupSize));
    const idx = Array.from({ length: opts.nodes }, (_, i) => i);
    const nodes = await pooled(idx, opts.startConcurrency ?? 20, async (i) => SimNode.start(await opts.openStore(simName(i)), {
      name: simName(i), address: simAddress(i), follow: opts.follow ?? true, ownsStore: true, ...(opts.log ? { log: opts.log } : {}),
    }));
    // a group's first sim creates its network before the others join it (no create race to retry)
    const own: SimNetwork[] = new Array<SimNetwork>(opts.nodes);
    await pooled(Array.from({ length: groups }, (_, g) => g), 4, async (g) => {
      for (let i = g; i < opts.nodes; i += groups) own[i] = await join(nodes[i]!, groupSubnet(g));
    });
    const shared = opts.shared;
    const sharedNets = shared ? await pooled(nodes, 4, (n) => join(n, shared)) : [];
    return new SimCluster(nodes.map((node, i) => ({ node, own: own[i]!, shared: sharedNets[i], inFlight: 0 })));
  }

  /** Churn for `seconds` at `rate` lifecycles/s on the sims' own networks or the shared one; waits for the last detach. */
  async churn(target: ChurnTarget, rate: number, seconds: number, opts: { holdMs?: number; maxInFlight?: number } = {}): Promise<ChurnResult> {
    const holdMs = opts.holdMs ?? 1000;
    const maxInFlight = opts.maxInFlight ?? 4;
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
    const t0 = performance.now();
    const total = Math.round(rate * seconds);
    for (let k = 0; k < total; k++) {
      // paced against the start, so a late tick catches up instead of drifting
      const due = t0 + (k * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const m = this.members[k % this.members.length]!;
      const net = target === 'shared' ? m.shared : m.own;
      if (!net) throw new Error('no shared network: the sims were started without one');
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
    r.attachMs = { p50: round(percentile(attach, 0.5), 1), p99: round(percentile(attach, 0.99), 1) };
    r.detachMs = { p50: round(percentile(detach, 0.5), 1), p99: round(percentile(detach, 0.99), 1) };
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

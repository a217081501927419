/**
 * N simulated nodes spread over P processes (sim-process.ts), so that the
 * sims use both cores: each process gets a disjoint range of global sim
 * indexes (names and addresses stay unique) and a share of the churn rate;
 * their answers are put together here (counts summed, latency percentiles
 * over every process's samples).
 *
 * Setup: every process registers its sims at once; then every process
 * creates the group networks whose first sim it has; only when all exist do
 * the others join them (no two processes race to create one network).
 */
import type { Lab } from '../../test/lab/index.js';
import { joinsShared, mergeChurn, type ChurnResult, type ChurnTarget } from './sim-cluster.js';
import { SimProcess } from './sim-process.js';

export interface SimFleetOptions {
  nodes: number;
  /** processes (default: defaultSimProcs(nodes)) */
  procs?: number;
  shared?: string;
  /** at most this many sims on the shared network (default all) */
  sharedLimit?: number;
  groupSize?: number;
}

/** One process's figures. */
export interface SimProcStats {
  first: number;
  nodes: number;
  /** registering its sims, s */
  registerS: number;
  cpuS: number;
  rssMiB: number;
  followReads: number;
}

export type FleetChurn = ChurnResult & {
  /** CPU seconds of all sim processes in the churn, and per process */
  simCpuS: number;
  perProc: Array<{ lifecycles: number; skipped: number; errors: number; simCpuS: number; attachP99: number }>;
};

/** One process per 100 sims: at N = 100 one process spent ~48 CPU s in 60 s of phases, near a core. */
export const defaultSimProcs = (nodes: number): number => Math.max(1, Math.ceil(nodes / 100));

/** Split `nodes` into `procs` contiguous ranges as even as possible. */
export const splitRanges = (nodes: number, procs: number): Array<{ first: number; nodes: number }> => {
  const p = Math.max(1, Math.min(procs, nodes));
  const out: Array<{ first: number; nodes: number }> = [];
  let first = 0;
  for (let k = 0; k < p; k++) {
    const n = Math.floor(nodes / p) + (k < nodes % p ? 1 : 0);
    out.push({ first, nodes: n });
    first += n;
  }
  return out;
};

export class SimFleet {
  private constructor(
    readonly procs: SimProcess[],
    private readonly ranges: Array<{ first: number; nodes: number }>,
    readonly ready: Array<Record<string, unknown>>,
    private readonly sharedLimit?: number,
  ) {}

  /** Sims of process k on the shared network. */
  private onShared(k: number): number {
    const r = this.ranges[k]!;
    let n = 0;
    for (let i = r.first; i < r.first + r.nodes; i++) if (joinsShared(i, this.nodes, this.sharedLimit)) n++;
    return n;
  }

  get nodes(): number {
    return this.ranges.reduce((n, r) => n + r.nodes, 0);
  }

  /** Start every process and set the sims up; `setupS` is the wall time of all of it. */
  static async start(lab: Lab, opts: SimFleetOptions): Promise<{ fleet: SimFleet; setupS: number; groups: number }> {
    const t0 = performance.now();
    const ranges = splitRanges(opts.nodes, opts.procs ?? defaultSimProcs(opts.nodes));
    const started = await Promise.allSettled(ranges.map((r) => SimProcess.start(lab, {
      nodes: r.nodes, first: r.first, total: opts.nodes, staged: true,
      ...(opts.shared ? { shared: opts.shared } : {}),
      ...(opts.groupSize ? { groupSize: opts.groupSize } : {}),
      ...(opts.sharedLimit ? { sharedLimit: opts.sharedLimit } : {}),
    })));
    const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    const fleet = new SimFleet(ok.map((s) => s.sim), ranges, ok.map((s) => s.ready), opts.sharedLimit);
    try {
      if (failed) throw failed.reason;
      const created = await Promise.all(fleet.procs.map((p) => p.createGroups()));
      await Promise.all(fleet.procs.map((p) => p.joinNetworks()));
      return { fleet, setupS: Math.round((performance.now() - t0) / 100) / 10, groups: created.reduce((a, b) => a + b, 0) };
    } catch (e) {
      await fleet.stop();
      throw e;
    }
  }

  /** Churn at `rate` lifecycles/s in all, each process its share. */
  async churn(target: ChurnTarget, rate: number, seconds: number, holdMs?: number): Promise<FleetChurn> {
    // each process its share of the sims the churn runs on
    const weight = this.procs.map((_, k) => (target === 'shared' ? this.onShared(k) : this.ranges[k]!.nodes));
    const all = weight.reduce((a, b) => a + b, 0);
    const parts = await Promise.all(this.procs.flatMap((p, k) => (weight[k]! > 0 ? [p.churn(target, (rate * weight[k]!) / all, seconds, holdMs)] : [])));
    return {
      ...mergeChurn(parts),
      simCpuS: Math.round(parts.reduce((n, p) => n + p.simCpuS, 0) * 100) / 100,
      perProc: parts.map((p) => ({ lifecycles: p.lifecycles, skipped: p.skipped, errors: p.errors, simCpuS: p.simCpuS, attachP99: p.attachMs.p99 })),
    };
  }

  async stats(): Promise<{ nodes: number; procs: SimProcStats[] }> {
    const all = await Promise.all(this.procs.map((p) => p.stats()));
    return {
      nodes: this.nodes,
      procs: all.map((s, k) => ({
        first: this.ranges[k]!.first,
        nodes: this.ranges[k]!.nodes,
        registerS: Number(this.ready[k]?.['setupS']),
        cpuS: Math.round(Number(s['cpuS']) * 100) / 100,
        rssMiB: Number(s['rssMiB']),
        followReads: Number(s['followReads']),
      })),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()));
  }
}

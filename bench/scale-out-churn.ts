/**
 * The scale-out benchmark's long churn run (issue 17: "50 container
 * starts/s cluster-wide for 5 minutes, with p99 convergence and no growth
 * in the real nodes' RSS"), at the largest N, on a lab whose sims are set
 * up (bench/scale-out.ts):
 * - the sims churn `rate` lifecycles/s for `minutes` (target `mixed`):
 *   those on the shared network alternate between it and their group
 *   network (one the real nodes' engines have, with no container of
 *   theirs), the others churn on their group network;
 * - every `sampleS` the plugins' RSS on h1, h2 and h3; every second
 *   ZooKeeper's outstanding requests (`mntr`, summed over the servers);
 * - meanwhile, back to back, convergence probes on the shared network
 *   (bench/control.ts measureReach: a container started on h1, the first
 *   reply to h2's ping stream), p50/p99 over all of them.
 * RSS growth is the slope of a least-squares line through the samples;
 * "grew" means the line rises more than 5 % of the start over the run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { measureReach } from './control.js';
import type { BenchLab } from './lab.js';
import { progress } from './progress.js';
import type { FleetChurn, SimFleet } from './sim/sim-fleet.js';
import { round, summarize, type Summary } from './stats.js';
import { cpuSecondsOf, requestsPerS, rssMiBOf, watchOutstanding, zkSample } from './zk-stats.js';

export interface ChurnRunOptions {
  minutes: number;
  /** lifecycles per second cluster-wide */
  rate: number;
  holdMs: number;
  /** RSS sampling interval, s */
  sampleS?: number;
  /** probes per measureReach batch */
  probesPerBatch?: number;
}

export interface RssSeries {
  host: string;
  startMiB: number;
  endMiB: number;
  maxMiB: number;
  /** least-squares slope, MiB per minute, and what it adds up to over the run */
  slopeMiBPerMin: number;
  growthMiB: number;
  grew: boolean;
  /** [minutes since the start, MiB] */
  samples: Array<[number, number]>;
}

export interface ChurnRunResult {
  simNodes: number;
  minutes: number;
  rate: number;
  churn: FleetChurn;
  rss: RssSeries[];
  h1CpuS: number;
  h1CpuPer1000: number | null;
  zk: { maxOutstanding: number; samples: number; requestsPerS: number; watchesEnd: number };
  /** probes started while the sims churned */
  convergence: { probes: number; afterIssue: Summary; afterReturn: Summary };
}

/** Least-squares slope of y against x (0 for fewer than two points). */
export const slope = (points: ReadonlyArray<readonly [number, number]>): number => {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  return sxx === 0 ? 0 : sxy / sxx;
};

export const rssSeries = (host: string, samples: Array<[number, number]>): RssSeries => {
  const ys = samples.map(([, y]) => y);
  const k = slope(samples);
  const minutes = samples.length ? samples.at(-1)![0] - samples[0]![0] : 0;
  const startMiB = ys[0] ?? 0;
  const growthMiB = k * minutes;
  return {
    host,
    startMiB,
    endMiB: ys.at(-1) ?? 0,
    maxMiB: Math.max(...ys),
    slopeMiBPerMin: round(k, 2),
    growthMiB: round(growthMiB, 1),
    grew: growthMiB > 0.05 * startMiB,
    samples,
  };
};

export async function churnRun(bl: BenchLab, fleet: SimFleet, shared: { name: string; prefix: string }, opts: ChurnRunOptions): Promise<ChurnRunResult> {
  const { lab, hosts } = bl;
  const [h1, h2] = hosts;
  const zk = lab.zk!;
  const pids = hosts.map((h) => {
    if (!h.plugin?.pid) throw new Error(`${h.name} has no plugin process`);
    return h.plugin.pid;
  });
  const seconds = opts.minutes * 60;
  progress(`scale-out churn run: ${opts.rate} lifecycles/s for ${opts.minutes} min on ${fleet.nodes} sims`);
  const series: Array<Array<[number, number]>> = hosts.map(() => []);
  const t0 = performance.now();
  const sample = async (): Promise<void> => {
    const at = round((performance.now() - t0) / 60_000, 3);
    const rss = await Promise.all(pids.map((pid) => rssMiBOf(pid)));
    rss.forEach((v, k) => series[k]!.push([at, v]));
  };
  const z0 = await zkSample(zk);
  const cpu0 = await cpuSecondsOf(pids[0]!);
  await sample();
  const outstanding = watchOutstanding(zk, 1000);
  let done = false;
  let wake = (): void => undefined;
  const finished = new Promise<void>((resolve) => { wake = resolve; });
  const churning = fleet.churn('mixed', opts.rate, seconds, opts.holdMs).finally(() => {
    done = true;
    wake();
  });
  const sampler = (async () => {
    while (!done) {
      await Promise.race([sleep((opts.sampleS ?? 10) * 1000), finished]); // a sampling interval, not a wait for a condition
      if (!done) await sample();
    }
  })();
  const issue: number[] = [];
  const afterReturn: number[] = [];
  try {
    for (let batch = 0; !done; batch++) {
      const r = await measureReach(h1, h2, shared.name, shared.prefix, opts.probesPerBatch ?? 5, `cr${batch}`);
      issue.push(...(r.afterIssueRaw ?? []));
      afterReturn.push(...r.afterReturnRaw.map((d) => Math.max(0, d)));
    }
  } finally {
    // the churn ends on its own; wait for it (and the sampler) even if a probe failed
    await churning.catch(() => undefined);
    await sampler;
  }
  const churn = await churning;
  const { maxOutstanding, samples } = await outstanding.stop();
  await sample();
  const cpu = (await cpuSecondsOf(pids[0]!)) - cpu0;
  const z1 = await zkSample(zk);
  const rss = hosts.map((h, k) => rssSeries(h.name, series[k]!));
  progress(`scale-out churn run: ${churn.lifecycles} lifecycles (${churn.skipped} skipped, ${churn.errors} errors), max ${maxOutstanding} outstanding, `
    + `RSS ${rss.map((r) => `${r.host} ${r.startMiB}→${r.endMiB} MiB (${r.slopeMiBPerMin}/min)`).join(', ')}`);
  return {
    simNodes: fleet.nodes,
    minutes: opts.minutes,
    rate: opts.rate,
    churn,
    rss,
    h1CpuS: round(cpu, 2),
    h1CpuPer1000: churn.events ? round((cpu / churn.events) * 1000, 3) : null,
    zk: { maxOutstanding, samples, requestsPerS: requestsPerS(z0, z1), watchesEnd: z1.watches },
    convergence: { probes: issue.length, afterIssue: summarize(issue), afterReturn: summarize(afterReturn) },
  };
}

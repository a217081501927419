/**
 * Scale-out (issue 17, first cut): how a real node's cost and the
 * ZooKeeper load grow with the cluster, using simulated nodes
 * (bench/sim/) beside the three real ones.
 *
 * At each N of `simNodes`, on a fresh lab (3 hosts with dockerd and the
 * plugin from dist/, a 3-server ZooKeeper ensemble):
 * 1. h1 creates two networks through Docker, replicated to h2 and h3:
 *    `soshared` (10.99.0.0/16), which every simulated node joins, and
 *    `sounshared` (10.98.0.0/16), which none joins.
 * 2. N simulated nodes register and join their group networks (sims only)
 *    and `soshared` (sim-main.ts, in the lab's switch namespace).
 * 3. Phases of `churnSeconds` each, h1's plugin CPU (/proc/<pid>/stat) and
 *    ZooKeeper's `mntr` read before and after: idle (no churn), churn on
 *    the sims' own networks (events on networks h1 has not joined), churn
 *    on `soshared` (events on a network h1 has). CPU per 1,000 endpoint
 *    events is given raw and with the idle phase's rate taken off.
 * 4. Convergence: a container started on h1 reachable from h2 (first reply
 *    of a 2 ms ping stream after `docker run` returns), on `soshared` and on
 *    `sounshared`, with the sims quiet; then on `soshared` again while the
 *    sims churn on it.
 */
import { type Lab, waitFor } from '../test/lab/index.js';
import { measureReach, type ReachResult } from './control.js';
import { createBenchLab, destroyBenchLab, type BenchLab } from './lab.js';
import { progress } from './progress.js';
import { SimProcess } from './sim/sim-process.js';
import type { ChurnResult } from './sim/sim-cluster.js';
import { round } from './stats.js';
import {
  cpuSecondsOf, requestsPerS, rssMiBOf, watchOutstanding, zkClientOf, zkSample, zkWatchesOf, type ZkSample,
} from './zk-stats.js';

export interface ScaleOutOptions {
  simNodes: number[];
  /** container lifecycles per second cluster-wide (2 endpoint events each) */
  churnRate: number;
  churnSeconds: number;
  /** how long a simulated container lives */
  holdMs: number;
  probes: number;
}

/** One measured phase on h1 and ZooKeeper. */
export interface Phase {
  seconds: number;
  /** endpoint events the sims made (creates + deletes); 0 when idle */
  events: number;
  h1CpuS: number;
  /** h1's CPU seconds per 1,000 events: raw, and with the idle rate taken off */
  h1CpuPer1000: number | null;
  h1CpuPer1000OverIdle: number | null;
  /** requests h1's session sent ZooKeeper in the phase */
  h1ZkRequests: number | null;
  zkRequestsPerS: number;
  zkMaxOutstanding: number;
  zkWatchesEnd: number;
  churn?: ChurnResult & { simCpuS: number };
}

export interface ScaleOutPoint {
  simNodes: number;
  simSetupS: number;
  phases: { idle: Phase; ownNetworks: Phase; sharedNetwork: Phase };
  convergence: { shared: ReachResult; unshared: ReachResult; sharedUnderChurn: ReachResult };
  h1: { rssMiB: { start: number; end: number }; zkWatches: number | null };
  zk: { znodes: number; dataBytes: number; connections: number; watches: number };
  sim: Record<string, unknown>;
}

export interface ScaleOutResult {
  options: ScaleOutOptions;
  points: ScaleOutPoint[];
}

/**
 * /16s, the probes' fixed addresses (`prefix`.100+) far above the lowest
 * free ones the sims' churn takes, so a probe never finds its address taken.
 */
const SHARED = { name: 'soshared', subnet: '10.99.0.0/16', prefix: '10.99.200' };
const UNSHARED = { name: 'sounshared', subnet: '10.98.0.0/16', prefix: '10.98.200' };

async function networks(bl: BenchLab): Promise<void> {
  const [h1, h2, h3] = bl.hosts;
  for (const n of [SHARED, UNSHARED]) {
    await h1.docker('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', '--subnet', n.subnet, n.name);
  }
  // replicated through the store to the other engines
  for (const h of [h2, h3]) {
    for (const n of [SHARED, UNSHARED]) {
      await waitFor(() => h.dockerTry('network', 'inspect', n.name), { what: `${n.name} on ${h.name}`, until: (r) => r.code === 0, timeoutMs: 60_000 });
    }
  }
}

/** Measure h1 and ZooKeeper around `work` (which returns the sims' churn result, if any). */
async function phase(lab: Lab, pid: number, ip: string, idleRate: number, work: () => Promise<(ChurnResult & { simCpuS: number }) | number>): Promise<Phase> {
  const zk = lab.zk!;
  const c0 = await zkClientOf(zk, ip);
  const z0: ZkSample = await zkSample(zk);
  const cpu0 = await cpuSecondsOf(pid);
  const t0 = performance.now();
  const outstanding = watchOutstanding(zk);
  const churn = await work();
  const { maxOutstanding } = await outstanding.stop();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = (await cpuSecondsOf(pid)) - cpu0;
  const z1 = await zkSample(zk);
  const c1 = await zkClientOf(zk, ip);
  const events = typeof churn === 'number' ? 0 : churn.events;
  return {
    seconds: round(seconds, 1),
    events,
    h1CpuS: round(cpu, 2),
    h1CpuPer1000: events ? round((cpu / events) * 1000, 3) : null,
    h1CpuPer1000OverIdle: events ? round(((cpu - idleRate * seconds) / events) * 1000, 3) : null,
    h1ZkRequests: c0 && c1 && c0.sessionId === c1.sessionId ? c1.received - c0.received : null,
    zkRequestsPerS: requestsPerS(z0, z1),
    zkMaxOutstanding: maxOutstanding,
    zkWatchesEnd: z1.watches,
    ...(typeof churn === 'number' ? {} : { churn }),
  };
}

async function point(bl: BenchLab, n: number, opts: ScaleOutOptions): Promise<ScaleOutPoint> {
  const { lab, hosts: [h1, h2] } = bl;
  const pid = h1.plugin?.pid;
  if (!pid) throw new Error('h1 has no plugin process');
  await networks(bl);
  progress(`scale-out: starting ${n} simulated nodes`);
  const { sim, ready } = await SimProcess.start(lab, { nodes: n, shared: SHARED.subnet });
  try {
    progress(`scale-out: ${n} simulated nodes ready in ${String(ready['setupS'])} s`);
    const rssStart = await rssMiBOf(pid);
    const secs = opts.churnSeconds;
    const idle = await phase(lab, pid, h1.ip, 0, async () => {
      await new Promise((r) => setTimeout(r, secs * 1000)); // a measurement window, not a wait for a condition
      return 0;
    });
    const idleRate = idle.h1CpuS / idle.seconds;
    progress(`scale-out N=${n}: idle h1 ${idle.h1CpuS} CPU s in ${idle.seconds} s`);
    const churnOn = (target: 'own' | 'shared') => () => sim.churn(target, opts.churnRate, secs, opts.holdMs);
    const ownNetworks = await phase(lab, pid, h1.ip, idleRate, churnOn('own'));
    progress(`scale-out N=${n}: churn on the sims' networks: ${ownNetworks.events} events, h1 ${ownNetworks.h1CpuPer1000OverIdle} CPU s/1000 over idle`);
    const sharedNetwork = await phase(lab, pid, h1.ip, idleRate, churnOn('shared'));
    progress(`scale-out N=${n}: churn on the shared network: ${sharedNetwork.events} events, h1 ${sharedNetwork.h1CpuPer1000OverIdle} CPU s/1000 over idle`);
    const shared = await measureReach(h1, h2, SHARED.name, SHARED.prefix, opts.probes, 'ss');
    const unshared = await measureReach(h1, h2, UNSHARED.name, UNSHARED.prefix, opts.probes, 'su');
    // churn long enough to cover the probes (each a docker run and a first reply: a few seconds)
    const background = sim.churn('shared', opts.churnRate, Math.max(secs, opts.probes * 4), opts.holdMs);
    const sharedUnderChurn = await measureReach(h1, h2, SHARED.name, SHARED.prefix, opts.probes, 'sc');
    await background;
    const c = await zkClientOf(lab.zk!, h1.ip);
    const zkEnd = await zkSample(lab.zk!);
    return {
      simNodes: n,
      simSetupS: Number(ready['setupS']),
      phases: { idle, ownNetworks, sharedNetwork },
      convergence: { shared, unshared, sharedUnderChurn },
      h1: { rssMiB: { start: rssStart, end: await rssMiBOf(pid) }, zkWatches: c ? await zkWatchesOf(lab.zk!, c) : null },
      zk: { znodes: zkEnd.znodes, dataBytes: zkEnd.dataBytes, connections: zkEnd.connections, watches: zkEnd.watches },
      sim: await sim.stats(),
    };
  } finally {
    await sim.stop();
  }
}

export async function runScaleOut(opts: ScaleOutOptions): Promise<ScaleOutResult> {
  const points: ScaleOutPoint[] = [];
  for (const n of opts.simNodes) {
    const bl = await createBenchLab({ mtu: 1500, swarm: false, zkServers: 3 });
    let failed = true;
    try {
      points.push(await point(bl, n, opts));
      failed = false;
    } finally {
      progress('lab: tearing down');
      await destroyBenchLab(bl, failed);
    }
    const p = points.at(-1)!;
    progress(`scale-out N=${n}: convergence p50/p99 shared ${p.convergence.shared.afterReturn.p50}/${p.convergence.shared.afterReturn.p99} ms, `
      + `unshared ${p.convergence.unshared.afterReturn.p50}/${p.convergence.unshared.afterReturn.p99} ms; ${p.zk.znodes} znodes, ${p.zk.watches} watches`);
  }
  return { options: opts, points };
}

/**
 * Scale-out (issue 17): how a real node's cost and the ZooKeeper load grow
 * with the cluster, using simulated nodes (bench/sim/) beside the three
 * real ones.
 *
 * At each N of `simNodes`, on a fresh lab (3 hosts with dockerd and the
 * plugin from dist/, a 3-server ZooKeeper ensemble):
 * 1. h1 creates two networks through Docker, replicated to h2 and h3:
 *    `soshared` (10.99.0.0/16), which every simulated node joins, and
 *    `sounshared` (10.98.0.0/16), which none joins.
 * 2. N simulated nodes, spread over P processes (bench/sim/sim-fleet.ts,
 *    default one per 100 sims), register, create their group networks
 *    `sog<g>` (one per `groupSize` sims, named as a real node names the
 *    networks its engine created) and join them and `soshared`. The real
 *    nodes' replicators create every `sog<g>` in their engines, as in a
 *    real cluster, where every named network is on every engine; the
 *    measurement starts once all three engines list them all.
 * 3. Phases of `churnSeconds` each, h1's plugin CPU (/proc/<pid>/stat) and
 *    ZooKeeper's `mntr` read before and after: idle (no churn), churn on
 *    the sims' group networks (networks h1's engine has but where h1 runs
 *    no container), churn on `soshared` (where h1 runs a container,
 *    `so-h1`, started before the phases: the network it has joined; a node
 *    follows a network's endpoints only while it has one of its own
 *    there, src/cluster/local-endpoints.ts). CPU per 1,000
 *    endpoint events is given raw and with the idle phase's rate taken off.
 * 4. Convergence: a container started on h1 reachable from h2 (first reply
 *    of a 2 ms ping stream after `docker run` returns), on `soshared` and on
 *    `sounshared`, with the sims quiet; then on `soshared` again while the
 *    sims churn on it.
 * 5. At the largest N, when `churnMinutes` > 0: the long churn run
 *    (scale-out-churn.ts).
 */
import { type Lab, waitFor } from '../test/lab/index.js';
import { measureReach, type ReachResult } from './control.js';
import { createBenchLab, destroyBenchLab, type BenchLab } from './lab.js';
import { progress } from './progress.js';
import { churnRun, type ChurnRunResult } from './scale-out-churn.js';
import { groupName } from './sim/sim-cluster.js';
import { SimFleet, type FleetChurn, type SimProcStats } from './sim/sim-fleet.js';
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
  /** sim processes at each N (default: sim-fleet.ts defaultSimProcs) */
  simProcs?: number;
  /** at most this many sims on `soshared` (default all; see sim-cluster.ts sharedLimit) */
  sharedSims?: number;
  /** sims per group network (default sim-cluster.ts DEFAULT_GROUP_SIZE) */
  groupSize?: number;
  /** the long churn run at the largest N; 0 or absent: none */
  churnMinutes?: number;
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
  churn?: FleetChurn;
}

export interface ScaleOutPoint {
  simNodes: number;
  simProcs: number;
  /** group networks (each on every real engine) */
  groupNetworks: number;
  /** the sims registered and on their networks, and then all three engines listing every group network */
  simSetupS: number;
  replicatedS: number;
  /** this N from lab creation to teardown's end */
  wallS?: number;
  phases: { idle: Phase; ownNetworks: Phase; sharedNetwork: Phase };
  convergence: { shared: ReachResult; unshared: ReachResult; sharedUnderChurn: ReachResult };
  h1: { rssMiB: { start: number; end: number }; zkWatches: number | null };
  zk: { znodes: number; dataBytes: number; connections: number; watches: number };
  sim: { nodes: number; procs: SimProcStats[] };
  churnRun?: ChurnRunResult;
}

export interface ScaleOutResult {
  options: ScaleOutOptions;
  points: ScaleOutPoint[];
  /** the whole section, s */
  totalS?: number;
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
async function phase(lab: Lab, pid: number, ip: string, idleRate: number, work: () => Promise<FleetChurn | number>): Promise<Phase> {
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

/** Wait until every real engine lists every group network (replicated from the sims' records). */
async function replicated(bl: BenchLab, groups: number): Promise<void> {
  const want = Array.from({ length: groups }, (_, g) => groupName(g));
  for (const h of bl.hosts) {
    await waitFor(async () => new Set((await h.docker('network', 'ls', '--format', '{{.Name}}')).split('\n')), {
      what: `${groups} group networks on ${h.name}`, until: (have) => want.every((n) => have.has(n)), timeoutMs: 300_000, intervalMs: 500,
    });
  }
}

async function point(bl: BenchLab, n: number, opts: ScaleOutOptions, longChurn: boolean): Promise<ScaleOutPoint> {
  const { lab, hosts: [h1, h2] } = bl;
  const pid = h1.plugin?.pid;
  if (!pid) throw new Error('h1 has no plugin process');
  await networks(bl);
  progress(`scale-out: starting ${n} simulated nodes`);
  const { fleet, setupS, groups } = await SimFleet.start(lab, {
    nodes: n, shared: SHARED.subnet, ...(opts.simProcs ? { procs: opts.simProcs } : {}), ...(opts.groupSize ? { groupSize: opts.groupSize } : {}),
    ...(opts.sharedSims ? { sharedLimit: opts.sharedSims } : {}),
  });
  try {
    const t0 = performance.now();
    await replicated(bl, groups);
    const replicatedS = round((performance.now() - t0) / 1000, 1);
    progress(`scale-out: ${n} simulated nodes in ${fleet.procs.length} processes ready in ${setupS} s; ${groups} group networks on every engine ${replicatedS} s later`);
    // h1 takes part in soshared (a container of its own there), so events on it are events on a network it has joined;
    // its engine has the group networks too (replicated), with none of its containers on them
    await h1.runSleeper('so-h1', '--net', SHARED.name);
    const rssStart = await rssMiBOf(pid);
    const secs = opts.churnSeconds;
    const idle = await phase(lab, pid, h1.ip, 0, async () => {
      await new Promise((r) => setTimeout(r, secs * 1000)); // a measurement window, not a wait for a condition
      return 0;
    });
    const idleRate = idle.h1CpuS / idle.seconds;
    progress(`scale-out N=${n}: idle h1 ${idle.h1CpuS} CPU s in ${idle.seconds} s`);
    const churnOn = (target: 'own' | 'shared') => () => fleet.churn(target, opts.churnRate, secs, opts.holdMs);
    const ownNetworks = await phase(lab, pid, h1.ip, idleRate, churnOn('own'));
    progress(`scale-out N=${n}: churn on the sims' group networks: ${ownNetworks.events} events (${ownNetworks.churn?.skipped} skipped), h1 ${ownNetworks.h1CpuPer1000OverIdle} CPU s/1000 over idle`);
    const sharedNetwork = await phase(lab, pid, h1.ip, idleRate, churnOn('shared'));
    progress(`scale-out N=${n}: churn on the shared network: ${sharedNetwork.events} events (${sharedNetwork.churn?.skipped} skipped, attach p99 ${sharedNetwork.churn?.attachMs.p99} ms), h1 ${sharedNetwork.h1CpuPer1000OverIdle} CPU s/1000 over idle`);
    const shared = await measureReach(h1, h2, SHARED.name, SHARED.prefix, opts.probes, 'ss');
    const unshared = await measureReach(h1, h2, UNSHARED.name, UNSHARED.prefix, opts.probes, 'su');
    // churn long enough to cover the probes (each a docker run and a first reply: a few seconds)
    const background = fleet.churn('shared', opts.churnRate, Math.max(secs, opts.probes * 4), opts.holdMs);
    const sharedUnderChurn = await measureReach(h1, h2, SHARED.name, SHARED.prefix, opts.probes, 'sc');
    await background;
    const c = await zkClientOf(lab.zk!, h1.ip);
    const zkEnd = await zkSample(lab.zk!);
    const rssEnd = await rssMiBOf(pid);
    const h1Watches = c ? await zkWatchesOf(lab.zk!, c) : null;
    const long = longChurn ? await churnRun(bl, fleet, SHARED, { minutes: opts.churnMinutes!, rate: opts.churnRate, holdMs: opts.holdMs }) : undefined;
    return {
      simNodes: n,
      simProcs: fleet.procs.length,
      groupNetworks: groups,
      simSetupS: setupS,
      replicatedS,
      phases: { idle, ownNetworks, sharedNetwork },
      convergence: { shared, unshared, sharedUnderChurn },
      h1: { rssMiB: { start: rssStart, end: rssEnd }, zkWatches: h1Watches },
      zk: { znodes: zkEnd.znodes, dataBytes: zkEnd.dataBytes, connections: zkEnd.connections, watches: zkEnd.watches },
      sim: await fleet.stats(),
      ...(long ? { churnRun: long } : {}),
    };
  } finally {
    await fleet.stop();
  }
}

export async function runScaleOut(opts: ScaleOutOptions): Promise<ScaleOutResult> {
  const points: ScaleOutPoint[] = [];
  const started = performance.now();
  const largest = Math.max(...opts.simNodes);
  let longDone = false;
  for (const n of opts.simNodes) {
    const t0 = performance.now();
    const longChurn: boolean = !longDone && n === largest && (opts.churnMinutes ?? 0) > 0;
    longDone ||= longChurn;
    const bl = await createBenchLab({ mtu: 1500, swarm: false, zkServers: 3 });
    let failed = true;
    try {
      points.push(await point(bl, n, opts, longChurn));
      failed = false;
    } finally {
      progress('lab: tearing down');
      await destroyBenchLab(bl, failed);
    }
    const p = points.at(-1)!;
    p.wallS = round((performance.now() - t0) / 1000, 1);
    progress(`scale-out N=${n} (${p.wallS} s): convergence p50/p99 shared ${p.convergence.shared.afterReturn.p50}/${p.convergence.shared.afterReturn.p99} ms, `
      + `unshared ${p.convergence.unshared.afterReturn.p50}/${p.convergence.unshared.afterReturn.p99} ms; ${p.zk.znodes} znodes, ${p.zk.watches} watches`);
  }
  const totalS = round((performance.now() - started) / 1000, 1);
  progress(`scale-out: total ${totalS} s (${round(totalS / 60, 1)} min)`);
  return { options: opts, points, totalS };
}

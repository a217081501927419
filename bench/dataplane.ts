/**
 * Data plane: TCP throughput (iperf3, 1 and 4 streams), ping-flood RTT and a
 * TCP request/response rate (sockperf ping-pong) between h1 and h2 over four
 * paths, measured in the same lab and interleaved rep by rep so that drift
 * hits all four alike:
 *   underlay          — host namespace to host namespace over the lab's switch;
 *   swarm             — two containers on Docker's swarm overlay (-d overlay --attachable);
 *   tsoverlay         — two containers on a tsoverlay network created with
 *                       -o tsoverlay.mode=bridge (bridge + veth; the default
 *                       layout until 2026-11-26, so older results files
 *                       have it under this name too);
 *   tsoverlay-macvlan — two containers on a tsoverlay network created with
 *                       -o tsoverlay.mode=macvlan (macvlan on the VXLAN device,
 *                       no bridge; the default layout since).
 * The tools run from the hosts' binaries inside the containers' network
 * namespaces (nsenter -t PID -n), so the image does not matter.
 */
import { CommandError, run, waitFor, type LabHost } from '../test/lab/index.js';
import { Rank, TrackedProcess } from '../test/lab/tracked.js';
import type { BenchLab } from './lab.js';
import { progress } from './progress.js';
import { median, ratio, round } from './stats.js';

export const PATHS = ['underlay', 'swarm', 'tsoverlay', 'tsoverlay-macvlan'] as const;
export type PathName = (typeof PATHS)[number];
/** Paths added after the first results files were written: absent from those. */
export type LaterPath = 'tsoverlay-macvlan';

interface End {
  /** nsenter arguments selecting the network namespace */
  ns: string[];
  ip: string;
}

export interface PathEnds {
  path: PathName;
  client: End;
  server: End;
  /** MTU of the interface the traffic leaves by */
  mtu: number;
}

export interface DataplaneOptions {
  reps: number;
  /** seconds per iperf3 run */
  iperfSeconds: number;
  /** seconds per sockperf run */
  rrSeconds: number;
  pings: number;
}

export interface PathResult {
  mtu: number;
  /** medians over the reps */
  throughput1Gbps: number;
  throughput4Gbps: number;
  rttUs: number;
  rrPerSec: number;
  /**
   * TCP round trip: twice sockperf's median one-way latency of the
   * ping-pong run (thousands of round trips, to the nanosecond; absent in
   * results of older runs). ping's RTT is printed to the microsecond only.
   */
  tcpRttUs?: number;
  raw: { throughput1Gbps: number[]; throughput4Gbps: number[]; rttUs: number[]; rrPerSec: number[]; tcpRttUs?: number[] };
}

export interface Ratios { throughput1: number; throughput4: number; rtt: number; rr: number; tcpRtt?: number }

export interface DataplaneResult {
  underlayMtu: number;
  /** older results files have no LaterPath */
  paths: Record<Exclude<PathName, LaterPath>, PathResult> & Partial<Record<LaterPath, PathResult>>;
  /**
   * each metric of swarm, tsoverlay and tsoverlay-macvlan divided by the
   * underlay's; and tsoverlay / swarm, tsoverlay-macvlan / swarm (the
   * macvlan ones absent from older results files)
   */
  ratios: Record<'swarm' | 'tsoverlay' | 'tsoverlayVsSwarm', Ratios> & Partial<Record<'tsoverlay-macvlan' | 'tsoverlayMacvlanVsSwarm', Ratios>>;
}

const IPERF_PORT = 5201;
const SOCKPERF_PORT = 11111;

const nsRun = async (ns: string[], cmd: string, args: string[], timeoutMs = 60_000): Promise<string> => {
  const r = await run('nsenter', [...ns, '--', cmd, ...args], { timeoutMs });
  if (r.code !== 0) throw new CommandError(r);
  return r.stdout + r.stderr;
};

const hostEnd = (h: LabHost): End => ({ ns: [`--net=/run/netns/${h.ns}`], ip: h.ip });

const containerEnd = async (h: LabHost, container: string, network: string): Promise<End> => {
  const pid = await h.containerPid(container);
  const ip = (await h.docker('container', 'inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, container)).trim();
  return { ns: ['-t', String(pid), '-n'], ip };
};

/** MTU of the interface `end` reaches `to` by. */
const mtuOf = async (end: End, to: string): Promise<number> => {
  const out = await nsRun(end.ns, 'ip', ['-o', 'route', 'get', to]).catch(() => '');
  const dev = /dev (\S+)/.exec(out)?.[1];
  const link = await nsRun(end.ns, 'ip', ['-o', 'link', 'show', ...(dev ? ['dev', dev] : [])]);
  return Number(/mtu (\d+)/.exec(link)?.[1] ?? Number.NaN);
};

/** Networks and containers for the three overlay paths: a on h1, b on h2. */
export async function setupPaths(bl: BenchLab): Promise<PathEnds[]> {
  const [h1, h2] = bl.hosts;
  // swarm's overlay takes its MTU option as the underlay's and subtracts the
  // VXLAN overhead itself (1500 -> 1450, like tsoverlay); without it, it
  // assumes 1500 whatever the underlay
  await h1.docker('network', 'create', '-d', 'overlay', '--attachable', '--subnet', '10.60.0.0/24',
    '--opt', `com.docker.network.driver.mtu=${bl.mtu}`, 'bswarm');
  await h1.docker('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', '-o', 'tsoverlay.mode=bridge', '--subnet', '10.61.0.0/24', 'bts');
  // the same driver with the faster data path: a macvlan per container on the
  // network's VXLAN device instead of a bridge and veth pairs; a subnet of its
  // own (10.62-64 are the control plane's, in the same lab)
  await h1.docker('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', '-o', 'tsoverlay.mode=macvlan',
    '--subnet', '10.65.0.0/24', 'btsm');
  for (const net of ['bts', 'btsm']) {
    await waitFor(() => h2.dockerTry('network', 'inspect', net), { what: `${net} on h2`, until: (r) => r.code === 0, timeoutMs: 20_000 });
  }
  for (const [name, net] of [['sw', 'bswarm'], ['ts', 'bts'], ['tm', 'btsm']] as const) {
    await h1.runSleeper(`${name}-a`, '--net', net);
    await h2.runSleeper(`${name}-b`, '--net', net);
  }
  const ends: PathEnds[] = [];
  const add = async (path: PathName, client: End, server: End) => ends.push({ path, client, server, mtu: await mtuOf(client, server.ip) });
  await add('underlay', hostEnd(h1), hostEnd(h2));
  await add('swarm', await containerEnd(h1, 'sw-a', 'bswarm'), await containerEnd(h2, 'sw-b', 'bswarm'));
  await add('tsoverlay', await containerEnd(h1, 'ts-a', 'bts'), await containerEnd(h2, 'ts-b', 'bts'));
  await add('tsoverlay-macvlan', await containerEnd(h1, 'tm-a', 'btsm'), await containerEnd(h2, 'tm-b', 'btsm'));
  for (const e of ends) {
    await waitFor(() => nsRun(e.client.ns, 'ping', ['-n', '-c', '1', '-W', '1', e.server.ip]).then(() => true, () => false),
      { what: `${e.path}: ${e.client.ip} -> ${e.server.ip}`, until: (ok) => ok, timeoutMs: 30_000, intervalMs: 100 });
  }
  return ends;
}

export async function startServers(bl: BenchLab, ends: PathEnds[]): Promise<TrackedProcess[]> {
  const procs: TrackedProcess[] = [];
  for (const e of ends) {
    for (const [label, cmd, args] of [
      ['iperf3', 'iperf3', ['-s', '-B', e.server.ip, '-p', String(IPERF_PORT)]],
      ['sockperf', 'sockperf', ['server', '--tcp', '-i', e.server.ip, '-p', String(SOCKPERF_PORT)]],
    ] as const) {
      procs.push(await TrackedProcess.spawn('nsenter', [...e.server.ns, '--', cmd, ...args], {
        label: `bench-${label}-${e.path}`, rank: Rank.Probe, state: bl.lab.state,
      }));
    }
  }
  return procs;
}

/** Retry while the server is still starting (connection refused). */
const untilListening = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
  waitFor(() => fn().then((v) => ({ v }), (e: unknown) => ({ e })), {
    what, until: (r) => 'v' in r, timeoutMs: 15_000, intervalMs: 200,
    describe: (r) => ('e' in r ? String(r.e instanceof Error ? r.e.message : r.e).slice(0, 300) : 'ok'),
  }).then((r) => (r as { v: T }).v);

export async function iperf(e: PathEnds, streams: number, seconds: number): Promise<number> {
  const out = await untilListening(`iperf3 ${e.path}`, () => nsRun(e.client.ns, 'iperf3',
    ['-c', e.server.ip, '-p', String(IPERF_PORT), '-t', String(seconds), '-P', String(streams), '-J'], (seconds + 30) * 1000));
  const json = JSON.parse(out.slice(out.indexOf('{'))) as { end: { sum_received: { bits_per_second: number } } };
  return json.end.sum_received.bits_per_second / 1e9;
}

export async function pingRtt(e: PathEnds, count: number): Promise<number> {
  const out = await nsRun(e.client.ns, 'ping', ['-n', '-q', '-f', '-c', String(count), e.server.ip]);
  const m = /= [\d.]+\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(out);
  const lost = /(\d+) received/.exec(out);
  if (!m || Number(lost?.[1]) < count * 0.99) throw new Error(`${e.path}: ping flood: ${out}`);
  return Number(m[1]) * 1000;
}

/** sockperf ping-pong: round trips per second, and the median round trip (2 × the median one-way latency) in µs. */
export async function rr(e: PathEnds, seconds: number): Promise<{ perSec: number; rttUs: number }> {
  const out = await untilListening(`sockperf ${e.path}`, () => nsRun(e.client.ns, 'sockperf',
    ['ping-pong', '--tcp', '-i', e.server.ip, '-p', String(SOCKPERF_PORT), '-t', String(seconds)], (seconds + 30) * 1000));
  const m = /\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=\d+; ReceivedMessages=(\d+)/.exec(out);
  const p50 = /percentile 50\.000 =\s*([\d.]+)/.exec(out);
  if (!m || !p50) throw new Error(`${e.path}: sockperf: ${out.slice(-500)}`);
  return { perSec: Number(m[2]) / Number(m[1]), rttUs: 2 * Number(p50[1]) };
}

export async function runDataplane(bl: BenchLab, opts: DataplaneOptions): Promise<DataplaneResult> {
  progress(`data plane @${bl.mtu}: networks and containers`);
  const ends = await setupPaths(bl);
  const servers = await startServers(bl, ends);
  const raw = Object.fromEntries(PATHS.map((p) => [p, { throughput1Gbps: [] as number[], throughput4Gbps: [] as number[], rttUs: [] as number[], rrPerSec: [] as number[], tcpRttUs: [] as number[] }])) as Record<PathName, Required<PathResult['raw']>>;
  try {
    for (let rep = 1; rep <= opts.reps; rep++) {
      // each repetition starts with the next path: no path is always measured first
      const order = ends.map((_, i) => ends[(i + rep - 1) % ends.length] as PathEnds);
      for (const e of order) {
        const r = raw[e.path];
        r.throughput1Gbps.push(await iperf(e, 1, opts.iperfSeconds));
        r.throughput4Gbps.push(await iperf(e, 4, opts.iperfSeconds));
        r.rttUs.push(await pingRtt(e, opts.pings));
        const pp = await rr(e, opts.rrSeconds);
        r.rrPerSec.push(pp.perSec);
        r.tcpRttUs.push(pp.rttUs);
        progress(`data plane @${bl.mtu} rep ${rep}/${opts.reps} ${e.path.padEnd(17)}: ` +
          `${round(r.throughput1Gbps.at(-1)!, 2)} / ${round(r.throughput4Gbps.at(-1)!, 2)} Gbit/s (1/4 streams), ` +
          `rtt ${round(r.rttUs.at(-1)!, 1)} µs, ${Math.round(r.rrPerSec.at(-1)!)} req/s, tcp rtt ${round(r.tcpRttUs.at(-1)!, 2)} µs`);
      }
    }
  } finally {
    for (const s of servers) await s.stop(5000);
  }
  const paths = Object.fromEntries(ends.map((e) => {
    const r = raw[e.path];
    const res: PathResult = {
      mtu: e.mtu,
      throughput1Gbps: round(median(r.throughput1Gbps)),
      throughput4Gbps: round(median(r.throughput4Gbps)),
      rttUs: round(median(r.rttUs), 1),
      rrPerSec: Math.round(median(r.rrPerSec)),
      tcpRttUs: round(median(r.tcpRttUs), 2),
      raw: {
        throughput1Gbps: r.throughput1Gbps.map((v) => round(v)), throughput4Gbps: r.throughput4Gbps.map((v) => round(v)),
        rttUs: r.rttUs.map((v) => round(v, 1)), rrPerSec: r.rrPerSec.map(Math.round), tcpRttUs: r.tcpRttUs.map((v) => round(v, 2)),
      },
    };
    return [e.path, res];
  })) as DataplaneResult['paths'];
  const vs = (a: PathResult, b: PathResult): Ratios => ({
    throughput1: ratio(a.throughput1Gbps, b.throughput1Gbps),
    throughput4: ratio(a.throughput4Gbps, b.throughput4Gbps),
    rtt: ratio(a.rttUs, b.rttUs),
    rr: ratio(a.rrPerSec, b.rrPerSec),
    ...(a.tcpRttUs !== undefined && b.tcpRttUs !== undefined ? { tcpRtt: ratio(a.tcpRttUs, b.tcpRttUs) } : {}),
  });
  const macvlan = paths['tsoverlay-macvlan'];
  return {
    underlayMtu: bl.mtu,
    paths,
    ratios: {
      swarm: vs(paths.swarm, paths.underlay), tsoverlay: vs(paths.tsoverlay, paths.underlay), tsoverlayVsSwarm: vs(paths.tsoverlay, paths.swarm),
      // the same two ratios as tsoverlay's, for the macvlan mode
      ...(macvlan ? { 'tsoverlay-macvlan': vs(macvlan, paths.underlay), tsoverlayMacvlanVsSwarm: vs(macvlan, paths.swarm) } : {}),
    },
  };
}

/**
 * Control plane, on the 1500-MTU lab:
 * - `docker run -d` wall time on h1 for a tsoverlay network, a user-defined
 *   bridge network and a swarm overlay network (interleaved, one warm-up each);
 * - cross-host reachability: from `docker run -d` returning on h1 until a
 *   container on h2, pinging the new address every 2 ms from its own network
 *   namespace (iputils with -D timestamps, ARP retry every 10 ms), gets its
 *   first reply — for tsoverlay and swarm;
 * - network create propagation: from `docker network create` on h1 until the
 *   engines of h2 and h3 both list the network (polled over their API
 *   sockets every 5 ms) — for tsoverlay and swarm (all three are managers).
 */
import { request } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { BUSYBOX_IMAGE, endpointOf, ifaceWithIp, SLEEPER, waitFor, type LabHost } from '../test/lab/index.js';
import type { NetworkMode } from '../src/model.js';
import type { BenchLab } from './lab.js';
import { progress } from './progress.js';
import { median, ratio, round, summarize, type Summary } from './stats.js';

export interface ControlOptions {
  /** docker run -d timings per driver */
  runs: number;
  /** reachability probes per overlay */
  probes: number;
  /** network creations per overlay */
  creates: number;
}

type Driver = 'bridge' | 'swarm' | 'tsoverlay';
type Overlay = 'swarm' | 'tsoverlay';

export interface ReachResult {
  /** first reply minus `docker run` returning, clipped at 0 (ms) */
  afterReturn: Summary;
  /** unclipped: negative = the reply came before docker run returned */
  afterReturnRaw: number[];
  /** first reply minus `docker run` being issued (ms) */
  afterIssue: Summary;
  /** the same, each probe (so several runs' percentiles can be merged) */
  afterIssueRaw?: number[];
}

export interface ControlResult {
  /** Layout of the tsoverlay networks measured (the plugins' default); absent in older files: bridge. */
  layout?: NetworkMode;
  dockerRunMs: Record<Driver, { median: number; all: number[] }>;
  dockerRunRatio: { tsoverlayVsBridge: number; swarmVsBridge: number };
  reachability: Partial<Record<Overlay, ReachResult>>;
  reachabilityNote?: string;
  networkCreate: Record<Overlay, { spreadMs: Summary; createMs: Summary }>;
}

const NETS: Record<Driver, { name: string; subnet: string; args: string[] }> = {
  bridge: { name: 'cbr', subnet: '10.62.0.0/24', args: ['-d', 'bridge'] },
  swarm: { name: 'cswarm', subnet: '10.63.0.0/24', args: ['-d', 'overlay', '--attachable'] },
  tsoverlay: { name: 'cts', subnet: '10.64.0.0/24', args: ['-d', 'tsoverlay', '--ipam-driver', 'tsoverlay'] },
};

const timed = async (fn: () => Promise<unknown>): Promise<{ t0: number; t1: number }> => {
  const t0 = Date.now();
  await fn();
  return { t0, t1: Date.now() };
};

const runSleeper = (h: LabHost, name: string, ...args: string[]) =>
  h.docker('run', '-d', '--name', name, ...args, BUSYBOX_IMAGE, ...SLEEPER);

/** GET /networks/<name> on an engine's socket: does it know the network? */
const engineHas = (h: LabHost, name: string): Promise<boolean> => new Promise((resolve) => {
  const req = request({ socketPath: h.dockerSock, path: `/networks/${encodeURIComponent(name)}`, method: 'GET', timeout: 2000, agent: false }, (res) => {
    res.resume();
    res.on('end', () => resolve(res.statusCode === 200));
  });
  req.on('error', () => resolve(false));
  req.on('timeout', () => req.destroy());
  req.end();
});

async function dockerRunTimes(bl: BenchLab, runs: number): Promise<ControlResult['dockerRunMs']> {
  const [h1] = bl.hosts;
  const drivers = Object.keys(NETS) as Driver[];
  const out = Object.fromEntries(drivers.map((d) => [d, [] as number[]])) as Record<Driver, number[]>;
  const names: string[] = [];
  for (let i = -1; i < runs; i++) {
    for (const d of drivers) {
      const name = `r${d.slice(0, 2)}${i + 1}`;
      names.push(name);
      const { t0, t1 } = await timed(() => runSleeper(h1, name, '--net', NETS[d].name));
      if (i >= 0) out[d].push(t1 - t0); // i = -1: warm-up
    }
    if (i >= 0) progress(`control: docker run -d ${i + 1}/${runs}: ${drivers.map((d) => `${d} ${out[d].at(-1)} ms`).join(', ')}`);
  }
  await h1.docker('rm', '-f', ...names);
  return Object.fromEntries(drivers.map((d) => [d, { median: median(out[d]), all: out[d] }])) as ControlResult['dockerRunMs'];
}

/**
 * `probes` times: a new container on h1 at <prefix>.<100+i>, probed from a
 * container on h2. `tag` (2 letters) keeps container names apart.
 */
export async function measureReach(h1: LabHost, h2: LabHost, net: string, prefix: string, probes: number, tag: string): Promise<ReachResult> {
  const probe = `p${tag}`;
  const warm = `w${tag}`;
  await runSleeper(h2, probe, '--net', net);
  await runSleeper(h1, warm, '--net', net);
  // the probe's interface: retry ARP every 10 ms, not every second, so the overlay is measured
  const pif = await ifaceWithIp(h2, probe, (await endpointOf(h2, probe, net)).ip);
  await h2.nsSh(probe, 'sysctl', '-q', '-w', `net.ipv4.neigh.${pif}.retrans_time_ms=10`);
  const raw: number[] = [];
  const issue: number[] = [];
  const names: string[] = [];
  for (let i = 0; i < probes; i++) {
    const ip = `${prefix}.${100 + i}`;
    const name = `v${tag}${i}`;
    names.push(name);
    const s = await h2.pingStream(probe, ip, { interval: 0.002, args: ['-D'] });
    try {
      await waitFor(() => s.output, { what: 'probe ping to start', until: (o) => /^PING /m.test(o), timeoutMs: 5000, intervalMs: 5 });
      const { t0, t1 } = await timed(() => runSleeper(h1, name, '--net', net, '--ip', ip));
      await s.waitReplies(1, 15_000).catch(() => undefined);
      if (s.firstReplyAt === undefined) throw new Error(`${net}: ${ip} never answered the probe on h2`);
      raw.push(s.firstReplyAt - t1);
      issue.push(s.firstReplyAt - t0);
      progress(`reachability on ${net} ${i + 1}/${probes}: first reply ${raw.at(-1)} ms after docker run returned`);
    } finally {
      if (s.proc.running) await s.stop();
    }
  }
  await h1.docker('rm', '-f', ...names, warm);
  await h2.docker('rm', '-f', probe);
  return { afterReturn: summarize(raw.map((d) => Math.max(0, d))), afterReturnRaw: raw, afterIssue: summarize(issue), afterIssueRaw: issue };
}

async function networkCreate(bl: BenchLab, overlay: Overlay, creates: number): Promise<{ spreadMs: Summary; createMs: Summary }> {
  const [h1, ...others] = bl.hosts;
  const spread: number[] = [];
  const create: number[] = [];
  for (let i = 0; i < creates; i++) {
    const name = `nc${overlay.slice(0, 2)}${i}`;
    const subnet = `10.${overlay === 'swarm' ? 70 : 71}.${i}.0/24`;
    const seen = new Map<string, number>();
    let done = false;
    // poll the other engines while the create runs
    const poller = (async () => {
      while (!done || seen.size < others.length) {
        for (const h of others) if (!seen.has(h.name) && await engineHas(h, name)) seen.set(h.name, Date.now());
        if (seen.size === others.length) return;
        await delay(5);
      }
    })();
    const { t0, t1 } = await timed(() => h1.docker('network', 'create', ...NETS[overlay].args, '--subnet', subnet, name));
    done = true;
    await Promise.race([poller, delay(30_000).then(() => { throw new Error(`${name} did not reach every node in 30 s`); })]);
    spread.push(Math.max(...seen.values()) - t0);
    create.push(t1 - t0);
    progress(`control: ${overlay} network create ${i + 1}/${creates}: on all nodes ${spread.at(-1)} ms after the create started (create took ${create.at(-1)} ms)`);
  }
  for (let i = 0; i < creates; i++) await h1.docker('network', 'rm', `nc${overlay.slice(0, 2)}${i}`);
  return { spreadMs: summarize(spread), createMs: summarize(create) };
}

export async function runControl(bl: BenchLab, opts: ControlOptions): Promise<ControlResult> {
  const [h1, h2] = bl.hosts;
  progress('control: networks');
  for (const d of Object.keys(NETS) as Driver[]) await h1.docker('network', 'create', ...NETS[d].args, '--subnet', NETS[d].subnet, NETS[d].name);
  await waitFor(() => h2.dockerTry('network', 'inspect', NETS.tsoverlay.name), { what: 'cts on h2', until: (r) => r.code === 0, timeoutMs: 20_000 });
  const dockerRunMs = await dockerRunTimes(bl, opts.runs);
  const reach: ControlResult['reachability'] = {};
  for (const [overlay, prefix] of [['tsoverlay', '10.64.0'], ['swarm', '10.63.0']] as const) {
    reach[overlay] = await measureReach(h1, h2, NETS[overlay].name, prefix, opts.probes, overlay.slice(0, 2));
  }
  const networkCreateRes = {
    tsoverlay: await networkCreate(bl, 'tsoverlay', opts.creates),
    swarm: await networkCreate(bl, 'swarm', opts.creates),
  };
  for (const d of Object.keys(NETS) as Driver[]) await h1.dockerTry('network', 'rm', NETS[d].name);
  return {
    dockerRunMs,
    dockerRunRatio: {
      tsoverlayVsBridge: ratio(dockerRunMs.tsoverlay.median, dockerRunMs.bridge.median),
      swarmVsBridge: ratio(dockerRunMs.swarm.median, dockerRunMs.bridge.median),
    },
    reachability: reach,
    networkCreate: networkCreateRes,
  };
}

export const fmtMs = (v: number): string => `${round(v, 0)} ms`;

/**
 * Scale: the plugins' API driven directly, the way dockerd drives it, on a
 * three-host lab without swarm.
 *
 * 1. `networks` networks, each created on all three nodes (RequestPool,
 *    RequestAddress for the gateway, CreateNetwork — what each engine does
 *    when the network is replicated to it).
 * 2. `endpoints` endpoints, endpoint k on node k mod 3 in network k mod N:
 *    RequestAddress, CreateEndpoint, Join — one container attach each; the
 *    three nodes attach at the same time, each one endpoint after another.
 *    Latencies are reported per `step` endpoints, to show how cost grows.
 * 3. At full size: time until every node's kernel holds every remote
 *    FDB/neighbour entry, plugin RSS per node, znodes in ZooKeeper,
 *    cross-host reachability of real containers (docker run) under that load,
 *    and a restarted plugin's resync: its VXLAN devices are deleted while it
 *    is stopped, and we time how long it takes to bring them back with all
 *    entries.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { readFile } from 'node:fs/promises';
import { run, sh, waitFor, type LabHost } from '../test/lab/index.js';
import { measureReach, type ReachResult } from './control.js';
import { errorText } from '../src/errors.js';
import type { NetworkMode } from '../src/model.js';
import type { BenchLab } from './lab.js';
import { progress } from './progress.js';
import { percentile, round, summarize, type Summary } from './stats.js';

export interface ScaleOptions {
  networks: number;
  endpoints: number;
  /** report latencies per this many endpoints */
  step: number;
}

type Op = 'RequestAddress' | 'CreateEndpoint' | 'Join';
const OPS: Op[] = ['RequestAddress', 'CreateEndpoint', 'Join'];

export interface ScaleStep {
  /** endpoints in the cluster at the end of this step */
  endpoints: number;
  ops: Record<Op, { p50: number; p99: number }>;
}

export interface ScaleResult {
  /** Layout of the networks (the plugins' default); absent in older files: bridge. */
  layout?: NetworkMode;
  networks: number;
  endpoints: number;
  createNetworkMs: Summary;
  steps: ScaleStep[];
  /** how the p50 of each operation grows from the first step to the last */
  growth: Record<Op, { first: number; last: number; ratio: number; verdict: 'flat' | 'linear' | 'worse' }>;
  attachWallS: number;
  /** from the last Join until every node holds every remote entry */
  convergedAfterMs: number;
  rssMiB: { before: Record<string, number>; after: Record<string, number> };
  znodes: number;
  reachUnderLoad: ReachResult;
  restart: {
    /** plain restart: process start until GET /ready */
    readyMs: number;
    /** VXLAN devices deleted while stopped: start until every entry is back */
    resyncMs: number;
    readyAfterDamageMs: number;
    entries: number;
  };
}

const hex = (n: number) => randomBytes(n).toString('hex');

/** One plugin call; throws with Docker's {"Err"} text on failure. */
async function call(h: LabHost, path: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await h.pluginRequest(`/${path}`, JSON.stringify(body), { timeoutMs: 60_000 });
  const json = (r.json ?? {}) as Record<string, unknown>;
  if (r.status !== 200 || json['Err']) throw new Error(`${h.name} ${path}: ${r.status} ${r.text}`);
  return json;
}

const rssMiB = async (h: LabHost): Promise<number> => {
  const pid = h.plugin?.pid;
  if (!pid) return Number.NaN;
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return round(Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) / 1024, 1);
};

/** A remote FDB entry (unicast MAC with a dst) or neighbour entry on a tsvx device, as `bridge fdb` / `ip neigh` print it. */
const isRemoteEntry = (line: string): boolean =>
  /^(?!00:00:00:00:00:00)(?:[0-9a-f]{2}:){5}[0-9a-f]{2} dev tsvx-\S+ dst \S+ self permanent/.test(line) ||
  /^\d+\.\d+\.\d+\.\d+ dev tsvx-\S+ lladdr \S+ PERMANENT/.test(line);

/** Remote FDB + neighbour entries on the host's tsvx devices. */
async function entryCount(h: LabHost): Promise<number> {
  const fdb = await sh('bridge', ['-n', h.ns, 'fdb', 'show']).catch(() => '');
  const neigh = await sh('ip', ['-n', h.ns, '-4', 'neigh', 'show', 'nud', 'permanent']).catch(() => '');
  return [...fdb.split('\n'), ...neigh.split('\n')].filter(isRemoteEntry).length;
}

/** A neighbour entry put on the lab underlay to see the monitor listening (TEST-NET address, documentation MAC). */
const MARK = { ip: '192.0.2.1', mac: '02:00:5e:00:53:01' };

/**
 * A remote entry as `ip monitor neigh` announces it: an FDB entry (printed
 * as "<dst> dev tsvx-… lladdr <mac> NOARP PERMANENT"; not the all-zero
 * flood entry) or an IPv4 neighbour entry ("<ip> dev tsvx-… lladdr <mac> PERMANENT").
 */
const isAnnouncedEntry = (line: string): boolean =>
  /^\d+\.\d+\.\d+\.\d+ dev tsvx-\S+ lladdr (?!00:00:00:00:00:00)\S+ (?:NOARP )?PERMANENT/.test(line);

/** Receive buffer of the monitor: a resync announces thousands of entries at once, and a full buffer drops them unseen. */
const MONITOR_RCVBUF = String(8 << 20);

/**
 * Count remote entries as the kernel announces them (one `ip monitor neigh`
 * in the host's namespace, which announces FDB and neighbour entries alike):
 * `done` resolves with the time the count reached `n`. Polling the tables
 * instead would dump thousands of entries every few ms, CPU taken from the
 * plugin being measured. The monitor asks for a large receive buffer (capped
 * by net.core.rmem_max): with the default one, and the FDB in a second
 * monitor, a resync of 6,666 entries once went unseen by ~10 %. `ready`
 * resolves once the monitor has reported a marker entry, so none of the
 * plugin's entries can go unseen before it listens.
 */
function entriesAnnounced(h: LabHost, n: number, timeoutMs: number): { ready: Promise<void>; done: Promise<number>; stop(): void } {
  const monitor = spawn('ip', ['-rc', MONITOR_RCVBUF, '-n', h.ns, 'monitor', 'neigh']);
  let marked = false;
  let count = 0;
  let finish: (at: number) => void = () => {};
  let fail: (e: Error) => void = () => {};
  const done = new Promise<number>((resolve, reject) => [finish, fail] = [resolve, reject]);
  const timer = setTimeout(() => fail(new Error(`${h.name}: only ${count} of ${n} entries announced in ${timeoutMs} ms`)), timeoutMs);
  const stop = (): void => {
    clearTimeout(timer);
    monitor.kill();
  };
  createInterface({ input: monitor.stdout }).on('line', (line) => {
    if (line.includes(MARK.mac)) marked = true;
    if (!isAnnouncedEntry(line) || ++count < n) return;
    clearTimeout(timer);
    finish(performance.now());
  });
  void done.finally(stop).catch(() => undefined);
  const unmark = async (): Promise<void> => {
    await run('ip', ['-n', h.ns, 'neigh', 'del', MARK.ip, 'dev', h.underlay]);
  };
  const ready = (async () => {
    // Removed and added again on every try: re-writing an unchanged entry
    // is not announced, so a try before the monitor listened would
    // otherwise leave nothing for the later ones to announce.
    await waitFor(async () => {
      await unmark();
      await sh('ip', ['-n', h.ns, 'neigh', 'add', MARK.ip, 'lladdr', MARK.mac, 'dev', h.underlay, 'nud', 'permanent']);
      return marked;
    }, { what: `${h.name}: the netlink monitor listening`, until: (ok) => ok, timeoutMs: 10_000, intervalMs: 50 });
    await unmark();
  })();
  return { ready, done, stop };
}

/**
 * Restart the plugin of `h`, plainly and then after deleting its VXLAN
 * devices while it is stopped; times the second start until the kernel holds
 * all `entries` remote FDB/neighbour entries again.
 */
export async function measureRestart(h: LabHost, entries: number): Promise<ScaleResult['restart']> {
  progress(`scale: plugin restart on ${h.name}`);
  await h.stopPlugin();
  let t0 = performance.now();
  await h.startPlugin();
  const readyMs = Math.round(performance.now() - t0);
  await h.stopPlugin();
  const vxlans = (await sh('ip', ['-n', h.ns, '-o', 'link', 'show', 'type', 'vxlan'])).split('\n')
    .map((l) => /^\d+: (tsvx-[0-9a-f]+)/.exec(l)?.[1]).filter((x): x is string => !!x);
  for (const v of vxlans) await sh('ip', ['-n', h.ns, 'link', 'del', v]);
  const announced = entriesAnnounced(h, entries, 120_000);
  let readyAfterDamageMs: number;
  let resyncMs: number;
  try {
    await announced.ready;
    t0 = performance.now();
    await h.startPlugin();
    readyAfterDamageMs = Math.round(performance.now() - t0);
    resyncMs = Math.round((await announced.done.catch(async (e: unknown) => {
      // the monitor missed announcements, or the entries are missing: say which
      throw new Error(`${errorText(e)}; the tables hold ${await entryCount(h)} of ${entries}`);
    })) - t0);
  } finally {
    announced.stop();
  }
  // what the monitor counted is what the tables hold
  const held = await entryCount(h);
  if (held < entries) throw new Error(`${h.name}: the monitor counted ${entries} entries, the tables hold ${held}`);
  progress(`scale: restart ready in ${readyMs} ms; after losing ${vxlans.length} VXLAN devices all ${entries} entries back in ${resyncMs} ms`);
  return { readyMs, resyncMs, readyAfterDamageMs, entries };
}

interface NodeNet { netId: string; poolId: string }

export async function runScale(bl: BenchLab, opts: ScaleOptions): Promise<ScaleResult> {
  const { hosts, lab } = bl;
  const [h1, h2] = hosts;
  const rssBefore = Object.fromEntries(await Promise.all(hosts.map(async (h) => [h.name, await rssMiB(h)] as const)));

  // 1. networks, on every node
  progress(`scale: ${opts.networks} networks on 3 nodes`);
  const nets: NodeNet[][] = hosts.map(() => []);
  const createNet: number[] = [];
  await Promise.all(hosts.map(async (h, hi) => {
    for (let i = 0; i < opts.networks; i++) {
      const subnet = `10.${100 + Math.floor(i / 256)}.${i % 256}.0/24`;
      const pool = await call(h, 'IpamDriver.RequestPool', { AddressSpace: 'tsoverlay-local', Pool: subnet, SubPool: '', Options: {}, V6: false });
      const gw = await call(h, 'IpamDriver.RequestAddress', { PoolID: pool['PoolID'], Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
      const netId = hex(32);
      const t0 = performance.now();
      await call(h, 'NetworkDriver.CreateNetwork', {
        NetworkID: netId,
        Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} },
        IPv4Data: [{ AddressSpace: 'tsoverlay-local', Gateway: gw['Address'], Pool: pool['Pool'] }],
        IPv6Data: [],
      });
      createNet.push(performance.now() - t0);
      nets[hi]!.push({ netId, poolId: String(pool['PoolID']) });
    }
  }));

  // 2. endpoints
  progress(`scale: ${opts.endpoints} endpoints (RequestAddress, CreateEndpoint, Join), 3 nodes attaching at once`);
  const samples: Array<{ at: number; op: Op; ms: number }> = [];
  let count = 0;
  const tAttach = performance.now();
  let lastJoin = 0;
  await Promise.all(hosts.map(async (h, hi) => {
    for (let k = hi; k < opts.endpoints; k += hosts.length) {
      const net = nets[hi]![k % opts.networks]!;
      const epId = hex(32);
      const timedCall = async (op: Op, body: unknown) => {
        const t0 = performance.now();
        const r = await call(h, `${op.startsWith('Request') ? 'IpamDriver' : 'NetworkDriver'}.${op}`, body);
        samples.push({ at: count, op, ms: performance.now() - t0 });
        return r;
      };
      const addr = await timedCall('RequestAddress', { PoolID: net.poolId, Address: '', Options: null });
      await timedCall('CreateEndpoint', {
        NetworkID: net.netId, EndpointID: epId,
        Interface: { Address: addr['Address'], AddressIPv6: '', MacAddress: '' },
        Options: { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] },
      });
      await timedCall('Join', { NetworkID: net.netId, EndpointID: epId, SandboxKey: `/var/run/docker/netns/${hex(6)}`, Options: {} });
      lastJoin = performance.now();
      count++;
      if (count % opts.step === 0) progress(`scale: ${count}/${opts.endpoints} endpoints`);
    }
  }));
  const attachWallS = round((performance.now() - tAttach) / 1000, 1);

  // 3a. every node holds every remote entry: per node, the endpoints of the other two (FDB + neighbour)
  const expected = (hi: number) => 2 * (opts.endpoints - Math.ceil((opts.endpoints - hi) / hosts.length));
  progress('scale: waiting until every node holds every remote entry');
  await Promise.all(hosts.map((h, hi) => waitFor(() => entryCount(h), {
    what: `${h.name}: ${expected(hi)} remote entries`, until: (n) => n >= expected(hi), timeoutMs: 300_000, intervalMs: 100,
  })));
  const convergedAfterMs = Math.round(performance.now() - lastJoin);
  const rssAfter = Object.fromEntries(await Promise.all(hosts.map(async (h) => [h.name, await rssMiB(h)] as const)));
  const znodes = Number(/zk_znode_count\s+(\d+)/.exec(await lab.zk!.fourLetter(1, 'mntr'))?.[1]);
  progress(`scale: converged ${convergedAfterMs} ms after the last Join; RSS ${JSON.stringify(rssAfter)} MiB; ${znodes} znodes`);

  // 3b. real containers under that load
  progress('scale: reachability of new containers under load');
  await h1.docker('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', '--subnet', '10.99.0.0/24', 'sload');
  await waitFor(() => h2.dockerTry('network', 'inspect', 'sload'), { what: 'sload on h2', until: (r) => r.code === 0, timeoutMs: 60_000 });
  const reachUnderLoad = await measureReach(h1, h2, 'sload', '10.99.0', 10, 'sl');

  // 3c. restart, plain and after losing the VXLAN devices
  const restart = await measureRestart(h2, expected(1));

  const steps: ScaleStep[] = [];
  for (let upto = opts.step; upto <= opts.endpoints; upto += opts.step) {
    const inStep = samples.filter((s) => s.at < upto && s.at >= upto - opts.step);
    const ops = Object.fromEntries(OPS.map((op) => {
      const v = inStep.filter((s) => s.op === op).map((s) => s.ms);
      return [op, { p50: round(percentile(v, 0.5), 2), p99: round(percentile(v, 0.99), 2) }];
    })) as ScaleStep['ops'];
    steps.push({ endpoints: upto, ops });
  }
  const growth = Object.fromEntries(OPS.map((op) => {
    const first = steps[0]?.ops[op].p50 ?? Number.NaN;
    const last = steps.at(-1)?.ops[op].p50 ?? Number.NaN;
    const r = last / first;
    const sizeRatio = steps.length;
    const verdict = r < 1.5 ? 'flat' : r <= 1.5 * sizeRatio ? 'linear' : 'worse';
    return [op, { first, last, ratio: round(r, 2), verdict }];
  })) as ScaleResult['growth'];
  return {
    networks: opts.networks,
    endpoints: opts.endpoints,
    createNetworkMs: summarize(createNet.map((v) => round(v, 2))),
    steps,
    growth,
    attachWallS,
    convergedAfterMs,
    rssMiB: { before: rssBefore, after: rssAfter },
    znodes,
    reachUnderLoad,
    restart,
  };
}

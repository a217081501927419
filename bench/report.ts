/**
 * Turns a results JSON into docs/benchmarks.md and two charts
 * (docs/benchmarks-dataplane.svg, docs/benchmarks-scale.svg). The
 * hand-written analysis in bench/analysis.md is placed after the numbers.
 *
 *   node --import=@tapjs/typescript/import bench/report.ts bench/results/<file>.json
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { NetworkMode } from '../src/model.js';
import type { ControlResult } from './control.js';
import { PATHS, type DataplaneResult, type Ratios } from './dataplane.js';
import type { BenchResults } from './run.js';
import type { ScaleResult } from './scale.js';
import { scaleOutCharts, scaleOutSection } from './scale-out-report.js';
import { barChart, lineChart } from './svg.js';

const DOC = 'docs/benchmarks.md';
const DATAPLANE_SVG = 'docs/benchmarks-dataplane.svg';
const SCALE_SVG = 'docs/benchmarks-scale.svg';

const f = (v: number | undefined, digits = 2): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const ms = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '–' : `${Math.round(v)} ms`);
const yes = (ok: boolean | undefined): string => (ok === undefined ? '–' : ok ? '**met**' : '**missed**');

interface Target { what: string; target: string; measured: string; ok: boolean | undefined }

/** The data-plane targets of one tsoverlay layout at one underlay MTU; `label` prefixes each row. */
function dataplaneTargets(v: Ratios, mtu: number, label = ''): Target[] {
  const out: Target[] = [];
  out.push({ what: `${label}throughput vs swarm, 1 / 4 streams, underlay MTU ${mtu}`, target: '≥ 1.0×', measured: `${f(v.throughput1)}× / ${f(v.throughput4)}×`, ok: v.throughput1 >= 1 && v.throughput4 >= 1 });
  out.push({ what: `${label}ping RTT vs swarm, underlay MTU ${mtu} (1 µs steps)`, target: '≤ 1.1×', measured: `${f(v.rtt)}×`, ok: v.rtt <= 1.1 });
  if (v.tcpRtt !== undefined) {
    out.push({ what: `${label}TCP round trip (sockperf, median) vs swarm, underlay MTU ${mtu}`, target: '≤ 1.1×', measured: `${f(v.tcpRtt)}×`, ok: v.tcpRtt <= 1.1 });
  }
  return out;
}

/** The layout a section measured: older files have none, and bridge was the default then. */
const layoutOf = (x: { layout?: NetworkMode }): string => `${x.layout ?? 'bridge'} mode`;

function targets(r: BenchResults): Target[] {
  // the macvlan mode's rows first (the default layout since 2026-11-26; older
  // runs have none), then the bridge mode's, all MTUs of one layout together
  const out: Target[] = [];
  for (const d of r.dataplane) {
    const v = d.ratios.tsoverlayMacvlanVsSwarm;
    if (v) out.push(...dataplaneTargets(v, d.underlayMtu, 'macvlan mode: '));
  }
  out.push(...r.dataplane.flatMap((d) => dataplaneTargets(d.ratios.tsoverlayVsSwarm, d.underlayMtu, 'bridge mode: ')));
  const c = r.control;
  if (c) {
    const at = ` (${layoutOf(c)})`;
    out.push({ what: `\`docker run -d\` vs the bridge driver (medians)${at}`, target: '≤ 1.25×', measured: `${f(c.dockerRunRatio.tsoverlayVsBridge)}×`, ok: c.dockerRunRatio.tsoverlayVsBridge <= 1.25 });
    const reach = c.reachability.tsoverlay;
    if (reach) out.push({ what: `cross-host reachability after \`docker run\` returns, p99${at}`, target: '≤ 50 ms', measured: ms(reach.afterReturn.p99), ok: reach.afterReturn.p99 <= 50 });
  }
  const s = r.scale;
  if (s) {
    const at = ` (${layoutOf(s)})`;
    const maxRss = Math.max(...Object.values(s.rssMiB.after));
    out.push({ what: `plugin RSS at ${s.endpoints} endpoints (largest node)${at}`, target: '≤ 120 MB', measured: `${f(maxRss, 1)} MiB`, ok: maxRss * 1.048576 <= 120 });
    out.push({ what: `restart resync of ${s.endpoints} endpoints (all ${s.restart.entries} entries back)${at}`, target: '≤ 2 s', measured: ms(s.restart.resyncMs), ok: s.restart.resyncMs <= 2000 });
  }
  return out;
}

/** A bold row of ratios to swarm, or none when the run did not measure that path. */
const vsSwarmRow = (name: string, v: Ratios | undefined): string[] => (v
  ? [`| **${name}** | | **${f(v.throughput1)}×** | **${f(v.throughput4)}×** | **${f(v.rtt)}×** | **${v.tcpRtt === undefined ? '–' : `${f(v.tcpRtt)}×`}** | **${f(v.rr)}×** |`]
  : []);

function dataplaneSection(d: DataplaneResult): string {
  // paths an older run did not measure have no row
  const rows = PATHS.flatMap((p) => {
    const x = d.paths[p];
    if (!x) return [];
    const rel = p === 'underlay' ? undefined : d.ratios[p];
    const cell = (v: number, r: number | undefined, digits: number) => `${f(v, digits)}${r === undefined ? '' : ` (${f(r)}×)`}`;
    const tcp = x.tcpRttUs === undefined ? '–' : cell(x.tcpRttUs, rel?.tcpRtt, 2);
    return [`| ${p} | ${x.mtu} | ${cell(x.throughput1Gbps, rel?.throughput1, 2)} | ${cell(x.throughput4Gbps, rel?.throughput4, 2)} | ${cell(x.rttUs, rel?.rtt, 1)} | ${tcp} | ${cell(x.rrPerSec, rel?.rr, 0)} |`];
  });
  return [
    `### Underlay MTU ${d.underlayMtu}`,
    '',
    '| path | MTU | TCP 1 stream, Gbit/s | TCP 4 streams, Gbit/s | ping RTT, µs | TCP round trip, µs | TCP req/resp per s |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows,
    ...vsSwarmRow('tsoverlay (bridge) / swarm', d.ratios.tsoverlayVsSwarm),
    ...vsSwarmRow('tsoverlay-macvlan / swarm', d.ratios.tsoverlayMacvlanVsSwarm),
    '',
    `(Medians of ${d.paths.underlay.raw.throughput1Gbps.length} interleaved repetitions; in brackets the ratio to the underlay of the same run.)`,
    '',
  ].join('\n');
}

function controlSection(c: ControlResult): string {
  const reachRow = (name: string, x: ControlResult['reachability']['tsoverlay']) => x
    ? `| ${name} | ${ms(x.afterReturn.p50)} | ${ms(x.afterReturn.p99)} | ${ms(x.afterReturn.max)} | ${x.afterReturnRaw.filter((v) => v <= 0).length}/${x.afterReturnRaw.length} | ${ms(x.afterIssue.p50)} |`
    : `| ${name} | – | – | – | – | – |`;
  return [
    '## Control plane',
    '',
    `tsoverlay networks here are in the plugins' default layout, ${layoutOf(c)}.`,
    '',
    '`docker run -d` on h1, wall time of the CLI (medians, interleaved, one warm-up run each not counted):',
    '',
    '| network | median | ratio to bridge |',
    '|---|---:|---:|',
    `| bridge (user-defined) | ${ms(c.dockerRunMs.bridge.median)} | 1.00× |`,
    `| swarm overlay | ${ms(c.dockerRunMs.swarm.median)} | ${f(c.dockerRunRatio.swarmVsBridge)}× |`,
    `| tsoverlay | ${ms(c.dockerRunMs.tsoverlay.median)} | ${f(c.dockerRunRatio.tsoverlayVsBridge)}× |`,
    '',
    'Cross-host reachability: a container on h2 pings the new container\'s address every 2 ms from its own network namespace (ARP retried every 10 ms); time of the first reply after `docker run -d` returned on h1 (0 when the reply came first):',
    '',
    '| overlay | p50 | p99 | max | replies before `docker run` returned | p50 from `docker run` start |',
    '|---|---:|---:|---:|---:|---:|',
    reachRow('tsoverlay', c.reachability.tsoverlay),
    reachRow('swarm overlay', c.reachability.swarm),
    '',
    'Network create propagation: from `docker network create` starting on h1 until the engines of h2 and h3 both list the network (polled every 5 ms over their API sockets; the swarm\'s three engines are all managers):',
    '',
    '| overlay | p50 | p99 | `network create` itself, p50 |',
    '|---|---:|---:|---:|',
    `| tsoverlay | ${ms(c.networkCreate.tsoverlay.spreadMs.p50)} | ${ms(c.networkCreate.tsoverlay.spreadMs.p99)} | ${ms(c.networkCreate.tsoverlay.createMs.p50)} |`,
    `| swarm overlay | ${ms(c.networkCreate.swarm.spreadMs.p50)} | ${ms(c.networkCreate.swarm.spreadMs.p99)} | ${ms(c.networkCreate.swarm.createMs.p50)} |`,
    '',
  ].join('\n');
}

export function scaleSection(s: ScaleResult): string {
  const steps = s.steps.map((x) => `| ${x.endpoints} | ${f(x.ops.RequestAddress.p50)} / ${f(x.ops.RequestAddress.p99)} | ${f(x.ops.CreateEndpoint.p50)} / ${f(x.ops.CreateEndpoint.p99)} | ${f(x.ops.Join.p50)} / ${f(x.ops.Join.p99)} |`);
  const growth = Object.entries(s.growth).map(([op, g]) => `${op} ${g.verdict} (p50 ${f(g.first)} → ${f(g.last)} ms, ${f(g.ratio)}×)`).join('; ');
  return [
    '## Scale',
    '',
    `${s.networks} networks (in the plugins' default layout, ${layoutOf(s)}) on all three nodes, then ${s.endpoints} endpoints (endpoint k on node k mod 3, network k mod ${s.networks}), driven through the plugins' API as dockerd drives it: RequestAddress, CreateEndpoint, Join per endpoint, the three nodes attaching at the same time. All ${s.endpoints} attached in ${f(s.attachWallS, 1)} s. CreateNetwork p50 ${f(s.createNetworkMs.p50)} ms, p99 ${f(s.createNetworkMs.p99)} ms.`,
    '',
    `![latency of the plugin calls as the cluster grows](benchmarks-scale.svg)`,
    '',
    '| endpoints in the cluster | RequestAddress p50 / p99, ms | CreateEndpoint p50 / p99, ms | Join p50 / p99, ms |',
    '|---:|---:|---:|---:|',
    ...steps,
    '',
    `How cost grows with size: ${growth}.`,
    '',
    '| at full size | |',
    '|---|---|',
    `| every node holds every remote FDB + neighbour entry | ${ms(s.convergedAfterMs)} after the last Join |`,
    `| plugin RSS per node, before → after | ${Object.keys(s.rssMiB.after).map((h) => `${h} ${f(s.rssMiB.before[h], 1)} → ${f(s.rssMiB.after[h], 1)} MiB`).join(', ')} |`,
    `| znodes in ZooKeeper | ${s.znodes} |`,
    `| reachability of a new container under that load, p50 / p99 after \`docker run\` returned | ${ms(s.reachUnderLoad.afterReturn.p50)} / ${ms(s.reachUnderLoad.afterReturn.p99)} (n=${s.reachUnderLoad.afterReturn.n}) |`,
    `| plugin restart on h2: start → ready | ${ms(s.restart.readyMs)} |`,
    `| restart after its VXLAN devices were deleted: start → all ${s.restart.entries} entries back (ready after) | ${ms(s.restart.resyncMs)} (${ms(s.restart.readyAfterDamageMs)}) |`,
    '',
  ].join('\n');
}

export function renderMarkdown(r: BenchResults, jsonPath: string, analysis: string, baseOfBase?: BenchResults['basedOn']): string {
  const m = r.machine;
  const out = [
    '# Benchmarks: tsoverlay, Docker\'s swarm overlay and the bare underlay',
    '',
    '<!-- generated by bench/report.ts from the results file named below; edit bench/analysis.md for the prose -->',
    '',
    `Produced by \`${r.command}\` (as root, after \`npm run build\`) on ${r.date.slice(0, 10)} in ${Math.round(r.durationS / 60)} min; raw numbers in [\`${jsonPath}\`](../${jsonPath}).${r.quick ? ' **Quick (smoke) run: few repetitions, not representative.**' : ''}`,
    '',
    ...(r.basedOn ? [`The ${r.basedOn.sections.join(' and ')} section${r.basedOn.sections.length > 1 ? 's' : ''} come${r.basedOn.sections.length > 1 ? '' : 's'} from the earlier run \`${r.basedOn.command}\` of ${r.basedOn.date.slice(0, 16).replace('T', ' ')} ([\`${r.basedOn.file}\`](../${r.basedOn.file})), on the same machine${baseOfBase ? `; that run took its ${baseOfBase.sections.join(' and ')} from \`${baseOfBase.command}\` of ${baseOfBase.date.slice(0, 16).replace('T', ' ')} ([\`${baseOfBase.file}\`](../${baseOfBase.file}))` : ''}.`, ''] : []),
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; kernel ${m.kernel}; Docker ${m.docker}; ZooKeeper ${m.zookeeper}; Node ${m.node}; iperf3 ${m.iperf3}; sockperf ${m.sockperf}.`,
    'The lab is the test harness\'s: three Docker engines in network namespaces on one veth "switch", ZooKeeper in a fourth (see test/lab/README.md).',
    '**Absolute figures drift between runs and machines; the ratios, measured in the same run, are the result.**',
    '',
    '## Targets',
    '',
    '| what | target | measured | |',
    '|---|---|---|---|',
    ...targets(r).map((t) => `| ${t.what} | ${t.target} | ${t.measured} | ${yes(t.ok)} |`),
    '',
  ];
  if (r.dataplane.length) {
    // the sentence on the macvlan path only where the run measured it
    const macvlan = r.dataplane.some((d) => d.paths['tsoverlay-macvlan'])
      ? ' tsoverlay = two containers on a network in bridge mode (a veth on a Linux bridge; `-o tsoverlay.mode=bridge`, the default before 2026-11-26); tsoverlay-macvlan = two containers on a network created with `-o tsoverlay.mode=macvlan` (the default since): each container\'s interface is a macvlan on the network\'s VXLAN device, no Linux bridge and no veth pair.'
      : '';
    out.push('## Data plane', '',
      `h1 → h2: TCP throughput (iperf3, 5 s, 1 and 4 streams), ping-flood RTT (iputils \`ping -f\`, which prints it to the microsecond), TCP request/response (sockperf ping-pong: one small message in flight at a time, 3 s; the round trip is twice its median one-way latency, the rate counts the round trips). Underlay = host namespace to host namespace; swarm and tsoverlay = container to container, both overlays at MTU underlay − 50.${macvlan}`,
      '', '![data plane: tsoverlay and swarm overlay relative to the underlay](benchmarks-dataplane.svg)', '');
    for (const d of r.dataplane) out.push(dataplaneSection(d));
  }
  if (r.control) out.push(controlSection(r.control));
  if (r.scale) out.push(scaleSection(r.scale));
  if (r.scaleOut) out.push(scaleOutSection(r.scaleOut));
  out.push(analysis.trim(), '');
  return out.join('\n');
}

export function renderDataplaneSvg(r: BenchResults): string {
  // a third series only when the run measured the macvlan mode; an MTU
  // without it (not expected: one run measures every path) draws no bar there
  const macvlan = r.dataplane.some((d) => d.ratios['tsoverlay-macvlan']);
  const pick = (d: DataplaneResult, m: (v: Ratios) => number): number[] => [
    m(d.ratios.swarm), m(d.ratios.tsoverlay),
    ...(macvlan ? [d.ratios['tsoverlay-macvlan'] ? m(d.ratios['tsoverlay-macvlan']) : Number.NaN] : []),
  ];
  const groups = r.dataplane.flatMap((d) => [
    { label: `1 stream @${d.underlayMtu}`, values: pick(d, (v) => v.throughput1) },
    { label: `4 streams @${d.underlayMtu}`, values: pick(d, (v) => v.throughput4) },
    { label: `req/s @${d.underlayMtu}`, values: pick(d, (v) => v.rr) },
    { label: `1/RTT @${d.underlayMtu}`, values: pick(d, (v) => 1 / v.rtt) },
  ]);
  return barChart({
    title: 'Data plane relative to the bare underlay of the same run (= 1.0; higher is better)',
    series: ['swarm overlay', 'tsoverlay, bridge mode', ...(macvlan ? ['tsoverlay, macvlan mode'] : [])],
    groups,
    reference: 1,
  });
}

export function renderScaleSvg(s: ScaleResult): string {
  return lineChart({
    title: `Plugin call latency (p50, ms) as the cluster grows to ${s.endpoints} endpoints in ${s.networks} networks`,
    xLabel: 'endpoints in the cluster',
    yLabel: 'ms',
    xs: s.steps.map((x) => x.endpoints),
    series: (['RequestAddress', 'CreateEndpoint', 'Join'] as const).map((op) => ({ name: `${op} p50`, ys: s.steps.map((x) => x.ops[op].p50) })),
  });
}

export async function writeReport(r: BenchResults, jsonPath: string): Promise<string[]> {
  const analysis = await readFile('bench/analysis.md', 'utf8').catch(() => '');
  const written = [DOC];
  // a section taken from a run that itself took it from an earlier one: name both
  const base = r.basedOn ? ((JSON.parse(await readFile(r.basedOn.file, 'utf8').catch(() => '{}')) as Partial<BenchResults>).basedOn) : undefined;
  await writeFile(DOC, renderMarkdown(r, jsonPath, analysis, base));
  if (r.dataplane.length) {
    await writeFile(DATAPLANE_SVG, renderDataplaneSvg(r));
    written.push(DATAPLANE_SVG);
  }
  if (r.scale) {
    await writeFile(SCALE_SVG, renderScaleSvg(r.scale));
    written.push(SCALE_SVG);
  }
  if (r.scaleOut) {
    for (const [path, svg] of scaleOutCharts(r.scaleOut)) {
      await writeFile(path, svg);
      written.push(path);
    }
  }
  return written;
}

// node bench/report.ts <results.json>: re-render the report from a results file
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: bench/report.ts bench/results/<file>.json');
  const r = JSON.parse(await readFile(file, 'utf8')) as BenchResults;
  process.stdout.write(`${(await writeReport(r, file)).join('\n')}\n`);
}

/**
 * The scale-out section of docs/benchmarks.md from a results file that has
 * one (`npm run bench -- --only scale-out`): a table of the real node's and
 * ZooKeeper's cost against the number of simulated nodes, and a chart.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import \
 *     bench/scale-out-report.ts bench/results/<run>.json
 *
 * Prints the section (bench/report.ts renders the same one when a run has
 * scale-out results) and writes its charts (scaleOutCharts):
 * docs/benchmarks-scale-out.svg and, when the run had the long churn run,
 * docs/benchmarks-scale-out-churn.svg.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { ScaleOutResult } from './scale-out.js';
import type { ChurnRunResult } from './scale-out-churn.js';
import { lineChart } from './svg.js';

type Point = ScaleOutResult['points'][number];

const fix = (v: number | null | undefined, d = 2): string => (v === null || v === undefined ? '–' : v.toFixed(d));

/** A CPU figure over idle; below zero it is the noise of 10 ms ticks, said so. */
const overIdle = (v: number | null, d: number): string => (v !== null && v < 0 ? `≈ 0 (${fix(v, d)})` : fix(v, d));

const row = (label: string, f: (p: Point) => string, points: Point[]): string => `| ${label} | ${points.map(f).join(' | ')} |`;

export function scaleOutTable(r: ScaleOutResult): string {
  const ps = r.points;
  const nodes = (p: Point): number => p.simNodes + 3;
  const perEvent = (p: Point, phase: 'ownNetworks' | 'sharedNetwork'): string => {
    const ph = p.phases[phase];
    return ph.events > 0 && ph.h1ZkRequests !== null ? fix(ph.h1ZkRequests / ph.events, 2) : '–';
  };
  const conv = (p: Point, k: 'shared' | 'unshared' | 'sharedUnderChurn'): string => {
    const c = p.convergence[k];
    return `${fix(c.afterIssue.p50, 0)} / ${fix(c.afterIssue.p99, 0)} (${fix(c.afterReturn.p99, 0)})`;
  };
  return [
    `| | ${ps.map((p) => `N = ${p.simNodes} (${nodes(p)} nodes)`).join(' | ')} |`,
    `|---|${ps.map(() => '---').join('|')}|`,
    row('h1 CPU s / 1,000 events, networks it has not joined (over idle)', (p) => overIdle(p.phases.ownNetworks.h1CpuPer1000OverIdle, 3), ps),
    row('h1 CPU s / 1,000 events, the network it shares (over idle)', (p) => fix(p.phases.sharedNetwork.h1CpuPer1000OverIdle, 2), ps),
    row('→ not joined / joined', (p) => {
      const a = p.phases.ownNetworks.h1CpuPer1000OverIdle;
      const b = p.phases.sharedNetwork.h1CpuPer1000OverIdle;
      return a !== null && b ? `${fix((100 * Math.max(a, 0)) / b, 1)} %` : '–';
    }, ps),
    row('h1 ZooKeeper requests per event: not joined / joined', (p) => `${perEvent(p, 'ownNetworks')} / ${perEvent(p, 'sharedNetwork')}`, ps),
    row('h1 RSS start → end (MiB)', (p) => `${fix(p.h1.rssMiB.start, 1)} → ${fix(p.h1.rssMiB.end, 1)}`, ps),
    row('watches held by h1', (p) => String(p.h1.zkWatches ?? '–'), ps),
    row('ZooKeeper requests/s: idle / own churn / shared churn', (p) => ['idle', 'ownNetworks', 'sharedNetwork'].map((k) => fix(p.phases[k as keyof Point['phases']].zkRequestsPerS, 0)).join(' / '), ps),
    row('ZooKeeper max outstanding requests (0.5 s samples)', (p) => String(Math.max(...Object.values(p.phases).map((ph) => ph.zkMaxOutstanding ?? 0))), ps),
    row('ZooKeeper watches / znodes / data (KB)', (p) => `${p.zk.watches} / ${p.zk.znodes} / ${fix(p.zk.dataBytes / 1000, 1)}`, ps),
    row('sim attach p50 / p99 (ms), shared-network churn', (p) => `${fix(p.phases.sharedNetwork.churn?.attachMs.p50, 0)} / ${fix(p.phases.sharedNetwork.churn?.attachMs.p99, 0)}`, ps),
    row('sim lifecycles done / skipped, both churn phases', (p) => {
      const c = [p.phases.ownNetworks.churn, p.phases.sharedNetwork.churn];
      return `${c.reduce((n, x) => n + (x?.lifecycles ?? 0), 0)} / ${c.reduce((n, x) => n + (x?.skipped ?? 0), 0)}`;
    }, ps),
    row('sim processes × sims; group networks (on every engine)', (p) => `${p.simProcs ?? 1} × ${p.simProcs ? Math.ceil(p.simNodes / p.simProcs) : p.simNodes}; ${p.groupNetworks ?? '–'}`, ps),
    row('sim CPU s per process, shared-network churn', (p) => (p.phases.sharedNetwork.churn?.perProc ?? []).map((x) => fix(x.simCpuS, 1)).join(', ') || fix(p.phases.sharedNetwork.churn?.simCpuS, 1), ps),
    row('sims set up / group networks on every engine (s)', (p) => `${fix(p.simSetupS, 0)} / ${fix(p.replicatedS, 0)}`, ps),
    row('`docker run` issued → first reply p50 / p99 (after return p99), shared network', (p) => conv(p, 'shared'), ps),
    row('the same, unshared network', (p) => conv(p, 'unshared'), ps),
    row('the same, shared network while the sims churn on it', (p) => conv(p, 'sharedUnderChurn'), ps),
  ].join('\n');
}

export const SCALE_OUT_SVG = 'docs/benchmarks-scale-out.svg';
export const SCALE_OUT_CHURN_SVG = 'docs/benchmarks-scale-out-churn.svg';

/** The long churn run's table (one column per real node for RSS). */
export function churnRunTable(c: ChurnRunResult): string {
  const ch = c.churn;
  const conv = c.convergence;
  return [
    '| | |',
    '|---|---|',
    `| simulated nodes; lifecycles/s asked; minutes | ${c.simNodes}; ${c.rate}; ${c.minutes} |`,
    `| lifecycles done / skipped / errors | ${ch.lifecycles} / ${ch.skipped} / ${ch.errors}${ch.firstError ? ` (first: ${ch.firstError})` : ''} |`,
    `| achieved starts/s | ${fix(ch.lifecycles / (c.minutes * 60), 1)} |`,
    `| sim attach p50 / p99 (ms) | ${fix(ch.attachMs.p50, 0)} / ${fix(ch.attachMs.p99, 0)} |`,
    `| sim CPU s per process | ${ch.perProc.map((x) => fix(x.simCpuS, 1)).join(', ')} |`,
    `| h1 CPU s / 1,000 events | ${fix(c.h1CpuPer1000, 2)} |`,
    `| ZooKeeper max outstanding requests (1 s samples: ${c.zk.samples}) | ${c.zk.maxOutstanding} |`,
    `| ZooKeeper requests/s; watches at the end | ${fix(c.zk.requestsPerS, 0)}; ${c.zk.watchesEnd} |`,
    `| convergence on the shared network: probes; issued → first reply p50 / p99; after return p99 (ms) | ${conv.probes}; ${fix(conv.afterIssue.p50, 0)} / ${fix(conv.afterIssue.p99, 0)}; ${fix(conv.afterReturn.p99, 0)} |`,
    ...c.rss.map((r) => `| ${r.host} plugin RSS start → end (max), MiB; slope MiB/min; grew | ${fix(r.startMiB, 1)} → ${fix(r.endMiB, 1)} (${fix(r.maxMiB, 1)}); ${fix(r.slopeMiBPerMin, 2)}; ${r.grew ? `**yes** (+${fix(r.growthMiB, 1)})` : 'no'} |`),
  ].join('\n');
}

const churnRunOf = (r: ScaleOutResult): ChurnRunResult | undefined => r.points.find((p) => p.churnRun)?.churnRun;

/** What "networks it has not joined" were in this run (results from before the sims' networks were named had none of the newer fields). */
const groupsText = (r: ScaleOutResult): string => (r.points.some((p) => p.groupNetworks !== undefined)
  ? `The sims are spread over several processes (the "sim processes" row; sim CPU per process below). "Networks it has not joined": churn on the sims' group networks \`sog<g>\` (one per ${r.options.groupSize ?? 10} sims, named, so every real engine has them, as it has every named network, but h1 runs no container on them).`
  : '"Networks it has not joined": churn on the sims\' own networks (this run\'s sims left them unnamed, so they were never replicated to the real nodes; docs/architecture.md, "Capacity").');

/** The section of docs/benchmarks.md: what was run, the table, the chart. */
export function scaleOutSection(r: ScaleOutResult): string {
  const o = r.options;
  return [
    '## Scale-out: simulated nodes beside the three real ones',
    '',
    `\`npm run bench -- --only scale-out\` (bench/scale-out.ts, bench/sim/): at each N a fresh lab (three real nodes, a 3-server ZooKeeper ensemble) and N simulated nodes, each its own ZooKeeper session running the plugin's store, membership, IPAM and driver code on an in-memory kernel. ${o.churnRate} container lifecycles/s (attach, ${o.holdMs} ms alive, detach: two endpoint events), ${o.churnSeconds} s per phase, ${o.probes} probes per convergence figure. ${groupsText(r)} "The network it shares": \`soshared\`, which h1 (a container runs there through the phases) and ${o.sharedSims !== undefined ? `up to ${o.sharedSims} sims` : 'every sim'} join, and where h1 starts the probes' containers. Convergence: \`docker run\` on h1 issued → first reply to h2's 2 ms ping stream, p50 / p99 in ms, and in brackets the p99 after \`docker run\` returned (0: the reply came first).`,
    '',
    scaleOutTable(r),
    '',
    `![h1's CPU per 1,000 endpoint events against N](${SCALE_OUT_SVG.replace('docs/', '')})`,
    '',
    ...churnRunSection(r),
    ...(r.totalS ? [`The scale-out section took ${fix(r.totalS / 60, 1)} min (${r.points.map((p) => `N = ${p.simNodes}: ${fix((p.wallS ?? 0) / 60, 1)}`).join(', ')}).`, ''] : []),
  ].join('\n');
}

function churnRunSection(r: ScaleOutResult): string[] {
  const c = churnRunOf(r);
  if (!c) return [];
  return [
    `### Churn run: ${c.rate} container starts/s for ${c.minutes} min at N = ${c.simNodes}`,
    '',
    `The simulated nodes on \`soshared\` alternate between it and their group network (one the real engines have, with none of their containers), the others churn on their group network; the real nodes' plugin RSS sampled every 10 s, ZooKeeper's outstanding requests (\`mntr\`, summed over the 3 servers) every second, and convergence probes on \`soshared\` (a container started on h1, the first reply to h2) back to back throughout. "Grew": the least-squares line through the RSS samples rises more than 5 % of the start over the run.`,
    '',
    churnRunTable(c),
    '',
    `![the real nodes' plugin RSS during the churn run](${SCALE_OUT_CHURN_SVG.replace('docs/', '')})`,
    '',
  ];
}

export function scaleOutSvg(r: ScaleOutResult): string {
  const xs = r.points.map((p) => p.simNodes);
  return lineChart({
    title: 'h1 plugin CPU s per 1,000 endpoint events as simulated nodes are added',
    xLabel: 'simulated nodes (N)',
    yLabel: 'CPU s / 1,000 events',
    xs,
    series: [
      { name: 'network h1 has', ys: r.points.map((p) => p.phases.sharedNetwork.h1CpuPer1000OverIdle ?? 0) },
      { name: 'networks h1 has not', ys: r.points.map((p) => p.phases.ownNetworks.h1CpuPer1000OverIdle ?? 0) },
    ],
  });
}

export function scaleOutChurnSvg(c: ChurnRunResult): string {
  return lineChart({
    title: `Plugin RSS (MiB) of the real nodes while ${c.simNodes} simulated nodes churn ${c.rate} containers/s`,
    xLabel: 'minutes',
    yLabel: 'MiB',
    xs: c.rss[0]?.samples.map(([m]) => m) ?? [],
    series: c.rss.map((h) => ({ name: h.host, ys: h.samples.map(([, v]) => v) })),
  });
}

/** Every chart of the section: [path, svg]. */
export function scaleOutCharts(r: ScaleOutResult): Array<[string, string]> {
  const c = churnRunOf(r);
  return [[SCALE_OUT_SVG, scaleOutSvg(r)], ...(c ? [[SCALE_OUT_CHURN_SVG, scaleOutChurnSvg(c)] as [string, string]] : [])];
}

const main = async (): Promise<void> => {
  const file = process.argv[2];
  if (!file) throw new Error('usage: scale-out-report.ts bench/results/<run>.json');
  const r = (JSON.parse(await readFile(file, 'utf8')) as { scaleOut?: ScaleOutResult }).scaleOut;
  if (!r) throw new Error(`${file} has no scale-out section (run: npm run bench -- --only scale-out)`);
  for (const [path, svg] of scaleOutCharts(r)) await writeFile(path, svg);
  process.stdout.write(`${scaleOutSection(r)}\n`);
};

if (import.meta.url === `file://${process.argv[1]}`) await main();

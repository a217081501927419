/**
 * The scale-out section of docs/benchmarks.md from a results file that has
 * one (`npm run bench -- --only scale-out`): a table of the real node's and
 * ZooKeeper's cost against the number of simulated nodes, and a chart.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import \
 *     bench/scale-out-report.ts bench/results/<run>.json
 *
 * Prints the section (bench/report.ts renders the same one when a run has
 * scale-out results) and writes docs/benchmarks-scale-out.svg.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { ScaleOutResult } from './scale-out.js';
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
    row('ZooKeeper max outstanding requests', (p) => String(Math.max(...Object.values(p.phases).map((ph) => ph.zkMaxOutstanding ?? 0))), ps),
    row('ZooKeeper watches / znodes / data (KB)', (p) => `${p.zk.watches} / ${p.zk.znodes} / ${fix(p.zk.dataBytes / 1000, 1)}`, ps),
    row('sim attach p50 / p99 (ms), shared-network churn', (p) => `${fix(p.phases.sharedNetwork.churn?.attachMs.p50, 0)} / ${fix(p.phases.sharedNetwork.churn?.attachMs.p99, 0)}`, ps),
    row('`docker run` issued → first reply p50 / p99 (after return p99), shared network', (p) => conv(p, 'shared'), ps),
    row('the same, unshared network', (p) => conv(p, 'unshared'), ps),
    row('the same, shared network while the sims churn on it', (p) => conv(p, 'sharedUnderChurn'), ps),
  ].join('\n');
}

export const SCALE_OUT_SVG = 'docs/benchmarks-scale-out.svg';

/** The section of docs/benchmarks.md: what was run, the table, the chart. */
export function scaleOutSection(r: ScaleOutResult): string {
  const o = r.options;
  return [
    '## Scale-out: simulated nodes beside the three real ones',
    '',
    `\`npm run bench -- --only scale-out\` (bench/scale-out.ts, bench/sim/): at each N a fresh lab (three real nodes, a 3-server ZooKeeper ensemble) and N simulated nodes, each its own ZooKeeper session running the plugin's store, membership, IPAM and driver code on an in-memory kernel. ${o.churnRate} container lifecycles/s (attach, ${o.holdMs} ms alive, detach: two endpoint events), ${o.churnSeconds} s per phase, ${o.probes} probes per convergence figure. "Networks it has not joined": churn on the sims' own networks (unnamed, so never replicated to the real nodes; docs/architecture.md, "Capacity"); "the network it shares": \`soshared\`, which h1 and every sim have. Convergence: \`docker run\` on h1 issued → first reply to h2's 2 ms ping stream, p50 / p99 in ms, and in brackets the p99 after \`docker run\` returned (0: the reply came first).`,
    '',
    scaleOutTable(r),
    '',
    `![h1's CPU per 1,000 endpoint events against N](${SCALE_OUT_SVG.replace('docs/', '')})`,
    '',
  ].join('\n');
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

const main = async (): Promise<void> => {
  const file = process.argv[2];
  if (!file) throw new Error('usage: scale-out-report.ts bench/results/<run>.json');
  const r = (JSON.parse(await readFile(file, 'utf8')) as { scaleOut?: ScaleOutResult }).scaleOut;
  if (!r) throw new Error(`${file} has no scale-out section (run: npm run bench -- --only scale-out)`);
  await writeFile(SCALE_OUT_SVG, scaleOutSvg(r));
  process.stdout.write(`${scaleOutSection(r)}\n`);
};

if (import.meta.url === `file://${process.argv[1]}`) await main();

/**
 * npm run bench — tsoverlay against Docker's swarm overlay and the bare
 * underlay, in one run on one lab (see docs/benchmarks.md).
 *
 *   npm run bench                          everything (about 25 minutes on 2 cores)
 *   npm run bench -- --only dataplane,control --quick
 *
 * Options:
 *   --only LIST    sections: dataplane, control, scale (default all three), scale-out
 *                  (simulated nodes, issue 17; only when named: it takes a lab per N)
 *   --quick        fewer repetitions, smaller scale (a smoke run; not for the report)
 *   --mtus LIST    underlay MTUs for the data plane (default 1500,9000)
 *   --no-report    write the JSON only
 *   --networks N, --endpoints M   scale section size (default 200 and 5000)
 *   --sim-nodes LIST   scale-out: simulated node counts (default 10,30,100,300; --quick 10,30)
 *   --churn-rate R     scale-out: container lifecycles per second cluster-wide (default 50; --quick 20)
 *   --churn-seconds S  scale-out: length of each measured phase (default 20; --quick 10)
 *   --churn-minutes M  scale-out: the long churn run at the largest N (default 5; --quick 0: none)
 *   --sim-procs P      scale-out: processes for the simulated nodes (default one per 100)
 *   --group-size G     scale-out: simulated nodes per group network (default 10)
 *   --shared-sims K    scale-out: at most K simulated nodes on the shared network (default 100)
 *   --base FILE    start from an earlier results file: sections not run now
 *                  keep its numbers (the report says which run each came from)
 * Writes bench/results/<date>.json and, unless --no-report, docs/benchmarks.md
 * and docs/benchmarks.svg from it. Needs root, the tools of
 * scripts/install-deps.sh and a built plugin (npm run build).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runControl, type ControlResult } from './control.js';
import { runDataplane, type DataplaneResult } from './dataplane.js';
import { createBenchLab, destroyBenchLab, type BenchLab } from './lab.js';
import { machineFacts, type MachineFacts } from './machine.js';
import { progress } from './progress.js';
import { writeReport } from './report.js';
import { runScale, type ScaleResult } from './scale.js';
import { runScaleOut, type ScaleOutResult } from './scale-out.js';
import { SETTINGS } from '../src/config.js';
import type { NetworkMode } from '../src/model.js';

export interface BenchResults {
  date: string;
  command: string;
  quick: boolean;
  machine: MachineFacts;
  durationS: number;
  dataplane: DataplaneResult[];
  control?: ControlResult;
  scale?: ScaleResult;
  scaleOut?: ScaleOutResult;
  /** Sections taken from an earlier run (--base). */
  basedOn?: { file: string; command: string; date: string; sections: string[] };
}

const SECTIONS = ['dataplane', 'control', 'scale'] as const;
/** Sections run only when --only names them. */
const EXTRA_SECTIONS = ['scale-out'] as const;

/** The control plane and scale sections use networks in the plugins' default layout. */
const DEFAULT_LAYOUT = SETTINGS.defaultMode.default as NetworkMode;

async function withLab<T>(opts: Parameters<typeof createBenchLab>[0], fn: (bl: BenchLab) => Promise<T>): Promise<T> {
  const bl = await createBenchLab(opts);
  let failed = true;
  try {
    const r = await fn(bl);
    failed = false;
    return r;
  } finally {
    progress('lab: tearing down');
    await destroyBenchLab(bl, failed);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      mtus: { type: 'string', default: '1500,9000' },
      'no-report': { type: 'boolean', default: false },
      networks: { type: 'string' },
      endpoints: { type: 'string' },
      base: { type: 'string' },
      'sim-nodes': { type: 'string' },
      'churn-rate': { type: 'string' },
      'churn-seconds': { type: 'string' },
      'churn-minutes': { type: 'string' },
      'sim-procs': { type: 'string' },
      'group-size': { type: 'string' },
      'shared-sims': { type: 'string' },
    },
  });
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (network namespaces, dockerd)');
  const only = new Set(values.only ? values.only.split(',') : SECTIONS);
  const known: readonly string[] = [...SECTIONS, ...EXTRA_SECTIONS];
  for (const s of only) if (!known.includes(s)) throw new Error(`unknown section ${s}; use ${known.join(', ')}`);
  const mtus = values.mtus.split(',').map(Number);
  const quick = values.quick;
  const started = Date.now();
  const base = values.base ? (JSON.parse(await readFile(values.base, 'utf8')) as BenchResults) : undefined;
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const results: BenchResults = {
    date: new Date().toISOString(),
    command,
    quick,
    machine: await machineFacts(),
    durationS: 0,
    dataplane: [],
    ...(base && !only.has('control') && base.control ? { control: base.control } : {}),
    ...(base && !only.has('scale') && base.scale ? { scale: base.scale } : {}),
    ...(base ? { basedOn: { file: values.base!, command: base.command, date: base.date, sections: SECTIONS.filter((s) => !only.has(s)) } } : {}),
  };
  if (base && !only.has('dataplane')) results.dataplane = base.dataplane;
  for (const mtu of only.has('dataplane') || only.has('control') ? mtus : []) {
    // the control plane is measured once, in the first (1500) lab
    const control = only.has('control') && mtu === mtus[0];
    if (!only.has('dataplane') && !control) continue;
    await withLab({ mtu, swarm: true }, async (bl) => {
      if (only.has('dataplane')) {
        results.dataplane.push(await runDataplane(bl, quick
          ? { reps: 1, iperfSeconds: 2, rrSeconds: 1, pings: 500 }
          : { reps: 7, iperfSeconds: 5, rrSeconds: 3, pings: 3000 }));
      }
      if (control) results.control = { ...(await runControl(bl, quick ? { runs: 4, probes: 5, creates: 3 } : { runs: 12, probes: 24, creates: 10 })), layout: DEFAULT_LAYOUT };
    });
  }
  if (only.has('scale')) {
    const size = quick ? { networks: 20, endpoints: 300, step: 100 } : { networks: 200, endpoints: 5000, step: 500 };
    if (values.networks) size.networks = Number(values.networks);
    if (values.endpoints) size.endpoints = Number(values.endpoints);
    size.step = Math.max(1, Math.round(size.endpoints / 10));
    results.scale = { ...(await withLab({ mtu: 1500, swarm: false }, (bl) => runScale(bl, size))), layout: DEFAULT_LAYOUT };
  }
  if (only.has('scale-out')) {
    results.scaleOut = await runScaleOut({
      simNodes: (values['sim-nodes'] ?? (quick ? '10,30' : '10,30,100,300')).split(',').map(Number),
      churnRate: Number(values['churn-rate'] ?? (quick ? 20 : 50)),
      churnSeconds: Number(values['churn-seconds'] ?? (quick ? 10 : 20)),
      holdMs: 1000,
      probes: quick ? 5 : 10,
      churnMinutes: Number(values['churn-minutes'] ?? (quick ? 0 : 5)),
      ...(values['sim-procs'] ? { simProcs: Number(values['sim-procs']) } : {}),
      ...(values['group-size'] ? { groupSize: Number(values['group-size']) } : {}),
      sharedSims: Number(values['shared-sims'] ?? 100),
    });
  }
  results.durationS = Math.round((Date.now() - started) / 1000);
  await mkdir('bench/results', { recursive: true });
  const file = join('bench/results', `${results.date.slice(0, 19).replace(/:/g, '-')}${quick ? '-quick' : ''}.json`);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  progress(`results: ${file}`);
  if (!values['no-report']) {
    const written = await writeReport(results, file);
    progress(`report: ${written.join(', ')}`);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  },
);

/**
 * The scale-out section of docs/benchmarks.md (bench/scale-out-report.ts)
 * from two stored results: the first cut (sims' networks unnamed, no churn
 * run) and a run with named group networks, several sim processes and the
 * churn run; each says what its run did and draws the charts it has data for.
 */
import { readFile } from 'node:fs/promises';
import t from 'tap';
import type { ScaleOutResult } from '../../bench/scale-out.js';
import { SCALE_OUT_CHURN_SVG, SCALE_OUT_SVG, scaleOutCharts, scaleOutSection } from '../../bench/scale-out-report.js';

const load = async (file: string): Promise<ScaleOutResult> =>
  (JSON.parse(await readFile(new URL(`../../bench/results/${file}`, import.meta.url), 'utf8')) as { scaleOut: ScaleOutResult }).scaleOut;

t.test('first cut: unnamed networks, one chart', async (t) => {
  const r = await load('2026-12-06T04-10-33-quick.json');
  const md = scaleOutSection(r);
  t.match(md, /left them unnamed/);
  t.notMatch(md, /Churn run/);
  t.same(scaleOutCharts(r).map(([p]) => p), [SCALE_OUT_SVG]);
});

t.test('named group networks, sim processes, churn run', async (t) => {
  const r = await load('2026-12-06T07-02-46-quick.json');
  const md = scaleOutSection(r);
  t.match(md, /group networks `sog<g>`/);
  t.match(md, /\| sim processes × sims; group networks \(on every engine\) \| 1 × 10; 1 \| 3 × 100; 30 \|/);
  t.match(md, /### Churn run: 20 container starts\/s for 1 min at N = 300/);
  t.match(md, /\| h1 plugin RSS start → end \(max\), MiB; slope MiB\/min; grew \| [\d.]+ → [\d.]+ \([\d.]+\); [-\d.]+; (no|\*\*yes\*\*)/);
  t.match(md, /The scale-out section took 7\.6 min/);
  const charts = scaleOutCharts(r);
  t.same(charts.map(([p]) => p), [SCALE_OUT_SVG, SCALE_OUT_CHURN_SVG]);
  t.match(charts[1]![1], /<svg[^>]*>/);
  t.match(charts[1]![1], /h3/, 'a line per real node');
});

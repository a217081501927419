#!/usr/bin/env -S node --max-semi-space-size=1 --max-old-space-size=96
// usage: TSOVERLAY_CLI=bench/tools/profile-plugin.mjs npm run bench -- --only scale
// Runs dist/cli.js (same node flags as its shebang: the lab reads them from
// this file's first line) and, at exit, writes into $PROF_DIR (default
// /tmp/tsoverlay-prof): the GC pauses (gc-<pid>-<start>.json: [epoch ms,
// ms, kind]) and, with PROF_CPU=1, a CPU profile sampled every 500 µs
// (plugin-<pid>-<start>.cpuprofile, with `wallStart` in epoch ms added so
// that profile-windows.mjs can cut it by time). The profiler slows the
// plugin down: compare windows of one profiled run, not a profiled run with
// a plain one.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';

const dir = process.env.PROF_DIR ?? '/tmp/tsoverlay-prof';
mkdirSync(dir, { recursive: true, mode: 0o700 });
const wallStart = Date.now();
const gcs = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push([Math.round(performance.timeOrigin + e.startTime), e.duration, e.detail?.kind]);
}).observe({ entryTypes: ['gc'] });
let session;
if (process.env.PROF_CPU === '1') {
  session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
}
process.on('exit', () => {
  const tag = `${process.pid}-${wallStart}`;
  writeFileSync(join(dir, `gc-${tag}.json`), JSON.stringify(gcs), { mode: 0o600 });
  // an in-process session answers synchronously: the profile is written before exit
  session?.post('Profiler.stop', (err, res) => {
    if (!err) writeFileSync(join(dir, `plugin-${tag}.cpuprofile`), JSON.stringify({ wallStart, ...res.profile }), { mode: 0o600 });
  });
});
await import(new URL('../../dist/cli.js', import.meta.url).href);

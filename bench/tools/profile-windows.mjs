// usage: node bench/tools/profile-windows.mjs FILE FROM_MS TO_MS [TOP]
// FILE: a plugin-*.cpuprofile or gc-*.json of profile-plugin.mjs; FROM/TO:
// epoch milliseconds (the bench's progress lines give the steps' times).
// A CPU profile: busy share and the top functions by self and inclusive
// samples within the window. GC pauses: count, total and longest per kind.
import { readFileSync } from 'node:fs';

const [file, fromArg, toArg, topArg] = process.argv.slice(2);
if (!file || !fromArg || !toArg) {
  console.error('usage: node profile-windows.mjs FILE FROM_MS TO_MS [TOP]');
  process.exit(2);
}
const from = Number(fromArg);
const to = Number(toArg);
const top = Number(topArg ?? 25);
const data = JSON.parse(readFileSync(file, 'utf8'));

if (Array.isArray(data)) {
  const kinds = { 1: 'scavenge', 2: 'mark-compact', 4: 'incremental', 8: 'weak callbacks' };
  const by = new Map();
  for (const [at, ms, kind] of data) {
    if (at < from || at > to) continue;
    const k = kinds[kind] ?? String(kind);
    const s = by.get(k) ?? { n: 0, ms: 0, max: 0 };
    s.n++;
    s.ms += ms;
    s.max = Math.max(s.max, ms);
    by.set(k, s);
  }
  const span = (to - from) / 1000;
  for (const [k, s] of by) console.log(`${k.padEnd(15)} ${String(s.n).padStart(6)}  ${s.ms.toFixed(0).padStart(6)} ms (${(s.ms / span / 10).toFixed(1)} % of the window)  longest ${s.max.toFixed(1)} ms`);
} else {
  const byId = new Map(data.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of data.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (n) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
  const self = new Map();
  const inclusive = new Map();
  let t = data.wallStart;
  let samples = 0;
  let idle = 0;
  for (let i = 0; i < data.samples.length; i++) {
    t += data.timeDeltas[i] / 1000;
    if (t < from || t > to) continue;
    samples++;
    const node = byId.get(data.samples[i]);
    if (node.callFrame.functionName === '(idle)') {
      idle++;
      continue;
    }
    self.set(name(node), (self.get(name(node)) ?? 0) + 1);
    const seen = new Set();
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const k = name(byId.get(id));
      if (!seen.has(k)) inclusive.set(k, (inclusive.get(k) ?? 0) + 1);
      seen.add(k);
    }
  }
  const busy = samples - idle;
  console.log(`samples ${samples}, busy ${busy} (${((100 * busy) / Math.max(samples, 1)).toFixed(1)} %)`);
  for (const [title, m] of [['self', self], ['inclusive', inclusive]]) {
    console.log(`-- ${title} (% of busy, samples)`);
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * v) / busy).toFixed(1).padStart(5)} % ${String(v).padStart(7)}  ${k}`);
  }
}

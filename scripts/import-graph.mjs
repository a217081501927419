#!/usr/bin/env node
// The import graph of src/ (static `import`/`export … from` of relative
// modules, type-only imports included): prints every cycle, the files over
// the size budget, and exits 1 if there is a cycle. Used by
// test/component/import-graph.test.ts and by hand:
//   node scripts/import-graph.mjs [--sizes]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

const walk = (dir) =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });

export const importGraph = () => {
  const files = walk(src).filter((f) => !f.endsWith('.test.ts'));
  const graph = new Map();
  const re = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/g;
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const deps = new Set();
    for (const m of text.matchAll(re)) deps.add(resolve(dirname(f), m[1].replace(/\.js$/, '.ts')));
    graph.set(f, [...deps].filter((d) => graph.has(d) || files.includes(d)));
  }
  return graph;
};

/** Every elementary cycle found by a DFS (one per back edge), as relative paths. */
export const cycles = (graph) => {
  const out = [];
  const state = new Map(); // 1 on stack, 2 done
  const stack = [];
  const visit = (n) => {
    state.set(n, 1);
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === 1) out.push(stack.slice(stack.indexOf(d)).concat(d).map((p) => relative(root, p)));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return out;
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const g = importGraph();
  const found = cycles(g);
  for (const c of found) console.log(`cycle: ${c.join(' -> ')}`);
  if (process.argv.includes('--sizes')) {
    const sizes = [...g.keys()].map((f) => [readFileSync(f, 'utf8').split('\n').length - 1, relative(root, f)]);
    for (const [n, f] of sizes.sort((a, b) => b[0] - a[0]).slice(0, 15)) console.log(`${String(n).padStart(5)} ${f}`);
  }
  console.log(`${g.size} modules, ${found.length} cycle(s)`);
  process.exit(found.length ? 1 : 0);
}

/**
 * The scale-out benchmark's sims spread over several processes
 * (bench/sim/sim-cluster.ts, sim-fleet.ts) and the figures put together
 * from them: here two SimClusters on one in-memory store stand for two
 * processes; the group networks are created once, named, and joined by
 * the sims of both; churn results merge with exact percentiles.
 */
import t from 'tap';
import { groupCount, groupName, mergeChurn, SimCluster, simName, type ChurnResult } from '../../bench/sim/sim-cluster.js';
import { defaultSimProcs, splitRanges } from '../../bench/sim/sim-fleet.js';
import { rssSeries, slope } from '../../bench/scale-out-churn.js';
import { MemoryKvStore } from '../../src/store/memory-kv-store.js';
import { ClusterState } from '../../src/store/cluster-state.js';

t.test('index ranges: disjoint, contiguous, as even as possible', async (t) => {
  t.same(splitRanges(300, 3), [{ first: 0, nodes: 100 }, { first: 100, nodes: 100 }, { first: 200, nodes: 100 }]);
  t.same(splitRanges(10, 3), [{ first: 0, nodes: 4 }, { first: 4, nodes: 3 }, { first: 7, nodes: 3 }]);
  t.same(splitRanges(2, 5), [{ first: 0, nodes: 1 }, { first: 1, nodes: 1 }], 'never an empty process');
  t.same([10, 30, 100, 101, 300].map(defaultSimProcs), [1, 1, 1, 2, 3]);
  t.same([10, 30, 100, 300].map((n) => groupCount(n)), [1, 3, 10, 30], 'at most 30 group networks at N = 300');
});

t.test('two processes\' sims: each group network created once, named, joined by its sims', async (t) => {
  const kv = new MemoryKvStore();
  const opts = { total: 6, groupSize: 2, follow: false, openStore: () => Promise.resolve(kv), shared: '10.99.0.0/16' };
  const a = await SimCluster.register({ ...opts, first: 0, nodes: 3 });
  const b = await SimCluster.register({ ...opts, first: 3, nodes: 3 });
  t.same([await a.createGroups(), await b.createGroups()], [3, 0], 'sims 0..2 found the 3 groups');
  await Promise.all([a.joinNetworks(), b.joinNetworks()]);
  const state = new ClusterState(kv);
  const nets = await state.listNetworks();
  const groups = nets.filter((n) => n.name?.startsWith('sog')).sort((x, y) => (x.name! < y.name! ? -1 : 1));
  t.same(groups.map((n) => n.name), [0, 1, 2].map(groupName), 'named like a network an engine created');
  t.ok(groups.every((n) => n.driver === 'tsoverlay'), 'with its driver');
  // sim i is in group i % 3
  t.same(groups.map((n) => Object.values(n.aliases).sort()), [[0, 3], [1, 4], [2, 5]].map((g) => g.map(simName)));
  const shared = nets.find((n) => n.ipv4[0]?.pool === '10.99.0.0/16');
  t.equal(Object.keys(shared?.aliases ?? {}).length, 6, 'every sim on the shared network');

  const [ra, rb] = await Promise.all([a.churn('mixed', 20, 0.5, { holdMs: 10 }), b.churn('mixed', 20, 0.5, { holdMs: 10 })]);
  t.same([ra.errors, rb.errors], [0, 0], `no errors (${ra.firstError ?? rb.firstError ?? ''})`);
  const m = mergeChurn([ra, rb]);
  t.equal(m.lifecycles, ra.lifecycles + rb.lifecycles);
  t.equal(m.events, 2 * m.lifecycles);
  t.equal(m.rate, 40);
  t.equal(m.samples, undefined, 'samples not kept in the merged result');
  t.equal((await state.listEndpoints(groups[0]!.id)).length, 0, 'every container gone');
  await a.stop();
  await b.stop();
});

t.test('merged percentiles are over every sample, not averaged', async (t) => {
  const part = (attach: number[]): ChurnResult => ({
    target: 'own', rate: 1, seconds: 1, events: 2 * attach.length, lifecycles: attach.length, skipped: 1, errors: 0,
    attachMs: { p50: 0, p99: 0 }, detachMs: { p50: 0, p99: 0 }, wallS: attach.length, samples: { attach, detach: attach },
  });
  const m = mergeChurn([part(Array.from({ length: 99 }, () => 1)), part([1000])]);
  t.same(m.attachMs, { p50: 1, p99: 1 }, '99 of 100 samples at 1 ms');
  const n = mergeChurn([part(Array.from({ length: 98 }, () => 1)), part([1000, 1000])]);
  t.equal(n.attachMs.p99, 1000, 'two slow of 100: the p99 is slow');
  t.same({ skipped: n.skipped, wallS: n.wallS }, { skipped: 2, wallS: 98 });
});

t.test('RSS growth: the least-squares slope over the run', async (t) => {
  t.equal(slope([[0, 1], [1, 3], [2, 5]]), 2);
  t.equal(slope([[0, 1]]), 0);
  const flat = rssSeries('h1', [[0, 100], [1, 104], [2, 99], [3, 101], [5, 100]]);
  t.equal(flat.grew, false, `noise is no growth (${flat.growthMiB} MiB)`);
  t.same([flat.startMiB, flat.endMiB, flat.maxMiB], [100, 100, 104]);
  const leak = rssSeries('h2', [[0, 100], [1, 102], [2, 104], [3, 106], [5, 110]]);
  t.equal(leak.grew, true);
  t.equal(leak.slopeMiBPerMin, 2);
});

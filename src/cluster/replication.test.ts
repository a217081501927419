/** Cross-node replication: what is watched, and how a store change reaches this node's loops. */
import t from 'tap';
import { silentLog } from '../log.js';
import { asNetworkId } from '../model.js';
import { ClusterState } from '../store/cluster-state.js';
import { MemoryKvStore } from '../store/memory-kv-store.js';
import { Replication, watchedPaths } from './replication.js';
import { type StoreChange, networkChange } from './store-change.js';
import type { Replicator } from './replicator.js';

const here = { id: asNetworkId('tsoverlay-local:10.20.0.0_24'), aliases: { e1: 'A', e2: 'B' } };
const elsewhere = { id: asNetworkId('tsoverlay-local:10.30.0.0_24'), aliases: { e3: 'B' } };
/** A has an endpoint in `here` only (a test may add one). */
const taking = new Set<string>([here.id]);
const local = { takesPart: (key: string) => taking.has(key) };

t.test('watched: nodes, networks, every network record; endpoints and names only of networks this node takes part in', async (t) => {
  t.same(watchedPaths([], 'A', local), ['/nodes', '/networks']);
  t.same(watchedPaths([here, elsewhere], 'A', local), [
    '/nodes',
    '/networks',
    '/networks/tsoverlay-local:10.20.0.0_24',
    '/endpoints/tsoverlay-local:10.20.0.0_24',
    '/dnsnames/tsoverlay-local:10.20.0.0_24',
    '/networks/tsoverlay-local:10.30.0.0_24',
  ]);
  // a network this node's engine has (an alias: replicated) but no endpoint of this node: its record only
  const replicated = { id: asNetworkId('tsoverlay-local:10.40.0.0_24'), aliases: { e4: 'A', e5: 'B' } };
  t.same(watchedPaths([replicated], 'A', local), ['/nodes', '/networks', '/networks/tsoverlay-local:10.40.0.0_24'], 'alias without endpoint: the record alone');
});

const setup = () => {
  const kv = new MemoryKvStore();
  const replication = new Replication({ state: new ClusterState(kv), node: 'A', local, intervalMs: 60_000, log: silentLog });
  const marks: string[] = [];
  const changes: StoreChange[] = [];
  replication.follow((c) => (marks.push('kernel'), changes.push(c)));
  replication.follow(() => marks.push('names'));
  return { kv, replication, marks, changes };
};

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

t.test('a change marks every follower; no engine, no replicator', async (t) => {
  const { replication, marks } = setup();
  t.equal(replication.replicator, undefined);
  replication.changed();
  t.same(marks, ['kernel', 'names']);
});

t.test('networks read arm the watches (and look once more); a store change then reaches the followers; stop disarms', async (t) => {
  const { kv, replication, marks } = setup();
  replication.networksRead([here]);
  t.same(marks, ['kernel', 'names'], 'newly armed watches: one more look, for a change between the read and the watch');
  marks.length = 0;
  replication.networksRead([here]);
  t.same(marks, [], 'the same paths again: nothing new armed, nothing marked');

  await kv.commit([{ type: 'create', path: '/endpoints', data: '' }]);
  await kv.commit([{ type: 'create', path: '/endpoints/tsoverlay-local:10.20.0.0_24', data: '' }]);
  await flush();
  marks.length = 0;
  await kv.commit([{ type: 'create', path: '/endpoints/tsoverlay-local:10.20.0.0_24/ep1', data: '{}' }]);
  await flush();
  t.same(marks, ['kernel', 'names'], 'an endpoint of a network here');

  marks.length = 0;
  replication.networksRead([]);
  await kv.commit([{ type: 'create', path: '/endpoints/tsoverlay-local:10.20.0.0_24/ep2', data: '{}' }]);
  await flush();
  t.same(marks, [], 'the network left: its endpoints are no longer watched');

  await replication.stop();
  await kv.commit([{ type: 'create', path: '/nodes', data: '' }]);
  await flush();
  t.same(marks, [], 'stopped: nothing watched');
});

const scopeOf = (c: StoreChange | undefined) => (c === undefined ? undefined : c.whole ? 'whole' : [...c.networks]);

t.test('a watch tells the followers what it concerns: an endpoint its network, membership the whole cluster', async (t) => {
  const { kv, replication, changes } = setup();
  t.teardown(() => replication.stop());
  await kv.commit([{ type: 'create', path: '/endpoints', data: '' }]);
  await kv.commit([{ type: 'create', path: '/endpoints/tsoverlay-local:10.20.0.0_24', data: '' }]);
  await kv.commit([{ type: 'create', path: '/nodes', data: '' }]);
  replication.networksRead([here]);
  await flush();
  changes.length = 0;
  await kv.commit([{ type: 'create', path: '/endpoints/tsoverlay-local:10.20.0.0_24/ep1', data: '{}' }]);
  await flush();
  t.same(changes.map(scopeOf), [[here.id]], 'an endpoint: its network only');
  changes.length = 0;
  await kv.commit([{ type: 'create', path: '/nodes/B', data: '{}' }]);
  await flush();
  t.same(changes.map(scopeOf), ['whole'], 'a node: the whole cluster');
});

t.test('a scoped read updates the watches of its networks only; the others stay watched', async (t) => {
  const { replication } = setup();
  t.teardown(() => replication.stop());
  const armed = () => [...(replication as unknown as { watches: { active: Map<string, unknown> } }).watches.active.keys()].sort();
  replication.networksRead([here, elsewhere]);
  t.ok(armed().includes('/endpoints/tsoverlay-local:10.20.0.0_24'));
  // a scoped pass over `elsewhere` only, which this node now has too
  replication.networksRead([{ ...elsewhere, aliases: { e3: 'B', e4: 'A' } }], new Set([elsewhere.id]));
  t.ok(armed().includes('/endpoints/tsoverlay-local:10.20.0.0_24'), 'the network outside the scope keeps its watches');
  t.notOk(armed().includes('/endpoints/tsoverlay-local:10.30.0.0_24'), 'the scoped network is on this engine, but no endpoint of this node is in it: its record alone');
  taking.add(elsewhere.id);
  t.teardown(() => taking.delete(elsewhere.id));
  replication.networksRead([{ ...elsewhere, aliases: { e3: 'B', e4: 'A' } }], new Set([elsewhere.id]));
  t.ok(armed().includes('/endpoints/tsoverlay-local:10.30.0.0_24'), 'its first endpoint here: now its endpoints are watched');
  replication.networksRead([], new Set([elsewhere.id]));
  t.notOk(armed().includes('/networks/tsoverlay-local:10.30.0.0_24'), 'a scoped network gone: its watches go');
  t.ok(armed().includes('/networks/tsoverlay-local:10.20.0.0_24'), 'the other stays');
});

t.test('the replicator runs on record changes and whole-cluster changes, not on endpoint or name changes', async (t) => {
  const { replication } = setup();
  let marked = 0;
  // the replicator's trigger, counted (a node without an engine has none)
  (replication as unknown as { replicator: Pick<Replicator, 'markDirty'> }).replicator = { markDirty: () => void marked++ };
  replication.changed(networkChange(here.id));
  t.equal(marked, 0, 'an endpoint or name change');
  replication.changed(networkChange(here.id, { record: true }));
  t.equal(marked, 1, 'a record change');
  replication.changed();
  t.equal(marked, 2, 'the whole cluster (the default)');
});

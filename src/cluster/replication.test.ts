/** Cross-node replication: what is watched, and how a store change reaches this node's loops. */
import t from 'tap';
import { silentLog } from '../log.js';
import { asNetworkId } from '../model.js';
import { ClusterState } from '../store/cluster-state.js';
import { MemoryKvStore } from '../store/memory-kv-store.js';
import { Replication, watchedPaths } from './replication.js';

const here = { id: asNetworkId('tsoverlay-local:10.20.0.0_24'), aliases: { e1: 'A', e2: 'B' } };
const elsewhere = { id: asNetworkId('tsoverlay-local:10.30.0.0_24'), aliases: { e3: 'B' } };

t.test('watched: nodes, networks, every network record; endpoints and names only of networks this node has', async (t) => {
  t.same(watchedPaths([], 'A'), ['/nodes', '/networks']);
  t.same(watchedPaths([here, elsewhere], 'A'), [
    '/nodes',
    '/networks',
    '/networks/tsoverlay-local:10.20.0.0_24',
    '/endpoints/tsoverlay-local:10.20.0.0_24',
    '/dnsnames/tsoverlay-local:10.20.0.0_24',
    '/networks/tsoverlay-local:10.30.0.0_24',
  ]);
});

const setup = () => {
  const kv = new MemoryKvStore();
  const replication = new Replication({ state: new ClusterState(kv), node: 'A', intervalMs: 60_000, log: silentLog });
  const marks: string[] = [];
  replication.follow(() => marks.push('kernel'));
  replication.follow(() => marks.push('names'));
  return { kv, replication, marks };
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

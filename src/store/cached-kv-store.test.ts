import t from 'tap';
import { CachedKvStore } from './cached-kv-store.js';
import type { KvOp, KvStore, Versioned } from './kv-store.js';
import { MemoryKvStore } from './memory-kv-store.js';
import { storeCachePolicy } from './paths.js';

/** A MemoryKvStore that counts reads, so a test sees what the cache saved. */
const counting = (inner: KvStore) => {
  const reads = { get: 0, children: 0 };
  const store: KvStore = Object.assign(Object.create(inner) as KvStore, {
    get: (p: string): Promise<Versioned | undefined> => (reads.get++, inner.get(p)),
    children: (p: string): Promise<string[]> => (reads.children++, inner.children(p)),
  });
  return { store, reads };
};

const settle = () => new Promise((r) => setTimeout(r, 10));

const setup = async () => {
  const mem = new MemoryKvStore();
  const base: KvOp[] = ['/networks', '/endpoints', '/endpoints/n1', '/pools'].map((path) => ({ type: 'create', path, data: '' }));
  await mem.commit([...base, { type: 'create', path: '/networks/n1', data: 'v1' }, { type: 'create', path: '/endpoints/n1/e1', data: 'E1' }]);
  const { store, reads } = counting(mem);
  const cache = new CachedKvStore(store, storeCachePolicy);
  return { mem, cache, reads };
};

t.test('repeated reads of cached paths hit the store once', async (t) => {
  const { cache, reads } = await setup();
  for (let i = 0; i < 3; i++) {
    t.same(await cache.children('/endpoints/n1'), ['e1']);
    t.equal((await cache.get('/endpoints/n1/e1'))?.data, 'E1');
    t.equal((await cache.get('/networks/n1'))?.data, 'v1');
  }
  t.same(reads, { get: 2, children: 1 });
});

t.test('paths outside the policy always go to the store', async (t) => {
  const { cache, reads } = await setup();
  await cache.children('/pools');
  await cache.children('/pools');
  await cache.get('/pools');
  await cache.get('/pools');
  t.same(reads, { get: 2, children: 2 });
});

t.test("another writer's change reaches the cache through the watch", async (t) => {
  const { mem, cache } = await setup();
  t.equal((await cache.get('/networks/n1'))?.data, 'v1');
  t.same(await cache.children('/endpoints/n1'), ['e1']);
  await mem.commit([
    { type: 'set', path: '/networks/n1', data: 'v2', version: -1 },
    { type: 'create', path: '/endpoints/n1/e2', data: 'E2' },
  ]);
  await settle();
  t.equal((await cache.get('/networks/n1'))?.data, 'v2', 'changed record read again');
  t.same(await cache.children('/endpoints/n1'), ['e1', 'e2'], 'changed list read again');
});

t.test('a stable record leaves the cache when its directory stops listing it', async (t) => {
  const { mem, cache, reads } = await setup();
  await cache.children('/endpoints/n1');
  await cache.get('/endpoints/n1/e1');
  await mem.commit([{ type: 'delete', path: '/endpoints/n1/e1', version: -1 }]);
  await settle();
  t.same(await cache.children('/endpoints/n1'), []);
  const before = reads.get;
  t.equal(await cache.get('/endpoints/n1/e1'), undefined, 'deleted record is not served from the cache');
  t.equal(reads.get, before + 1);
});

t.test('own commits are visible at once, before any watch fires', async (t) => {
  const { cache } = await setup();
  await cache.children('/endpoints/n1');
  await cache.get('/endpoints/n1/e1');
  await cache.commit([{ type: 'create', path: '/endpoints/n1/e3', data: 'E3' }, { type: 'set', path: '/endpoints/n1/e1', data: 'E1b', version: -1 }]);
  t.same(await cache.children('/endpoints/n1'), ['e1', 'e3']);
  t.equal((await cache.get('/endpoints/n1/e1'))?.data, 'E1b');
});

t.test('a failed commit also drops what it touched', async (t) => {
  const { cache } = await setup();
  await cache.get('/networks/n1');
  await t.rejects(cache.commit([{ type: 'set', path: '/networks/n1', data: 'x', version: 99 }]));
  t.equal((await cache.get('/networks/n1'))?.data, 'v1');
});

t.test('a read racing a change does not keep the old value', async (t) => {
  const { mem, cache } = await setup();
  const reading = cache.get('/networks/n1'); // in flight
  await cache.commit([{ type: 'set', path: '/networks/n1', data: 'v3', version: -1 }]);
  t.equal((await reading)?.data, 'v1');
  t.equal((await cache.get('/networks/n1'))?.data, 'v3');
  t.equal((await mem.get('/networks/n1'))?.data, 'v3');
});

t.test('a missing watched record is not cached and not watched', async (t) => {
  const { cache } = await setup();
  t.equal(await cache.get('/networks/nope'), undefined);
  t.equal(cache.size.watches, 0);
  t.equal(cache.size.records, 0);
});

t.test('clear() forgets everything and unsubscribes the watches', async (t) => {
  const { cache, reads } = await setup();
  await cache.get('/networks/n1');
  await cache.children('/endpoints/n1');
  t.ok(cache.size.watches > 0);
  cache.clear();
  t.same(cache.size, { records: 0, dirs: 0, watches: 0 });
  await cache.get('/networks/n1');
  t.equal(reads.get, 2);
});

t.test('stable records saved at a stop give the next process a head start; gone ones are dropped', async (t) => {
  const { mem, cache } = await setup();
  await cache.children('/endpoints/n1');
  await cache.get('/endpoints/n1/e1');
  await cache.get('/networks/n1');
  const saved = cache.stableRecords();
  t.same(saved.map(([p]) => p), ['/endpoints/n1/e1'], 'only stable records are saved');

  // the next process: e1 is still there, e9 (saved by mistake or gone since) is not
  const { store, reads } = counting(mem);
  const next = new CachedKvStore(store, storeCachePolicy);
  t.equal(next.seedStable([...saved, ['/endpoints/n1/e9', { data: 'E9', version: 0, created: 1 }], ['/networks/n1', { data: 'old', version: 0, created: 1 }]]), 2, 'non-stable paths are refused');
  t.equal((await next.get('/endpoints/n1/e1'))?.data, 'E1');
  t.equal(reads.get, 0, 'served from the seed');
  t.same(await next.children('/endpoints/n1'), ['e1']);
  t.equal(await next.get('/endpoints/n1/e9'), undefined, 'dropped by the first listing of its folder');
  t.equal((await next.get('/networks/n1'))?.data, 'v1', 'watched records always come from the store');
});

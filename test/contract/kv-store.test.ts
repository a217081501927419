/**
 * Contract of the KvStore port, run against every implementation so they
 * behave alike. The ZooKeeper adapter runs against a real server when
 * TSOVERLAY_IT=1 (Java + the Debian zookeeper package).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { FileKvStore } from '../../src/store/file-kv-store.js';
import type { KvStore } from '../../src/store/kv-store.js';
import { MemoryKvStore } from '../../src/store/memory-kv-store.js';
import { ZkKvStore } from '../../src/store/zk-kv-store.js';

import { TestZooKeeper } from '../lab/zk-standalone.js';

// ---- the implementations ---------------------------------------------------

const impls: Array<[string, (t: Test) => Promise<KvStore>]> = [
  ['memory', async () => new MemoryKvStore()],
  [
    'file',
    async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'tsoverlay-kv-'));
      t.teardown(() => rm(dir, { recursive: true, force: true }));
      return FileKvStore.open(join(dir, 'state.json'));
    },
  ],
];

// ZooKeeper: one server for the file, a fresh chroot per test.
if (process.env['TSOVERLAY_IT'] === '1') {
  let server: TestZooKeeper | undefined;
  t.before(async () => {
    server = await TestZooKeeper.create();
    await server.start();
  });
  t.teardown(async () => {
    await server?.destroy();
  });
  impls.push([
    'zookeeper',
    async (t) => {
      if (!server) throw new Error('ZooKeeper did not start');
      const kv = await ZkKvStore.open({ servers: [server.address], chroot: `/kvtest-${randomBytes(4).toString('hex')}` });
      t.teardown(() => kv.close());
      return kv;
    },
  ]);
} else {
  t.test('zookeeper: the KvStore contract', { skip: 'needs a real ZooKeeper (Java + the Debian zookeeper package): set TSOVERLAY_IT=1' }, async () => {});
}

const conflict = (reason: string) => ({ name: 'KvConflict', reason });

for (const [name, make] of impls) {
  t.test(`${name}: create, get, children`, async (t) => {
    const kv = await make(t);
    await kv.commit([{ type: 'create', path: '/a', data: 'x' }]);
    await kv.commit([{ type: 'create', path: '/a/c2', data: '2' }, { type: 'create', path: '/a/c1', data: '1' }]);
    t.match(await kv.get('/a'), { data: 'x', version: 0 });
    t.same(await kv.children('/a'), ['c1', 'c2']);
    t.same(await kv.children('/missing'), []);
    t.equal(await kv.get('/missing'), undefined);
    await t.rejects(kv.commit([{ type: 'create', path: '/a', data: 'y' }]), conflict('exists'));
    await t.rejects(kv.commit([{ type: 'create', path: '/no/parent', data: '' }]), conflict('missing'));
  });

  t.test(`${name}: versions and compare-and-set`, async (t) => {
    const kv = await make(t);
    await kv.commit([{ type: 'create', path: '/n', data: 'v0' }]);
    await kv.commit([{ type: 'set', path: '/n', data: 'v1', version: 0 }]);
    t.match(await kv.get('/n'), { data: 'v1', version: 1 });
    await t.rejects(kv.commit([{ type: 'set', path: '/n', data: 'stale', version: 0 }]), conflict('version'));
    await kv.commit([{ type: 'set', path: '/n', data: 'any', version: -1 }]);
    t.equal((await kv.get('/n'))?.version, 2);
    await t.rejects(kv.commit([{ type: 'check', path: '/n', version: 1 }]), conflict('version'));
    await t.rejects(kv.commit([{ type: 'delete', path: '/n', version: 0 }]), conflict('version'));
  });

  t.test(`${name}: a refused commit applies nothing`, async (t) => {
    const kv = await make(t);
    await kv.commit([{ type: 'create', path: '/p', data: '' }]);
    await t.rejects(
      kv.commit([
        { type: 'create', path: '/p/new', data: '' },
        { type: 'set', path: '/p', data: 'changed', version: 7 },
      ]),
      conflict('version'),
    );
    t.same(await kv.children('/p'), []);
    t.match(await kv.get('/p'), { data: '', version: 0 });
  });

  t.test(`${name}: creation stamps grow with every create, survive a set, and are new for a node created again`, async (t) => {
    const kv = await make(t);
    await kv.commit([{ type: 'create', path: '/s', data: '' }]);
    await kv.commit([{ type: 'create', path: '/s/old', data: 'a' }]);
    await kv.commit([{ type: 'create', path: '/s/new', data: 'b' }]);
    const old = (await kv.get('/s/old'))!.created;
    const young = (await kv.get('/s/new'))!.created;
    t.ok(Number.isSafeInteger(old) && old > 0, `a stamp (${old})`);
    t.ok(young > old, `a later create has a larger stamp (${young} > ${old})`);
    await kv.commit([{ type: 'set', path: '/s/old', data: 'a2', version: 0 }]);
    t.equal((await kv.get('/s/old'))!.created, old, 'a set keeps the stamp');
    await kv.commit([{ type: 'delete', path: '/s/old', version: -1 }]);
    await kv.commit([{ type: 'create', path: '/s/old', data: 'again' }]);
    t.ok((await kv.get('/s/old'))!.created > young, 'created again: newer than every earlier node');
    await kv.createEphemeral('/s/eph', '');
    t.ok((await kv.getOwner('/s/eph'))!.created > young, 'ephemeral nodes are stamped too');
  });

  t.test(`${name}: delete needs an empty node`, async (t) => {
    const kv = await make(t);
    await kv.commit([{ type: 'create', path: '/d', data: '' }, { type: 'create', path: '/d/x', data: '' }]);
    await t.rejects(kv.commit([{ type: 'delete', path: '/d', version: -1 }]), conflict('not-empty'));
    await kv.commit([{ type: 'delete', path: '/d/x', version: -1 }, { type: 'delete', path: '/d', version: -1 }]);
    t.equal(await kv.get('/d'), undefined);
    await t.rejects(kv.commit([{ type: 'delete', path: '/d', version: -1 }]), conflict('missing'));
  });

  t.test(`${name}: watches fire on data and children changes`, async (t) => {
    const kv = await make(t);
    await kv.commit([{ type: 'create', path: '/w', data: '' }]);
    let fired = 0;
    const seen = new Promise<void>((resolve) => {
      const off = kv.watch('/w', () => {
        fired++;
        off();
        resolve();
      });
    });
    await kv.commit([{ type: 'create', path: '/w/child', data: '' }]);
    await seen;
    t.equal(fired, 1);
  });
}

t.test('file: state survives reopening, and the file is replaced atomically', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsoverlay-kv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'sub', 'state.json');
  const a = await FileKvStore.open(file);
  await a.commit([{ type: 'create', path: '/k', data: 'hello' }]);
  await a.commit([{ type: 'set', path: '/k', data: 'world', version: 0 }]);
  await a.close();
  const b = await FileKvStore.open(file);
  t.match(await b.get('/k'), { data: 'world', version: 1 });
  const k = (await b.get('/k'))!.created;
  await b.commit([{ type: 'create', path: '/k2', data: '' }]);
  t.ok((await b.get('/k2'))!.created > k, 'creation stamps go on growing after reopening');
  t.match(JSON.parse(await readFile(file, 'utf8')), { format: 'tsoverlay-kv/1' });
});

t.test('file: a corrupt state file stops startup with a clear message', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsoverlay-kv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 's.json'), '{not json');
  await t.rejects(FileKvStore.open(join(dir, 's.json')), /not valid JSON; move it away/);
  await writeFile(join(dir, 's.json'), '{"format":"other"}');
  await t.rejects(FileKvStore.open(join(dir, 's.json')), /unknown format/);
});

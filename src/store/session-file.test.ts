import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readRecordSnapshot, snapshotPath, writeRecordSnapshot } from './session-file.js';

const owner = { node: 'n1', servers: ['10.0.0.1:2181'], chroot: '/ts' };

t.test('record snapshot: round trip for the same owner, nothing for another or a bad file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsov-snap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = snapshotPath(join(dir, 'zk-session.json'));
  t.same(await readRecordSnapshot(file, owner), [], 'missing file: nothing');
  await writeRecordSnapshot(file, owner, [['/endpoints/a/e1', { data: '{"x":1}', version: 2, created: 41 }]]);
  t.same(await readRecordSnapshot(file, owner), [['/endpoints/a/e1', { data: '{"x":1}', version: 2, created: 41 }]]);
  t.same(await readRecordSnapshot(file, { ...owner, chroot: '/other' }), [], 'another cluster: nothing');
  t.same(await readRecordSnapshot(file, { ...owner, node: 'n2' }), [], 'another node: nothing');
  await writeFile(file, '{"format":"tsoverlay-records/1","node":"n1","servers":["10.0.0.1:2181"],"chroot":"/ts","records":[["/p", 5, "x", 1], ["/endpoints/a/e3", "d", 1], ["/endpoints/a/e2", "d", 1, 7]]}');
  t.same(await readRecordSnapshot(file, owner), [['/endpoints/a/e2', { data: 'd', version: 1, created: 7 }]],
    'malformed entries, and those saved without a creation stamp, skipped');
  await writeFile(file, 'not json');
  t.same(await readRecordSnapshot(file, owner), [], 'garbage: nothing');
});

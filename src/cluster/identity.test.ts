import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { isTsoverlayError } from '../errors.js';
import { silentLog, type Log } from '../log.js';
import { MemoryKvStore } from '../store/memory-kv-store.js';
import { CLUSTER_PATH, ClusterGuard, decideIdentity, type IdentityFacts } from './identity.js';

const facts = (f: Partial<IdentityFacts>): IdentityFacts => ({
  remembered: undefined, stored: undefined, storeEmpty: true, kernelNetworks: 0, adopt: false, ...f,
});
const newId = () => 'new';

t.test('decideIdentity: the rule', async (t) => {
  t.match(decideIdentity(facts({}), newId), { kind: 'use', id: 'new', createInStore: true, remember: true }, 'fresh node, fresh store: a new cluster');
  t.match(decideIdentity(facts({ stored: 'A' }), newId), { kind: 'use', id: 'A', createInStore: false, remember: true }, 'a new node joins');
  t.match(decideIdentity(facts({ stored: 'A', remembered: 'A', kernelNetworks: 3 }), newId), { kind: 'use', id: 'A', remember: false }, 'same cluster');
  t.match(decideIdentity(facts({ stored: 'B', remembered: 'A', storeEmpty: false }), newId), { kind: 'refuse', reason: /cluster B.*cluster A/ }, 'another cluster');
  t.match(decideIdentity(facts({ kernelNetworks: 2 }), newId), { kind: 'refuse', reason: /empty.*2 tsoverlay network/ }, 'empty store, kernel holds networks');
  t.match(decideIdentity(facts({ remembered: 'A', kernelNetworks: 1 }), newId), { kind: 'refuse' }, 'wiped store under a member with state');
  t.match(decideIdentity(facts({ remembered: 'A', storeEmpty: false }), newId), { kind: 'refuse', reason: /no cluster identity/ }, 'a store without id that is not empty, for a member');
  t.match(decideIdentity(facts({ storeEmpty: false, kernelNetworks: 4 }), newId), { kind: 'use', createInStore: true, why: /older version/ }, 'upgrade from a version without identity');
  t.match(decideIdentity(facts({ remembered: 'A' }), newId), { kind: 'use', id: 'new' }, 'a member with no state on an empty store starts afresh');
  t.match(decideIdentity(facts({ stored: 'B', remembered: 'A', adopt: true }), newId), { kind: 'use', id: 'B', createInStore: false, remember: true }, 'adopt a foreign store');
  t.match(decideIdentity(facts({ remembered: 'A', kernelNetworks: 3, adopt: true }), newId), { kind: 'use', id: 'new', createInStore: true }, 'adopt an empty store');
});

const recorder = () => {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (_o: object, msg: string) => void lines.push({ level, msg });
  const log: Log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { lines, log };
};

t.test('ClusterGuard: creates, remembers, refuses a swapped store, adopts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsoverlay-identity-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'state', 'cluster-id');
  let kernelNetworks = 0;
  const { lines, log } = recorder();
  const guardFor = (kv: MemoryKvStore, adopt = false) =>
    new ClusterGuard({ kv, file, adopt, kernelNetworks: async () => kernelNetworks, storeHasNetworks: async () => false, log });

  const kv = new MemoryKvStore();
  const g = guardFor(kv);
  t.throws(() => g.assertOk(), 'not ok before the first check');
  const s = await g.establish();
  t.ok(s.ok, 'a fresh store is taken');
  const id = s.ok ? s.id : '';
  t.equal((await readFile(file, 'utf8')).trim(), id, 'the id is remembered');
  t.equal((await stat(file)).mode & 0o777, 0o600, 'the id file is 0600');
  t.match(JSON.parse((await kv.get(CLUSTER_PATH))?.data ?? '{}'), { id }, 'the store carries the id');
  t.same(await g.check(), { ok: true, id }, 'check: unchanged store');

  // the store is wiped under the running node, which holds networks by now
  kernelNetworks = 2;
  await kv.commit([{ type: 'delete', path: CLUSTER_PATH, version: -1 }]);
  const refused = await g.check();
  t.match(refused, { ok: false, reason: /lost its cluster identity/ }, 'a wiped store is refused');
  const err = (() => {
    try {
      g.assertOk();
      return undefined;
    } catch (e) {
      return e;
    }
  })();
  t.ok(isTsoverlayError(err, 'STORE_REFUSED') && /--adopt-store/.test(err.message), 'Docker calls get an actionable error');
  await g.check();
  t.equal(lines.filter((l) => l.level === 'error').length, 1, 'the refusal is logged once, not on every pass');

  // a restart with another (empty) store: refused; with --adopt-store: taken
  const other = new MemoryKvStore();
  t.match(await guardFor(other).establish(), { ok: false }, 'restart against an empty store with kernel state: refused');
  t.notOk(await other.get(CLUSTER_PATH), 'nothing written to a refused store');
  const adopted = await guardFor(other, true).establish();
  t.ok(adopted.ok && adopted.id !== id, 'adopted: a new identity');
  t.equal((await readFile(file, 'utf8')).trim(), adopted.ok ? adopted.id : '', 'and it is remembered');

  // a second node joining the adopted store takes its id; two racing creators agree
  const racing = new MemoryKvStore();
  const [a, b] = await Promise.all([
    new ClusterGuard({ kv: racing, file: join(dir, 'a'), adopt: false, kernelNetworks: async () => 0, storeHasNetworks: async () => false, log: silentLog }).establish(),
    new ClusterGuard({ kv: racing, file: join(dir, 'b'), adopt: false, kernelNetworks: async () => 0, storeHasNetworks: async () => false, log: silentLog }).establish(),
  ]);
  t.ok(a.ok && b.ok && a.id === b.id, 'two nodes creating the identity at once end with the same id');
});

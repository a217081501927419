/**
 * ZooKeeper digest auth and ACLs against a real ZooKeeper 3.8: with
 * credentials every node tsoverlay creates (the chroot included) is readable
 * and writable by that identity only; a client without them (or with other
 * ones) is refused on read and on write; `secure()` (tsoverlay store secure)
 * converts an open tree while a node keeps writing to it, without losing its
 * session. Needs TSOVERLAY_IT=1.
 */
/// <reference path="../../src/store/node-zookeeper-client.d.ts" />
import { randomBytes } from 'node:crypto';
import zookeeper from 'node-zookeeper-client';
import t, { type Test } from 'tap';
import type { Log } from '../../src/log.js';
import { digestId } from '../../src/store/zk/acl.js';
import { ZkKvStore, type ZkSessionOptions } from '../../src/store/zk-kv-store.js';
import { withZooKeeper } from './zk-server.js';

withZooKeeper((zk) => {
  const logged: string[] = [];
  const line = (level: string) => (obj: object, msg: string) => logged.push(`${level}: ${msg} ${JSON.stringify(obj)}`);
  const log: Log = { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };

  const password = `pw-${randomBytes(8).toString('hex')}`;
  const auth = { user: 'tsoverlay', password };
  const newChroot = (): string => `/za-${randomBytes(4).toString('hex')}`;

  const open = async (t: Test, chroot: string, extra: Partial<ZkSessionOptions> = {}): Promise<ZkKvStore> => {
    const kv = await ZkKvStore.open({ servers: [zk().address], chroot, sessionTimeoutMs: 6000, log, ...extra });
    t.teardown(() => kv.close());
    return kv;
  };

  /** A plain library client (no tsoverlay code), optionally with digest credentials "user:password". */
  const rawClient = async (t: Test, credentials?: string): Promise<zookeeper.Client> => {
    const c = zookeeper.createClient(zk().address, { sessionTimeout: 6000, retries: 0 });
    if (credentials) c.addAuthInfo('digest', Buffer.from(credentials));
    await new Promise<void>((resolve) => {
      c.once('connected', resolve);
      c.connect();
    });
    t.teardown(() => c.close());
    return c;
  };

  /** The error code name a raw call fails with ('OK' if it succeeds). */
  const outcome = (start: (cb: (e: zookeeper.Exception | null) => void) => void): Promise<string> =>
    new Promise((resolve) => start((e) => resolve(e ? e.name : 'OK')));

  const raw = {
    read: (c: zookeeper.Client, p: string) => outcome((cb) => c.getData(p, undefined, (e) => cb(e))),
    list: (c: zookeeper.Client, p: string) => outcome((cb) => c.getChildren(p, undefined, (e) => cb(e))),
    write: (c: zookeeper.Client, p: string) => outcome((cb) => c.setData(p, Buffer.from('evil'), -1, (e) => cb(e))),
    create: (c: zookeeper.Client, p: string) =>
      outcome((cb) => c.create(p, Buffer.from('evil'), zookeeper.ACL.OPEN_ACL_UNSAFE, zookeeper.CreateMode.PERSISTENT, (e) => cb(e))),
    remove: (c: zookeeper.Client, p: string) => outcome((cb) => c.remove(p, -1, (e) => cb(e))),
    setAcl: (c: zookeeper.Client, p: string) => outcome((cb) => c.setACL(p, zookeeper.ACL.OPEN_ACL_UNSAFE, -1, (e) => cb(e))),
    acl: (c: zookeeper.Client, p: string) =>
      new Promise<string>((resolve) => c.getACL(p, (e, acls) => resolve(e ? e.name : (acls ?? []).map((a) => `${a.id.scheme}:${a.id.id}:${a.permission}`).join(',')))),
  };

  /** Every way in that a client without the right credentials must be refused. */
  const assertRefused = async (t: Test, c: zookeeper.Client, chroot: string, who: string): Promise<void> => {
    for (const p of [chroot, `${chroot}/networks`, `${chroot}/networks/n1`, `${chroot}/nodes/h1`]) {
      t.equal(await raw.read(c, p), 'NO_AUTH', `${who}: read ${p} refused`);
      t.equal(await raw.write(c, p), 'NO_AUTH', `${who}: write ${p} refused`);
      t.equal(await raw.setAcl(c, p), 'NO_AUTH', `${who}: ACL change of ${p} refused`);
    }
    t.equal(await raw.list(c, chroot), 'NO_AUTH', `${who}: listing the chroot refused`);
    t.equal(await raw.create(c, `${chroot}/planted`), 'NO_AUTH', `${who}: creating a node refused`);
    t.equal(await raw.create(c, `${chroot}/nodes/fake`), 'NO_AUTH', `${who}: planting a node record refused`);
    t.equal(await raw.remove(c, `${chroot}/networks/n1`), 'NO_AUTH', `${who}: deleting a network refused`);
  };

  const populate = async (kv: ZkKvStore): Promise<void> => {
    await kv.commit([
      { type: 'create', path: '/networks', data: '' },
      { type: 'create', path: '/networks/n1', data: '{"vni":4096}' },
      { type: 'create', path: '/nodes', data: '' },
    ]);
    await kv.createEphemeral('/nodes/h1', '{"vtep":"10.0.0.1"}');
  };

  t.test('with credentials: every node carries the digest ACL; others are refused on read and on write', async (t) => {
    const base = newChroot();
    const chroot = `${base}/cluster`;
    const kv = await open(t, chroot, { auth });
    await populate(kv);

    const owner = await rawClient(t, `tsoverlay:${password}`);
    const expected = `digest:${digestId(auth)}:31`;
    for (const p of [base, chroot, `${chroot}/networks`, `${chroot}/networks/n1`, `${chroot}/nodes/h1`]) {
      t.equal(await raw.acl(owner, p), expected, `${p} is ALL for the digest identity only`);
    }

    await assertRefused(t, await rawClient(t), chroot, 'no credentials');
    await assertRefused(t, await rawClient(t, 'tsoverlay:wrong-password'), chroot, 'wrong password');
    t.match(await kv.get('/networks/n1'), { data: '{"vni":4096}', version: 0 }, 'nothing was changed by the refused clients');
    t.same(await kv.children('/nodes'), ['h1']);

    // tsoverlay's own store without (or with other) credentials: a clear error, not "missing"
    const bare = await open(t, base);
    await t.rejects(bare.get('/cluster/networks/n1'), { name: 'ZkAccessDenied', message: /refused access to \/cluster\/networks\/n1 .*--zk-auth-file/ });
    await t.rejects(bare.commit([{ type: 'set', path: '/cluster/networks/n1', data: 'x', version: -1 }]), { name: 'ZkAccessDenied' });
    await t.rejects(
      ZkKvStore.open({ servers: [zk().address], chroot: `${chroot}/deeper`, log }),
      { name: 'ZkAccessDenied' },
      'opening a chroot below a secured node without credentials fails at start',
    );

    // the same credentials from another store: full access
    const peer = await open(t, chroot, { auth });
    t.match(await peer.get('/networks/n1'), { data: '{"vni":4096}', version: 0 });
    await peer.commit([{ type: 'set', path: '/networks/n1', data: '{"vni":4097}', version: 0 }]);
    t.equal((await kv.get('/networks/n1'))?.data, '{"vni":4097}');
    t.notOk(logged.some((l) => l.includes(password)), 'the password is never logged');
  });

  t.test('secure(): an open tree is converted while a node keeps writing; no session is lost', async (t) => {
    const chroot = newChroot();
    const before = await open(t, chroot); // the cluster as it ran without auth
    await populate(before);
    for (let i = 0; i < 200; i += 1) await before.commit([{ type: 'create', path: `/networks/n1/e${i}`, data: `{"i":${i}}` }]);
    const anyone = await rawClient(t);
    t.equal(await raw.read(anyone, `${chroot}/networks/n1`), 'OK', 'the tree is open before');

    // a node restarted with the credentials (resuming its session) keeps working during the walk
    const resume = before.credentials();
    if (!resume) throw new Error('no session to resume');
    // the old process lets go first, as a restart does: resuming while it
    // is still connected races its own reconnect for the session (the
    // server then closes whichever connection lost, and a call on it fails
    // with CONNECTION_LOSS)
    await before.detach();
    const node = await open(t, chroot, { auth, resume });
    const sessionId = node.sessionId();
    const events: string[] = [];
    node.onSession((e) => events.push(e));
    t.equal((await node.getOwner('/nodes/h1'))?.ephemeralOwner, sessionId, 'the resumed session still owns its ephemeral node');
    let writes = 0;
    let failures = 0;
    let walking = true;
    const writer = (async () => {
      while (walking) {
        try {
          await node.commit([{ type: 'create', path: `/networks/n1/w${writes}`, data: '' }]);
          writes += 1;
        } catch {
          failures += 1;
        }
      }
    })();
    const admin = await open(t, chroot, { auth });
    const first = await admin.secure();
    walking = false;
    await writer;
    t.ok(first.nodes >= 205, `walked ${first.nodes} nodes`);
    t.ok(first.changed >= 205 && first.changed <= first.nodes, `${first.changed} ACLs set`);
    t.equal(failures, 0, `the running node's ${writes} writes during the walk all succeeded`);
    t.ok(writes > 0);
    t.same(events, [], 'no session event on the running node');
    t.equal(node.sessionId(), sessionId);
    t.equal((await node.getOwner('/nodes/h1'))?.ephemeralOwner, sessionId, 'its ephemeral node is still its own');

    await assertRefused(t, await rawClient(t), chroot, 'no credentials after secure');
    const owner = await rawClient(t, `tsoverlay:${password}`);
    t.equal(await raw.acl(owner, `${chroot}/networks/n1/e199`), `digest:${digestId(auth)}:31`);
    t.equal(await raw.acl(owner, `${chroot}/networks/n1/w0`), `digest:${digestId(auth)}:31`, 'nodes created during the walk carry it too');

    const again = await admin.secure();
    t.equal(again.changed, 0, 'a second run changes nothing');
    t.equal(again.nodes, 205 + writes, 'and sees every node: the chroot, 204 nodes before, one per write during the walk');
  });
});

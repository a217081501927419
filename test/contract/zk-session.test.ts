/**
 * ZooKeeper-specific behaviour of ZkKvStore / ZkSession against a real
 * ZooKeeper (one standalone server for the file): chroot creation, atomic
 * versioned commits, ephemeral nodes and their owner, watches racing with
 * other clients, session expiry behind a network partition, a frozen and a
 * stopped server. Needs TSOVERLAY_IT=1 (Java + the Debian zookeeper package).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { KvConflict, type KvOp } from '../../src/store/kv-store.js';
import type { Log } from '../../src/log.js';
import { type Metrics, noMetrics } from '../../src/metrics/metrics.js';
import { ZkKvStore, type ZkSessionEvent, type ZkSessionOptions } from '../../src/store/zk-kv-store.js';
import { waitFor } from '../lab/wait.js';
import { CuttableLink } from './cuttable-link.js';
import { withZooKeeper } from './zk-server.js';
import { freePort } from '../lab/zk-standalone.js';

// ---- the tests ---------------------------------------------------------------

withZooKeeper((zk) => {

  const debug = process.env['TSL_DEBUG'] === '1';
  /** Every log message of the stores, "level: message". */
  const logged: string[] = [];
  const line = (level: string) => (obj: object, msg: string) => {
    logged.push(`${level}: ${msg}`);
    if (debug) process.stderr.write(`[zk ${level}] ${msg} ${JSON.stringify(obj)}\n`);
  };
  const log: Log = { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };

  const newChroot = (): string => `/zs-${randomBytes(4).toString('hex')}`;

  const open = async (t: Test, chroot: string, extra: Partial<ZkSessionOptions> = {}): Promise<ZkKvStore> => {
    const kv = await ZkKvStore.open({ servers: [zk().address], chroot, sessionTimeoutMs: 6000, log, ...extra });
    t.teardown(() => kv.close());
    return kv;
  };

  /** A store that reaches ZooKeeper through a link the test can cut; both closed at the end of the test. */
  const openThroughLink = async (t: Test, chroot: string, sessionTimeoutMs: number, metrics?: Metrics): Promise<{ link: CuttableLink; kv: ZkKvStore }> => {
    const link = await CuttableLink.open(zk().port);
    t.teardown(() => link.close());
    const kv = await ZkKvStore.open({ servers: [link.address], chroot, sessionTimeoutMs, log }, metrics);
    t.teardown(() => kv.close());
    return { link, kv };
  };

  const record = (kv: ZkKvStore): ZkSessionEvent[] => {
    const events: ZkSessionEvent[] = [];
    kv.onSession((e) => events.push(e));
    return events;
  };

  t.test('open: the chroot is created when missing, and all paths are inside it', async (t) => {
    const base = newChroot();
    const kv = await open(t, `${base}/a/b`);
    t.match(await kv.get('/'), { data: '', version: 0 }, 'the chroot node is the root');
    await kv.commit([{ type: 'create', path: '/k', data: 'v' }]);
    t.same(await kv.children('/'), ['k']);
    const outer = await open(t, base);
    t.same(await outer.children('/a'), ['b'], 'every missing level was created');
    t.match(await outer.get('/a/b/k'), { data: 'v', version: 0 }, 'a write lands under the chroot');
    t.match(kv.sessionId(), /^[0-9a-f]{16}$/);
    t.ok(kv.isConnected());
  });

  t.test('open with createChroot false: a missing chroot stays missing and reads find nothing', async (t) => {
    const base = newChroot();
    const outer = await open(t, base);
    const reader = await open(t, `${base}/x`, { createChroot: false });
    t.same(await reader.children('/networks'), []);
    t.equal(await reader.get('/networks'), undefined);
    t.same(await outer.children('/'), [], 'nothing was created');
  });

  t.test('open: an unreachable ZooKeeper rejects with KvUnavailable after connectTimeoutMs', async (t) => {
    const port = await freePort(); // nothing listens there
    const t0 = Date.now();
    await t.rejects(
      ZkKvStore.open({ servers: [`127.0.0.1:${port}`], chroot: newChroot(), connectTimeoutMs: 1500, log }),
      { name: 'KvUnavailable', message: /cannot reach ZooKeeper/ },
    );
    const ms = Date.now() - t0;
    t.ok(ms >= 1400 && ms < 4000, `rejected after ${ms} ms`);
    await t.rejects(ZkKvStore.open({ servers: ['[::1]:2181'], chroot: '/x' }), /not host:port/);
    await t.rejects(ZkKvStore.open({ servers: [], chroot: '/x' }), /no ZooKeeper servers/);
    await t.rejects(ZkKvStore.open({ servers: [zk().address], chroot: 'x/' }), /invalid ZooKeeper path/);
  });

  t.test('commit: a stale version fails with a version conflict and applies nothing', async (t) => {
    const kv = await open(t, newChroot());
    await kv.commit([{ type: 'create', path: '/n', data: 'v0' }]);
    await kv.commit([{ type: 'set', path: '/n', data: 'v1', version: 0 }]);
    const stale = kv.commit([
      { type: 'create', path: '/n/child', data: '' },
      { type: 'set', path: '/n', data: 'stale', version: 0 },
      { type: 'create', path: '/other', data: '' },
    ]);
    await t.rejects(stale, { name: 'KvConflict', reason: 'version', op: { type: 'set', path: '/n', version: 0 } });
    t.ok((await stale.catch((e: unknown) => e)) instanceof KvConflict);
    t.same(await kv.children('/n'), [], 'the create before the failing op was not applied');
    t.equal(await kv.get('/other'), undefined, 'the create after the failing op was not applied');
    t.match(await kv.get('/n'), { data: 'v1', version: 1 });

    // version 0 is a real version, not "any" (the library's builder gets this wrong)
    await t.rejects(kv.commit([{ type: 'check', path: '/n', version: 0 }]), { name: 'KvConflict', reason: 'version' });
    await t.rejects(kv.commit([{ type: 'delete', path: '/n', version: 0 }]), { name: 'KvConflict', reason: 'version' });
    await kv.commit([{ type: 'create', path: '/z', data: '' }]);
    await kv.commit([
      { type: 'check', path: '/z', version: 0 },
      { type: 'set', path: '/z', data: 'a', version: 0 },
    ]);
    t.match(await kv.get('/z'), { data: 'a', version: 1 });

    // the conflict names the op that failed, wherever it is in the list
    await t.rejects(
      kv.commit([
        { type: 'create', path: '/n/c1', data: '' },
        { type: 'delete', path: '/missing', version: -1 },
      ]),
      { name: 'KvConflict', reason: 'missing', op: { type: 'delete', path: '/missing' } },
    );
    t.same(await kv.children('/n'), []);
    await t.rejects(kv.commit([{ type: 'create', path: '/big', data: 'x'.repeat(1_100_000) }]), /too large/);
    // UTF-8 data round-trips
    await kv.commit([{ type: 'create', path: '/u', data: 'zürich ✓ 中' }]);
    t.equal((await kv.get('/u'))?.data, 'zürich ✓ 中');
  });

  t.test('ephemeral nodes: created, owned by this session, gone when it ends', async (t) => {
    const root = newChroot();
    const a = await open(t, root);
    const b = await open(t, root);
    await a.commit([{ type: 'create', path: '/members', data: '' }]);
    await a.createEphemeral('/members/h1', '{"vtep":"10.0.0.1"}');
    const before = Date.now();
    const owned = await a.getOwner('/members/h1');
    t.match(owned, { data: '{"vtep":"10.0.0.1"}', version: 0, ephemeralOwner: a.sessionId() });
    t.ok(owned?.createdMs !== undefined && Math.abs(owned.createdMs - before) < 60_000, `its creation time (ctime ${owned?.createdMs}, now ${before})`);
    t.not(a.sessionId(), b.sessionId());
    t.equal((await b.getOwner('/members/h1'))?.ephemeralOwner, a.sessionId(), 'b sees that a live session other than its own holds it');
    t.equal((await b.getOwner('/members'))?.ephemeralOwner, '', 'a persistent node has no owner');
    t.equal(await b.getOwner('/members/none'), undefined);
    await t.rejects(b.createEphemeral('/members/h1', 'b'), { name: 'KvConflict', reason: 'exists', op: { path: '/members/h1' } });
    await t.rejects(b.createEphemeral('/nope/h2', 'b'), { name: 'KvConflict', reason: 'missing' });
    t.match(await b.get('/members/h1'), { data: '{"vtep":"10.0.0.1"}', version: 0 }, 'the port view hides the owner');

    await a.close();
    t.equal(await b.get('/members/h1'), undefined, 'closing the store ends its session and its ephemeral nodes at once');
    await b.createEphemeral('/members/h1', 'b');
    t.equal((await b.getOwner('/members/h1'))?.ephemeralOwner, b.sessionId());
    await t.rejects(a.get('/members'), /closed/, 'a closed store refuses calls');
  });

  t.test('detach + resume: a restarted process keeps the session and its ephemeral nodes', async (t) => {
    const root = newChroot();
    const a = await open(t, root);
    const watcher = await open(t, root);
    await a.commit([{ type: 'create', path: '/members', data: '' }]);
    await a.createEphemeral('/members/h1', 'a');
    const creds = a.credentials();
    t.ok(creds, 'credentials while connected');
    const id = a.sessionId();
    let removed = false;
    watcher.watch('/members', () => {
      void watcher.children('/members').then((c) => {
        if (!c.includes('h1')) removed = true;
      });
    });
    await a.detach();
    const b = await open(t, root, { resume: creds! });
    t.equal(b.sessionId(), id, 'same session');
    t.equal((await b.getOwner('/members/h1'))?.ephemeralOwner, b.sessionId(), 'the ephemeral node is still ours');
    t.equal(await watcher.get('/members/h1').then((v) => v?.data), 'a');
    t.notOk(removed, 'peers never saw it go');

    // Resuming an ended session gives a new one instead.
    const gone = b.credentials()!;
    await b.close();
    const c = await open(t, root, { resume: gone });
    t.not(c.sessionId(), id);
    t.equal(await c.get('/members/h1'), undefined);
  });

  t.test('session expiry behind a partition: a new session, events, watches re-armed, ephemeral nodes gone', async (t) => {
    const root = newChroot();
    // 2 s sessions: the server expires a silent session quickly
    const { link, kv: a } = await openThroughLink(t, root, 2000);
    const b = await open(t, root);
    await a.commit([
      { type: 'create', path: '/w', data: '' },
      { type: 'create', path: '/members', data: '' },
    ]);
    await a.createEphemeral('/members/a', 'a');
    let fired = 0;
    a.watch('/w', () => fired++);
    const events = record(a);
    const oldId = a.sessionId();

    const t0 = Date.now();
    link.partition();
    await waitFor(async () => (await b.get('/members/a')) === undefined, { what: 'the server to expire the silent session', timeoutMs: 15_000 });
    t.comment(`session expired on the server after ${Date.now() - t0} ms`);
    await waitFor(() => !a.isConnected(), { what: 'a to notice the dead connection', timeoutMs: 5000 });
    await t.rejects(a.get('/w'), { name: 'KvUnavailable' });
    const t1 = Date.now();
    link.heal();
    await waitFor(() => a.isConnected() && events.lastIndexOf('connected') > events.lastIndexOf('expired'), {
      what: "'connected' after 'expired'",
      describe: () => JSON.stringify(events),
    });
    t.comment(`new session ${Date.now() - t1} ms after the partition healed; events: ${events.join(', ')}`);
    t.same(events.slice(0, 1), ['disconnected'], "'disconnected' came first");
    t.ok(events.includes('expired'));
    t.not(a.sessionId(), oldId, 'a new session');
    await waitFor(() => fired >= 1, { what: 'every listener to fire once on the new session' });

    t.equal(await a.getOwner('/members/a'), undefined, "the old session's ephemeral node is gone");
    await a.createEphemeral('/members/a', 'a');
    t.equal((await b.getOwner('/members/a'))?.ephemeralOwner, a.sessionId(), 're-registered under the new session');

    let before = fired;
    await b.commit([{ type: 'create', path: '/w/x', data: '' }]);
    await waitFor(() => fired > before, { what: 'the watch to fire on a child change after the expiry' });
    before = fired;
    await b.commit([{ type: 'set', path: '/w', data: 'd', version: -1 }]);
    await waitFor(() => fired > before, { what: 'the watch to fire on a data change after the expiry' });
  });

  t.test('metrics: requests timed by operation (a conflict is an answer), session state and reconnects', async (t) => {
    const requests: string[] = [];
    const states: string[] = [];
    const reconnects: string[] = [];
    const metrics: Metrics = {
      ...noMetrics,
      zkRequest: (op, seconds, ok) => {
        t.ok(seconds >= 0 && seconds < 10, `${op}: a duration in seconds`);
        requests.push(`${op}:${ok ? 'ok' : 'failed'}`);
      },
      zkState: (s) => states.push(s),
      zkReconnect: (k) => reconnects.push(k),
    };
    const root = newChroot();
    const { link, kv } = await openThroughLink(t, root, 2000, metrics);
    const other = await open(t, root);
    t.same(states, ['connected'], 'connected once open');
    await kv.commit([{ type: 'create', path: '/n', data: '' }]);
    await kv.get('/n');
    await kv.children('/');
    await t.rejects(kv.commit([{ type: 'create', path: '/n', data: '' }]), { name: 'KvConflict' });
    await kv.createEphemeral('/e', 'x');
    t.same(requests, ['commit:ok', 'get:ok', 'children:ok', 'commit:ok', 'create_ephemeral:ok'], 'five requests; the conflict is an answer');
    link.partition();
    await waitFor(() => states.includes('disconnected'), { what: "'disconnected' reported", timeoutMs: 10_000, describe: () => JSON.stringify(states) });
    await t.rejects(kv.get('/n'), { name: 'KvUnavailable' });
    t.equal(requests.at(-1), 'get:failed', 'a request without a connection failed');
    await waitFor(async () => (await other.get('/e')) === undefined, { what: 'the server to expire the silent session', timeoutMs: 15_000 });
    link.heal();
    await waitFor(() => states.at(-1) === 'connected' && reconnects.includes('new'), {
      what: 'a new session reported', timeoutMs: 20_000, describe: () => JSON.stringify({ states, reconnects }),
    });
    t.pass(`states ${states.join(' → ')}, reconnects ${reconnects.join(', ')}`);
  });

  t.test('a reconnect the server accepts but never answers is given up in time to keep the session', async (t) => {
    // ZooKeeper 3.8 may leave a connection that arrives while it starts open and
    // silent (ZOOKEEPER-5051): the library would wait sessionTimeout/servers for it
    const { link, kv: a } = await openThroughLink(t, newChroot(), 4500);
    await a.commit([{ type: 'create', path: '/members', data: '' }]);
    await a.createEphemeral('/members/a', 'a');
    const events = record(a);
    const id = a.sessionId();
    const gaveUp = () => logged.filter((l) => l.includes('does not answer the session handshake')).length;
    const gaveUpBefore = gaveUp();
    link.holdNext(1);
    await a.get('/members'); // the server's expiry clock starts now: 4.5 s
    const t0 = Date.now();
    link.dropAll();
    await waitFor(() => a.isConnected() && (events.includes('reconnected') || events.includes('connected')), {
      what: 'a to be connected again',
      timeoutMs: 20_000,
      describe: () => JSON.stringify(events),
    });
    t.comment(`connected again ${Date.now() - t0} ms after the drop; events: ${events.join(', ')}`);
    t.ok(gaveUp() > gaveUpBefore, 'the silent connection was given up');
    t.same(events, ['disconnected', 'reconnected'], 'the same session came back, not a new one');
    t.equal(a.sessionId(), id);
    t.equal((await a.getOwner('/members/a'))?.ephemeralOwner, id, 'its ephemeral node never went away');
  });

  t.test("watches: another client's change right after watch() is reported", async (t) => {
    const root = newChroot();
    const a = await open(t, root);
    const b = await open(t, root);
    await b.commit([{ type: 'create', path: '/p', data: '' }]);
    const cases: Array<[string, (n: string) => KvOp[], (n: string) => KvOp[]]> = [
      ['created', () => [], (n) => [{ type: 'create', path: n, data: '' }]],
      ['data set', (n) => [{ type: 'create', path: n, data: '' }], (n) => [{ type: 'set', path: n, data: 'x', version: -1 }]],
      ['child added', (n) => [{ type: 'create', path: n, data: '' }], (n) => [{ type: 'create', path: `${n}/c`, data: '' }]],
      ['deleted', (n) => [{ type: 'create', path: n, data: '' }], (n) => [{ type: 'delete', path: n, version: -1 }]],
    ];
    for (const [what, setup, change] of cases) {
      for (let i = 0; i < 10; i++) {
        const n = `/p/${what.replace(' ', '-')}-${i}`;
        const pre = setup(n);
        if (pre.length > 0) await b.commit(pre);
        await a.get('/p'); // a has seen the setup
        let fired = 0;
        a.watch(n, () => fired++);
        await b.commit(change(n)); // races with a arming the watch
        await waitFor(() => fired > 0, { what: `a's watch to report "${what}" (round ${i})`, timeoutMs: 5000 });
      }
      t.pass(`${what}: reported 10 times out of 10`);
    }
  });

  t.test('watches by kind: a folder reports its children, a record its data', async (t) => {
    const root = newChroot();
    const a = await open(t, root, { watchKind: (p) => (p === '/dir' ? 'children' : p === '/rec' ? 'data' : 'both') });
    const b = await open(t, root);
    await b.commit([{ type: 'create', path: '/dir', data: '' }, { type: 'create', path: '/rec', data: '' }]);
    await a.children('/'); // a has seen the setup: arming reports nothing older
    const fired = { dir: 0, rec: 0 };
    a.watch('/dir', () => fired.dir++);
    a.watch('/rec', () => fired.rec++);
    const step = async (op: KvOp, key: 'dir' | 'rec'): Promise<void> => {
      const before = fired[key];
      await b.commit([op]);
      await waitFor(() => fired[key] > before, { what: `the ${key} watch to fire on ${op.type} ${op.path}` });
    };
    await step({ type: 'create', path: '/dir/c', data: '' }, 'dir');
    await step({ type: 'set', path: '/rec', data: 'x', version: -1 }, 'rec');
    // the changes the other kind would report: a second watcher proves they went out
    const seen = { dir: fired.dir, rec: fired.rec };
    let other = 0;
    b.watch('/dir', () => other++);
    await b.commit([{ type: 'set', path: '/dir', data: 'x', version: -1 }]);
    await waitFor(() => other >= 1, { what: "b's watch on /dir" });
    t.same(fired, seen, 'a folder watch ignores its data, and nothing else fired');
    await step({ type: 'delete', path: '/rec', version: -1 }, 'rec');
    await step({ type: 'create', path: '/rec', data: 'again' }, 'rec');
    t.pass('a record watch follows delete and re-create');
  });

  t.test('watches: fire until unsubscribed, also for a node created later and after a delete', async (t) => {
    const root = newChroot();
    const a = await open(t, root);
    const b = await open(t, root);
    let fired = 0;
    const off = a.watch('/later', () => fired++);
    await b.commit([{ type: 'create', path: '/later', data: '' }]);
    await waitFor(() => fired >= 1, { what: 'the watch to fire when the node is created' });
    const changes: KvOp[] = [
      { type: 'set', path: '/later', data: '1', version: -1 },
      { type: 'create', path: '/later/c', data: '' },
      { type: 'delete', path: '/later/c', version: -1 },
      { type: 'delete', path: '/later', version: -1 },
      { type: 'create', path: '/later', data: 'again' },
    ];
    for (const op of changes) {
      const before = fired;
      await b.commit([op]);
      await waitFor(() => fired > before, { what: `the watch to fire on ${op.type} ${op.path}` });
    }
    off();
    const settled = fired;
    await b.commit([{ type: 'set', path: '/later', data: '2', version: -1 }]);
    // a change seen by a second watcher proves the notification went out
    let other = 0;
    b.watch('/later', () => other++);
    await b.commit([{ type: 'set', path: '/later', data: '3', version: -1 }]);
    await waitFor(() => other >= 1, { what: "b's watch" });
    t.equal(fired, settled, 'no call after unsubscribe');
  });

  t.test('close() lets the process exit: connected, cut off, never connected', async (t) => {
    const link = await CuttableLink.open(zk().port);
    t.teardown(() => link.close());
    // the child loads the TypeScript sources the way this test does
    const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
    const store = fileURLToPath(new URL('../../src/store/zk-kv-store.ts', import.meta.url));
    const child = `
      const [store, address, mode] = process.argv.slice(1);
      const { ZkKvStore } = await import(store);
      if (mode === 'unreachable') {
        await ZkKvStore.open({ servers: [address], chroot: '/exit', connectTimeoutMs: 1000 }).catch((e) => console.log(e.name));
      } else {
        const kv = await ZkKvStore.open({ servers: [address], chroot: '/exit', sessionTimeoutMs: 2000 });
        await kv.createEphemeral('/e-' + process.pid, '');
        kv.watch('/', () => {});
        kv.onSession(() => {});
        if (mode === 'cut') {
          console.log('ready');
          await new Promise((resolve) => process.stdin.once('end', resolve).resume());
          while (kv.isConnected()) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await kv.close();
      }
      console.log('closed');
    `;
    const run = (address: string, mode: string): Promise<{ out: string; code: number | null; lingerMs: number }> =>
      new Promise((resolve, reject) => {
        const p = spawn(process.execPath, [...loader, '--input-type=module', '-e', child, store, address, mode], { stdio: ['pipe', 'pipe', 'inherit'] });
        let out = '';
        let closedAt = 0;
        const timer = setTimeout(() => p.kill('SIGKILL'), 30_000); // our own child
        p.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready') && mode === 'cut' && !p.stdin.writableEnded) {
            link.partition();
            p.stdin.end();
          }
          if (!closedAt && out.includes('closed')) closedAt = Date.now();
        });
        if (mode !== 'cut') p.stdin.end();
        p.on('error', reject);
        p.on('exit', (code) => {
          clearTimeout(timer);
          resolve({ out, code, lingerMs: closedAt ? Date.now() - closedAt : -1 });
        });
      });

    const connected = await run(zk().address, 'connected');
    t.match(connected, { code: 0, out: /closed/ }, 'connected');
    t.ok(connected.lingerMs >= 0 && connected.lingerMs < 2000, `exited ${connected.lingerMs} ms after close()`);

    const cut = await run(link.address, 'cut');
    link.heal();
    t.match(cut, { code: 0, out: /closed/ }, 'cut off by a partition');
    t.ok(cut.lingerMs >= 0 && cut.lingerMs < 2000, `exited ${cut.lingerMs} ms after close()`);

    const unreachable = await run(`127.0.0.1:${await freePort()}`, 'unreachable');
    t.match(unreachable, { code: 0, out: /KvUnavailable[\s\S]*closed/ }, 'never connected');
    t.ok(unreachable.lingerMs >= 0 && unreachable.lingerMs < 2000, `exited ${unreachable.lingerMs} ms after the failed open()`);
  });

  t.test('a frozen ZooKeeper (SIGSTOP): calls fail within the deadline, then work again', async (t) => {
    // 3 s sessions: heartbeat every 1 s, dropped after 1 s without answer; the handshake of the
    // session being resumed given up after 1 s
    const a = await open(t, newChroot(), { sessionTimeoutMs: 3000 });
    await a.commit([{ type: 'create', path: '/f', data: 'x' }]);
    const events = record(a);
    zk().signal('SIGSTOP');
    try {
      const t0 = Date.now();
      await t.rejects(a.get('/f'), { name: 'KvUnavailable' });
      const ms = Date.now() - t0;
      t.ok(ms < 6000, `rejected after ${ms} ms`);
      await waitFor(() => !a.isConnected(), { what: 'the heartbeat to notice the dead connection', timeoutMs: 10_000 });
      t.comment(`disconnected after ${Date.now() - t0} ms`);
      const t1 = Date.now();
      await t.rejects(a.commit([{ type: 'create', path: '/f/y', data: '' }]), { name: 'KvUnavailable', message: /not connected/ });
      t.ok(Date.now() - t1 < 200, 'fails fast while disconnected');
      // the kernel accepts the reconnect, the frozen server never answers the handshake
      await waitFor(() => logged.some((l) => l.includes('does not answer the session handshake')), {
        what: 'the handshake watchdog to give up on the frozen server',
        timeoutMs: 10_000,
      });
      t.pass(`handshake given up after ${Date.now() - t0} ms`);
    } finally {
      zk().signal('SIGCONT');
    }
    const t2 = Date.now();
    t.match(await waitFor(() => a.get('/f'), { what: 'calls to work again', timeoutMs: 30_000 }), { data: 'x', version: 0 });
    t.comment(`back after ${Date.now() - t2} ms; events: ${events.join(', ')}`);
    t.ok(events.includes('disconnected'));
    t.ok(events.includes('reconnected') || events.includes('connected'));
  });

  t.test('ZooKeeper stopped: calls fail fast; restarted: the same store works and its watch fires', async (t) => {
    const root = newChroot();
    const a = await open(t, root, { sessionTimeoutMs: 10_000 });
    await a.commit([{ type: 'create', path: '/r', data: '' }]);
    let fired = 0;
    a.watch('/r', () => fired++);
    const events = record(a);

    await zk().stop();
    await waitFor(() => !a.isConnected(), { what: 'the store to notice', timeoutMs: 5000 });
    t.same(events, ['disconnected']);
    const t0 = Date.now();
    await t.rejects(a.get('/r'), { name: 'KvUnavailable' });
    await t.rejects(a.children('/r'), { name: 'KvUnavailable' });
    await t.rejects(a.commit([{ type: 'create', path: '/r/x', data: '' }]), { name: 'KvUnavailable' });
    await t.rejects(a.createEphemeral('/r/e', ''), { name: 'KvUnavailable' });
    const ms = Date.now() - t0;
    t.ok(ms < 1000, `four calls rejected in ${ms} ms`);

    const before = fired;
    await zk().start();
    const t1 = Date.now();
    t.match(await waitFor(() => a.get('/r'), { what: 'calls to work again', timeoutMs: 30_000 }), { data: '', version: 0 });
    t.comment(`back ${Date.now() - t1} ms after imok; events: ${events.join(', ')}`);
    t.ok(a.isConnected());
    t.ok(events.includes('reconnected') || events.includes('connected'));
    await waitFor(() => fired > before, { what: 'listeners to fire once after the reconnect' });

    const b = await open(t, root);
    const again = fired;
    await b.commit([{ type: 'create', path: '/r/y', data: '' }]);
    await waitFor(() => fired > again, { what: 'the re-armed watch to fire' });
  });
});

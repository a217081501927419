/** ZkSession options (zk/options.ts) and the handshake deadline (zk/supervisor.ts): pure rules, no ZooKeeper needed. */
import t from 'tap';
import { hex, resolveOptions, usableCredentials, validatePath } from './options.js';
import { TICK_MS, handshakeDeadlineMs } from './supervisor.js';

t.test('resolveOptions: defaults, and bad servers or chroots refused', async (t) => {
  const o = resolveOptions({ servers: ['zk1:2181'], chroot: '/ts' });
  t.same(
    { servers: o.servers, s: o.sessionTimeoutMs, c: o.connectTimeoutMs, call: o.callTimeoutMs, kind: o.watchKind('/x') },
    { servers: ['zk1:2181'], s: 10_000, c: 10_000, call: 5_000, kind: 'both' },
  );
  t.equal(resolveOptions({ servers: ['a:1'], chroot: '/ts', callTimeoutMs: 7 }).callTimeoutMs, 7);
  t.throws(() => resolveOptions({ servers: [], chroot: '/ts' }), /no ZooKeeper servers/);
  t.throws(() => resolveOptions({ servers: ['[::1]:2181'], chroot: '/ts' }), /not host:port/);
  t.throws(() => resolveOptions({ servers: ['zk1'], chroot: '/ts' }), /not host:port/);
  t.throws(() => resolveOptions({ servers: ['zk1:2181'], chroot: '/' }), /must not be "\/"/);
  t.throws(() => resolveOptions({ servers: ['zk1:2181'], chroot: 'ts' }), /invalid ZooKeeper path/);
});

t.test('validatePath follows the library rules', async (t) => {
  for (const ok of ['/', '/a', '/a/b.c']) t.doesNotThrow(() => validatePath(ok), ok);
  for (const bad of ['', 'a', '/a/', '//a', '/a/./b', '/a/../b']) t.throws(() => validatePath(bad), bad);
});

t.test('usableCredentials: only an 8-byte id and a 16-byte password in lower-case hex', async (t) => {
  const good = { id: '0123456789abcdef', password: '00112233445566778899aabbccddeeff' };
  t.equal(usableCredentials(good), good);
  t.equal(usableCredentials(undefined), undefined);
  t.equal(usableCredentials({ ...good, id: '0123' }), undefined);
  t.equal(usableCredentials({ ...good, password: good.password.toUpperCase() }), undefined);
});

t.test('hex pads a session id to 16 digits', async (t) => {
  t.equal(hex(Buffer.from([0x01, 0x02])), '0000000000000102');
  t.equal(hex(Buffer.alloc(8)), '0000000000000000');
});

t.test('handshake deadline: a third of the timeout per server when resuming (≥ 1 s), the timeout per server otherwise (≥ 2 s)', async (t) => {
  t.equal(TICK_MS, 250);
  t.equal(handshakeDeadlineMs(10_000, 1, true), 3333);
  t.equal(handshakeDeadlineMs(10_000, 3, true), 1111);
  t.equal(handshakeDeadlineMs(6_000, 3, true), 1000);
  t.equal(handshakeDeadlineMs(10_000, 1, false), 10_000);
  t.equal(handshakeDeadlineMs(10_000, 3, false), 3333);
  t.equal(handshakeDeadlineMs(4_000, 3, false), 2000);
});

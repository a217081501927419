import t, { type Test } from 'tap';
import { Resolver, type ResolverOptions } from './resolver.js';
import { StaticNameView } from './static-name-view.js';
import {
  closedByPeer,
  decodeReply,
  FakeUpstream,
  frame,
  idOf,
  LOOPBACK,
  query,
  readFrames,
  recordingLog,
  tcpAsk,
  tcpConnect,
  udpAsk,
  udpSpray,
} from '../../test/helpers/dns-testkit.js';

const view = new StaticNameView(
  [
    { endpointId: 'e1', network: 'net1', containerId: 'c-client', name: 'client', aliases: [], ipv4: LOOPBACK },
    { endpointId: 'e2', network: 'net1', containerId: 'c-web1', name: 'web1', aliases: ['web'], ipv4: '10.1.0.2' },
  ],
  { net1: 'frontend' },
);

/** Deterministic pseudo-random bytes (LCG), so a failure can be replayed. */
const rng = (seed: number) => {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  };
  return { byte: next, bytes: (n: number): Buffer => Buffer.from(Array.from({ length: n }, next)) };
};

const header = (id: number, qdcount: number, ancount = 0, arcount = 0): Buffer => {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(qdcount, 4);
  h.writeUInt16BE(ancount, 6);
  h.writeUInt16BE(arcount, 10);
  return h;
};
const TAIL = Buffer.from([0, 1, 0, 1]); // type A, class IN
const valid = query('web1');

/** Malformed packets whose header is readable: each must get FORMERR. */
const formerrs: Array<[string, Buffer]> = [
  ['huge qdcount', Buffer.concat([header(101, 65535), valid.subarray(12)])],
  ['qdcount 0', header(102, 0)],
  ['two questions', Buffer.concat([header(103, 2), valid.subarray(12), valid.subarray(12)])],
  ['self-pointing name', Buffer.concat([header(104, 1), Buffer.from([0xc0, 0x0c]), TAIL])],
  ['pointer loop after a label', Buffer.concat([header(105, 1), Buffer.from([1, 97, 0xc0, 0x0c]), TAIL])],
  ['forward pointer', Buffer.concat([header(106, 1), Buffer.from([0xc0, 0xff]), TAIL])],
  ['label past the end', Buffer.concat([header(107, 1), Buffer.from([0x3f, 97])])],
  ['reserved label type', Buffer.concat([header(108, 1), Buffer.from([0x41, 97, 0]), TAIL])],
  ['name too long', Buffer.concat([header(109, 1), Buffer.from(Array.from({ length: 130 }, () => [1, 97]).flat()), Buffer.from([0]), TAIL])],
  ['question without type', Buffer.concat([header(110, 1), Buffer.from([1, 97, 0])])],
  ['answer with a pointer loop', Buffer.concat([header(111, 1, 1), valid.subarray(12), Buffer.from([0xc0, 0x1d, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4])])],
  ['OPT with bogus rdlength', Buffer.concat([header(112, 1, 0, 1), valid.subarray(12), Buffer.from([0, 0, 41, 16, 0, 0, 0, 0, 0, 0xff, 0xff])])],
];

const start = async (t: Test, opts: Partial<ResolverOptions> = {}) => {
  const log = recordingLog();
  const r = new Resolver({ view, upstreams: [], log, tcpIdleTimeoutMs: 300, ...opts });
  const { port } = await r.start({ address: LOOPBACK, port: 0 });
  t.teardown(() => r.stop());
  return { r, port, log };
};

const stillAnswers = async (t: Test, port: number): Promise<void> => {
  t.match(decodeReply(await udpAsk(port, query('web1'))).answers, [{ data: '10.1.0.2' }], 'UDP still answers');
  const [reply] = await tcpAsk(port, [query('web')]);
  t.match(decodeReply(reply!).answers, [{ data: '10.1.0.2' }], 'TCP still answers');
};

t.test('respond() never throws on random and mutated packets', async (t) => {
  const { r, log } = await start(t, { upstreamTimeoutMs: 50 });
  const rand = rng(1);
  let replies = 0;
  for (let i = 0; i < 4000; i++) {
    let packet: Buffer;
    if (i % 2 === 0) packet = rand.bytes(rand.byte() + (i % 3) * 256);
    else {
      packet = Buffer.from(valid);
      for (let k = 0; k < 1 + (i % 4); k++) packet[rand.byte() % packet.length] = rand.byte();
    }
    const reply = await r.respond(packet, LOOPBACK, i % 3 === 0 ? 'tcp' : 'udp');
    if (reply !== undefined) {
      replies++;
      if (idOf(reply) !== idOf(packet) || (reply.readUInt16BE(2) & 0x8000) === 0) t.fail(`bad reply to packet ${i}`);
    }
  }
  t.ok(replies > 0);
  t.same(log.entries.filter((e) => e.level === 'error'), [], 'no handler failed');
});

t.test('malformed packets with a readable header get FORMERR', async (t) => {
  const { r, port } = await start(t);
  for (const [what, packet] of formerrs) {
    const reply = await udpAsk(port, packet);
    t.equal(idOf(reply), idOf(packet), `${what}: same id`);
    t.equal(reply.readUInt16BE(2) & 0x800f, 0x8001, `${what}: response, FORMERR`);
  }
  t.equal(r.counters.formerr, formerrs.length);
  for (let n = 0; n < 12; n++) await t.rejects(udpAsk(port, valid.subarray(0, Math.max(n, 2)), 150), `${n}-byte packet dropped`);
});

t.test('UDP and TCP barrage: the resolver keeps answering', async (t) => {
  const u = new FakeUpstream();
  await u.start();
  t.teardown(() => u.stop());
  // every packet comes from one address: the per-client rate (its own test in resolver-limits.test.ts) is lifted here
  const { r, port, log } = await start(t, { upstreams: [`${LOOPBACK}:${u.port}`], upstreamTimeoutMs: 200, clientRate: 1_000_000 });
  const rand = rng(7);

  const junk = [
    ...Array.from({ length: 300 }, (_, i) => rand.bytes(i % 600)),
    ...Array.from({ length: 12 }, (_, n) => valid.subarray(0, n)),
    ...formerrs.map(([, p]) => p),
  ];
  await udpSpray(port, junk);

  // Zero-length and header-less frames are ignored; the valid query after them is answered.
  const conn = await tcpConnect(port);
  const replies = readFrames(conn, 1);
  conn.write(Buffer.concat([Buffer.from([0, 0, 0, 0]), frame(Buffer.from([1, 2, 3])), frame(query('web1', 'A', { id: 4242 }))]));
  const [only] = await replies;
  t.equal(idOf(only!), 4242);
  conn.destroy();

  // Framed garbage and malformed queries, then an unframed random stream.
  const g = await tcpConnect(port);
  g.on('data', () => {});
  g.write(Buffer.concat([...junk.slice(0, 100), ...formerrs.map(([, p]) => p)].map(frame)));
  g.write(rand.bytes(3000));
  const gClosed = closedByPeer(g, 3000);

  // Half-open: a partial frame, then FIN → the server closes its side.
  const half = await tcpConnect(port);
  half.end(Buffer.from([0x00, 0x40, 1, 2, 3]));
  await closedByPeer(half, 1000);

  // Partial frame without FIN → idle timeout closes it.
  const idle = await tcpConnect(port);
  idle.write(Buffer.from([0x00, 0x40, 1]));
  await closedByPeer(idle, 2000);
  await gClosed;

  // Many pipelined queries on one connection (more than the in-flight bound).
  const many = Array.from({ length: 100 }, (_, i) => query(i % 2 ? 'web1' : 'example.com', 'A', { id: 5000 + i }));
  const got = await tcpAsk(port, many);
  t.same(got.map(idOf).sort(), many.map(idOf).sort(), 'all 100 answered');

  await stillAnswers(t, port);
  t.ok(r.counters.formerr > 0 && r.counters.dropped > 0 && r.counters.answered > 0 && r.counters.forwarded > 0, JSON.stringify(r.counters));
  t.same(log.entries.filter((e) => e.level === 'error'), [], 'no handler failed');
});

t.test('TCP connections are bounded and idle ones closed', async (t) => {
  const { port } = await start(t, { maxTcpConnections: 3, tcpIdleTimeoutMs: 400 });
  const held = await Promise.all([1, 2, 3].map(() => tcpConnect(port)));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const extra = await tcpConnect(port);
  await closedByPeer(extra, 1000);
  t.pass('connection over the limit closed');
  await Promise.all(held.map((s) => closedByPeer(s, 2000)));
  t.pass('idle connections closed');
  await stillAnswers(t, port);
});

t.test('stop() is clean with queries in flight', async (t) => {
  const { createSocket } = await import('node:dgram');
  const silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, LOOPBACK, () => resolve()));
  t.teardown(() => silent.close());
  const log = recordingLog();
  const r = new Resolver({ view, upstreams: [`${LOOPBACK}:${silent.address().port}`], log });
  const { port } = await r.start({ address: LOOPBACK, port: 0 });
  const pending = udpAsk(port, query('example.com'), 500).catch(() => 'no reply');
  const conn = await tcpConnect(port);
  conn.write(frame(query('example.com')));
  await new Promise((resolve) => setTimeout(resolve, 50));
  await r.stop();
  await closedByPeer(conn, 1000);
  t.equal(await pending, 'no reply');
  t.same(log.entries.filter((e) => e.level === 'error'), []);
  // Restartable.
  const again = await r.start({ address: LOOPBACK, port: 0 });
  t.match(decodeReply(await udpAsk(again.port, query('web1'))).answers, [{ data: '10.1.0.2' }]);
  await r.stop();
});

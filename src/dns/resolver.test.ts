import t, { type Test } from 'tap';
import dnsPacket from 'dns-packet';
import { type Metrics, noMetrics } from '../metrics/metrics.js';
import type { NameRecord } from './name-view.js';
import { clientAddress, Resolver, type ResolverOptions } from './resolver.js';
import { StaticNameView } from './static-name-view.js';
import { decodeReply, deadPort, FakeUpstream, LOOPBACK, query, recordingLog, tcpAsk, udpAsk } from '../../test/helpers/dns-testkit.js';

const rec = (network: string, containerId: string, name: string, ipv4: string, aliases: string[] = []): NameRecord => ({
  endpointId: `${containerId}-${network}`,
  network,
  containerId,
  name,
  aliases,
  ipv4,
});

// The test client's own address, 127.0.0.1, is an endpoint on net1.
const records: NameRecord[] = [
  rec('net1', 'c-client', 'client', LOOPBACK),
  { ...rec('net1', 'c-web1', 'web1', '10.1.0.2', ['web']), ipv6: 'fd00:1::2' },
  rec('net2', 'c-db', 'db', '10.2.0.5'),
  // 30 records answer "many" (> 512 bytes, < 1232), 80 answer "lots" (> 1232).
  ...Array.from({ length: 80 }, (_, i) => rec('net1', `c-n${i}`, `n${i}`, `10.1.1.${i + 1}`, i < 30 ? ['many', 'lots'] : ['lots'])),
];
const view = new StaticNameView(records, { net1: 'frontend', net2: 'backend' });

const start = async (t: Test, opts: Partial<ResolverOptions> = {}) => {
  const log = recordingLog();
  const r = new Resolver({ view, upstreams: [], log, ...opts });
  const { port } = await r.start({ address: LOOPBACK, port: 0 });
  t.teardown(() => r.stop());
  return { r, port, log };
};

const upstream = async (t: Test): Promise<FakeUpstream> => {
  const u = new FakeUpstream();
  await u.start();
  t.teardown(() => u.stop());
  return u;
};

const TC = dnsPacket.TRUNCATED_RESPONSE;
const AA = dnsPacket.AUTHORITATIVE_ANSWER;

t.test('answers visible names over UDP and TCP', async (t) => {
  const { r, port } = await start(t);
  const q = query('WEB1.frontend.', 'A');
  const reply = decodeReply(await udpAsk(port, q));
  t.equal(reply.id, q.readUInt16BE(0));
  t.equal(reply.type, 'response');
  t.equal(reply.rcode, 'NOERROR');
  t.ok((reply.flags ?? 0) & AA, 'authoritative');
  t.ok(reply.flag_rd && reply.flag_ra);
  t.match(reply.answers, [{ type: 'A', name: 'WEB1.frontend', data: '10.1.0.2', ttl: 5 }]);
  t.match(reply.questions, [{ name: 'WEB1.frontend', type: 'A' }]);

  const [a, b, c] = await tcpAsk(port, [query('web', 'AAAA'), query('2.0.1.10.in-addr.arpa', 'PTR'), query('web1', 'MX')]);
  t.match(decodeReply(a!).answers, [{ type: 'AAAA', data: 'fd00:1::2' }]);
  t.match(decodeReply(b!).answers, [{ type: 'PTR', data: 'web1' }]);
  t.match(decodeReply(c!), { rcode: 'NOERROR', answers: [] }, 'NODATA');
  t.same({ answered: r.counters.answered, forwarded: r.counters.forwarded }, { answered: 4, forwarded: 0 });
});

t.test('forwards names that are not ours to the upstream, unchanged', async (t) => {
  const u = await upstream(t);
  const { r, port } = await start(t, { upstreams: [`${LOOPBACK}:${u.port}`] });
  for (const name of ['example.com', 'db']) {
    const q = query(name, 'A');
    const reply = decodeReply(await udpAsk(port, q));
    t.equal(reply.id, q.readUInt16BE(0), 'same id');
    t.match(reply.answers, [{ type: 'A', name, data: u.address, ttl: 60 }], `${name}: upstream's answer`);
    t.notOk((reply.flags ?? 0) & AA, 'relayed as is');
  }
  t.equal(u.udpQueries, 2);
  const [viaTcp] = await tcpAsk(port, [query('example.org', 'A')]);
  t.match(decodeReply(viaTcp!).answers, [{ data: u.address }]);
  t.equal(u.tcpQueries, 1, 'TCP queries are forwarded over TCP');
  t.equal(r.counters.forwarded, 3);
});

t.test('unknown querier: everything is forwarded', async (t) => {
  const u = await upstream(t);
  const { port } = await start(t, { upstreams: [`${LOOPBACK}:${u.port}`], view: new StaticNameView(records.slice(1)) });
  const reply = decodeReply(await udpAsk(port, query('web1', 'A')));
  t.match(reply.answers, [{ data: u.address }]);
});

t.test('tries upstreams in turn; SERVFAIL fast when all are dead', async (t) => {
  const u = await upstream(t);
  const dead = `${LOOPBACK}:${await deadPort()}`;
  const { r, port } = await start(t, { upstreams: [dead, 'not-an-address', `${LOOPBACK}:${u.port}`] });
  t.match(decodeReply(await udpAsk(port, query('example.com'))).answers, [{ data: u.address }]);
  t.match(decodeReply((await tcpAsk(port, [query('example.com')]))[0]!).answers, [{ data: u.address }]);

  const { r: r2, port: port2 } = await start(t, { upstreams: [dead, dead] });
  const t0 = Date.now();
  const q = query('example.com');
  const reply = decodeReply(await udpAsk(port2, q));
  t.equal(reply.rcode, 'SERVFAIL');
  t.equal(reply.id, q.readUInt16BE(0));
  t.match(reply.questions, [{ name: 'example.com', type: 'A' }], 'question echoed');
  t.equal(decodeReply((await tcpAsk(port2, [query('example.com')]))[0]!).rcode, 'SERVFAIL');
  t.ok(Date.now() - t0 < 1000, `fast (${Date.now() - t0} ms)`);
  t.equal(r2.counters.servfail, 2);
  t.equal(r.counters.servfail, 0);
});

t.test('SERVFAIL after the upstream timeout when it never answers', async (t) => {
  const { createSocket } = await import('node:dgram');
  const silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, LOOPBACK, () => resolve()));
  t.teardown(() => silent.close());
  const { r, port } = await start(t, { upstreams: [`${LOOPBACK}:${silent.address().port}`], upstreamTimeoutMs: 200 });
  const t0 = Date.now();
  t.equal(decodeReply(await udpAsk(port, query('example.com'))).rcode, 'SERVFAIL');
  t.ok(Date.now() - t0 >= 190, 'waited for the timeout');
  t.equal(r.counters.servfail, 1);
});

t.test('no upstreams: SERVFAIL for names that are not ours', async (t) => {
  const { port } = await start(t);
  t.equal(decodeReply(await udpAsk(port, query('example.com'))).rcode, 'SERVFAIL');
});

t.test('big UDP answers are truncated (TC); TCP and EDNS get them whole', async (t) => {
  const { port } = await start(t);
  const plain = await udpAsk(port, query('many'));
  t.ok(plain.length <= 512);
  t.ok((decodeReply(plain).flags ?? 0) & TC, 'TC without EDNS');
  t.same(decodeReply(plain).answers, []);

  const edns = decodeReply(await udpAsk(port, query('many', 'A', { edns: 4096 })));
  t.notOk((edns.flags ?? 0) & TC, 'fits the EDNS size');
  t.equal(edns.answers?.length, 30);
  t.match(edns.additionals, [{ type: 'OPT' }], 'EDNS answered with OPT');

  const lots = await udpAsk(port, query('lots', 'A', { edns: 4096 }));
  t.ok(lots.length <= 1232 && (decodeReply(lots).flags ?? 0) & TC, 'capped at 1232 bytes');

  const [viaTcp] = await tcpAsk(port, [query('lots')]);
  t.notOk((decodeReply(viaTcp!).flags ?? 0) & TC);
  t.equal(decodeReply(viaTcp!).answers?.length, 80);
});

t.test('NOTIMP for other opcodes; responses are never answered', async (t) => {
  const { r, port } = await start(t);
  const status = query('web1');
  status.writeUInt16BE(status.readUInt16BE(2) | (2 << 11), 2);
  t.equal(decodeReply(await udpAsk(port, status)).rcode, 'NOTIMP');
  const response = query('web1');
  response.writeUInt16BE(response.readUInt16BE(2) | 0x8000, 2);
  await t.rejects(udpAsk(port, response, 300));
  t.equal(r.counters.dropped, 1);
});

t.test('bind errors reject start() with a clear message', async (t) => {
  const { port } = await start(t);
  const log = recordingLog();
  const busy = new Resolver({ view, upstreams: [], log });
  await t.rejects(busy.start({ address: LOOPBACK, port }), { code: 'EADDRINUSE', message: /cannot listen on udp 127\.0\.0\.1:\d+/ });
  // An address of no local interface (bind only: nothing is sent).
  await t.rejects(busy.start({ address: '192.0.2.1', port: 0 }), { code: 'EADDRNOTAVAIL', message: /dns resolver cannot listen/ });
  await busy.stop();
});

t.test('clientAddress unwraps IPv4-mapped addresses', async (t) => {
  t.equal(clientAddress('::ffff:10.1.0.2'), '10.1.0.2');
  t.equal(clientAddress('FD00:1:0::2'), 'fd00:1::2');
  t.equal(clientAddress('10.1.0.2'), '10.1.0.2');
});

t.test('metrics: every query by transport, and what became of it', async (t) => {
  const u = await upstream(t);
  const seen: string[] = [];
  const metrics: Metrics = { ...noMetrics, dnsQuery: (transport) => seen.push(transport), dnsOutcome: (o) => seen.push(o) };
  const { r, port } = await start(t, { upstreams: [`${LOOPBACK}:${u.port}`], metrics });
  await udpAsk(port, query('web1.frontend.', 'A'));
  await udpAsk(port, query('example.org.', 'A'));
  await tcpAsk(port, [query('web1.frontend.', 'A')]);
  t.same(seen, ['udp', 'answered', 'udp', 'forwarded', 'tcp', 'answered']);
  t.equal(await r.respond(Buffer.from([1, 2, 3]), LOOPBACK, 'udp'), undefined, 'a runt is dropped');
  t.same(seen.slice(-2), ['udp', 'dropped']);
  t.same(
    { answered: r.counters.answered, forwarded: r.counters.forwarded, dropped: r.counters.dropped },
    { answered: 2, forwarded: 1, dropped: 1 },
    'the counters say the same',
  );
});

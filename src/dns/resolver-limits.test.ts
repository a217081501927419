/** The resolver's per-client limits (client-limits.ts) seen from its clients. */
import t from 'tap';
import { createSocket } from 'node:dgram';
import { Resolver } from './resolver.js';
import { StaticNameView } from './static-name-view.js';
import { decodeReply, LOOPBACK, query, recordingLog } from '../../test/helpers/dns-testkit.js';

const view = new StaticNameView(
  [
    { endpointId: 'e1', network: 'net1', containerId: 'c1', name: 'flooder', aliases: [], ipv4: '10.1.0.2' },
    { endpointId: 'e2', network: 'net1', containerId: 'c2', name: 'quiet', aliases: [], ipv4: '10.1.0.3' },
    { endpointId: 'e3', network: 'net1', containerId: 'c3', name: 'web', aliases: [], ipv4: '10.1.0.4' },
  ],
  { net1: 'frontend' },
);

t.test('one source flooding does not stop another source being answered', async (t) => {
  const now = 5_000_000; // a frozen clock: no refill during the test
  const log = recordingLog();
  const r = new Resolver({ view, upstreams: [], log, clientRate: 50, limitsNow: () => now });
  const flood = await Promise.all(Array.from({ length: 1000 }, (_, i) => r.respond(query('web', 'A', { id: i }), '10.1.0.2', 'udp')));
  const answered = flood.filter((x) => x !== undefined).length;
  t.equal(answered, 100, 'the flooder gets its burst (2 x 50) answered, no more');
  t.equal(r.counters.limited, 900, 'the rest dropped and counted');
  const quiet = await Promise.all(Array.from({ length: 12 }, (_, i) => r.respond(query('web', 'A', { id: 9000 + i }), '10.1.0.3', 'udp')));
  t.equal(quiet.filter((x) => x !== undefined && (decodeReply(x).answers?.[0] as { data?: unknown } | undefined)?.data === '10.1.0.4').length, 12, 'all 12 lookups of the other container answered');
  const warned = log.entries.filter((e) => e.msg === 'dns client over its query rate; queries dropped');
  t.equal(warned.length, 1, 'one log line for the flooder, not 900');
  t.match(warned[0]?.obj, { source: '10.1.0.2', dropped: 1, rate: 50, burst: 100 });
});

t.test('one source cannot hold the whole forwarding budget', async (t) => {
  const silent = createSocket('udp4'); // an upstream that never answers
  await new Promise<void>((resolve) => silent.bind(0, LOOPBACK, () => resolve()));
  t.teardown(() => silent.close());
  const r = new Resolver({ view, upstreams: [`${LOOPBACK}:${silent.address().port}`], log: recordingLog(), maxForwards: 8, upstreamTimeoutMs: 300 });
  const pending = Array.from({ length: 6 }, (_, i) => r.respond(query('example.com', 'A', { id: i }), '10.1.0.2', 'udp'));
  const quick = await Promise.race([Promise.all(pending.slice(2)), new Promise((resolve) => setTimeout(() => resolve('slow'), 200))]);
  t.not(quick, 'slow', 'beyond its share (8 / 4 = 2 in flight) a source gets SERVFAIL at once');
  t.same((quick as Buffer[]).map((b) => decodeReply(b).rcode), ['SERVFAIL', 'SERVFAIL', 'SERVFAIL', 'SERVFAIL']);
  const other = r.respond(query('example.org', 'A', { id: 77 }), '10.1.0.3', 'udp');
  const raced = await Promise.race([other.then(() => 'done'), new Promise((resolve) => setTimeout(() => resolve('waiting upstream'), 150))]);
  t.equal(raced, 'waiting upstream', 'another source still gets a forward slot (it waits for the upstream, no instant refusal)');
  await Promise.all([...pending, other]);
});

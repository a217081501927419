import t from 'tap';
import type { Answer, Packet, RecordType } from 'dns-packet';
import { formatIp } from '../net/ip.js';
import { decide, DEFAULT_TTL, normalizeName, reverseNameToIp, type Decision } from './answer.js';
import type { NameRecord } from './name-view.js';
import { StaticNameView } from './static-name-view.js';

const rec = (r: Partial<NameRecord> & Pick<NameRecord, 'network' | 'containerId' | 'name'>): NameRecord => ({
  endpointId: `${r.containerId}-${r.network}`,
  aliases: [],
  ...r,
});

// net1 "frontend": web1, web2, api, client; net2 "backend": api, db; net3 "isolated": secret.
const view = new StaticNameView(
  [
    rec({ network: 'net1', containerId: 'c-web1', name: 'web1', aliases: ['web', 'www'], ipv4: '10.1.0.2', ipv6: 'fd00:1::2' }),
    rec({ network: 'net1', containerId: 'c-web2', name: 'web2', aliases: ['web'], ipv4: '10.1.0.3' }),
    rec({ network: 'net1', containerId: 'c-api', name: 'api', ipv4: '10.1.0.4' }),
    rec({ network: 'net2', containerId: 'c-api', name: 'api', aliases: ['backend-api'], ipv4: '10.2.0.4' }),
    rec({ network: 'net2', containerId: 'c-db', name: 'db', ipv4: '10.2.0.5' }),
    rec({ network: 'net3', containerId: 'c-secret', name: 'secret', ipv4: '10.3.0.6' }),
    rec({ network: 'net1', containerId: 'c-client', name: 'client', ipv4: '10.1.0.10', ipv6: 'fd00:1::10' }),
  ],
  { net1: 'frontend', net2: 'backend', net3: 'isolated' },
);

const CLIENT = '10.1.0.10';
const API = '10.2.0.4';

const ask = (name: string, type: RecordType | 'ANY' = 'A', from = CLIENT, klass = 'IN'): Decision =>
  decide({ questions: [{ name, type: type as RecordType, class: klass as 'IN' }] } satisfies Packet, from, view);

const data = (d: Decision): unknown[] => (d.kind === 'answer' ? d.answers.map((a) => (a as { data: unknown }).data) : ['FORWARD']);
const sorted = (d: Decision): unknown[] => data(d).map(String).sort();

t.test('names resolve to the addresses of every visible record', async (t) => {
  t.same(data(ask('web1')), ['10.1.0.2']);
  t.same(sorted(ask('web')), ['10.1.0.2', '10.1.0.3'], 'same alias on two containers: all addresses');
  t.same(data(ask('www')), ['10.1.0.2']);
  t.same(data(ask('client')), ['10.1.0.10'], 'a container resolves itself');
  const d = ask('web1');
  t.equal(d.kind, 'answer');
  const a = (d as { answers: Answer[] }).answers[0] as { ttl: number; name: string; type: string; class: string };
  t.match(a, { ttl: DEFAULT_TTL, name: 'web1', type: 'A', class: 'IN' });
  t.ok(DEFAULT_TTL <= 10, 'short TTL');
});

t.test('case-insensitive, trailing dot, NAME.NETWORK', async (t) => {
  t.same(data(ask('WeB1.')), ['10.1.0.2']);
  const d = ask('WEB1.FrontEnd.');
  t.same(data(d), ['10.1.0.2']);
  t.equal((d as { answers: Answer[] }).answers[0]?.name, 'WEB1.FrontEnd.', 'answer echoes the question name');
  t.same(sorted(ask('web.frontend')), ['10.1.0.2', '10.1.0.3'], 'alias.NETWORK');
  t.same(data(ask('web1.backend')), ['FORWARD'], 'web1 is not on backend');
  t.same(data(ask('web1.net1')), ['FORWARD'], 'cluster keys are not DNS names');
  t.same(data(ask('web1.frontend.example')), ['FORWARD']);
});

t.test('visibility follows shared networks', async (t) => {
  t.same(data(ask('db')), ['FORWARD'], 'client shares no network with db');
  t.same(data(ask('secret')), ['FORWARD']);
  t.same(data(ask('db.backend')), ['FORWARD']);
  t.same(data(ask('api')), ['10.1.0.4'], 'only the record on the shared network');
  t.same(data(ask('backend-api')), ['FORWARD'], 'alias given on a network client is not on');
  // api is on both networks: it sees both, from either of its addresses.
  t.same(data(ask('db', 'A', API)), ['10.2.0.5']);
  t.same(data(ask('web2', 'A', API)), ['10.1.0.3']);
  t.same(sorted(ask('api', 'A', '10.1.0.4')), ['10.1.0.4', '10.2.0.4']);
  t.same(data(ask('backend-api', 'A', '10.1.0.4')), ['10.2.0.4']);
  t.same(data(ask('secret', 'A', API)), ['FORWARD']);
});

t.test('unknown querier or name: forward', async (t) => {
  t.same(ask('web1', 'A', '192.0.2.7'), { kind: 'forward', reason: 'unknown-querier' });
  t.same(ask('2.0.1.10.in-addr.arpa', 'PTR', '192.0.2.7'), { kind: 'forward', reason: 'unknown-querier' });
  t.same(ask('example.com'), { kind: 'forward', reason: 'unknown-name' });
  t.same(ask('.'), { kind: 'forward', reason: 'unknown-name' });
  t.same(ask('web1', 'A', CLIENT, 'CH'), { kind: 'forward', reason: 'class' });
  t.same(decide({ questions: [] }, CLIENT, view), { kind: 'forward', reason: 'not-one-question' });
});

t.test('AAAA, ANY and NODATA', async (t) => {
  t.same(data(ask('web1', 'AAAA')), ['fd00:1::2']);
  t.same(ask('web2', 'AAAA'), { kind: 'answer', answers: [] }, 'known name without IPv6: NODATA');
  t.same(ask('web1', 'MX'), { kind: 'answer', answers: [] }, 'MX: NODATA, not forward');
  t.same(ask('WEB.frontend', 'TXT'), { kind: 'answer', answers: [] });
  t.same(sorted(ask('web1', 'ANY')), ['10.1.0.2', 'fd00:1::2']);
  t.same(data(ask('web1', 'AAAA', 'FD00:0001:0:0:0:0:0:0010')), ['fd00:1::2'], 'IPv6 querier, any spelling');
});

t.test('PTR for visible endpoint addresses', async (t) => {
  const d = ask('2.0.1.10.in-addr.arpa', 'PTR');
  t.same(data(d), ['web1']);
  t.match((d as { answers: Answer[] }).answers[0], { type: 'PTR', name: '2.0.1.10.in-addr.arpa', ttl: DEFAULT_TTL });
  t.same(data(ask('2.0.1.10.IN-ADDR.ARPA.', 'PTR')), ['web1']);
  const v6 = '2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa';
  t.same(data(ask(v6, 'PTR')), ['web1']);
  t.same(data(ask(v6.toUpperCase(), 'PTR')), ['web1']);
  t.same(ask('5.0.2.10.in-addr.arpa', 'PTR'), { kind: 'forward', reason: 'unknown-name' }, 'db not visible');
  t.same(data(ask('5.0.2.10.in-addr.arpa', 'PTR', API)), ['db']);
  t.same(ask('9.9.9.10.in-addr.arpa', 'PTR'), { kind: 'forward', reason: 'unknown-name' });
  t.same(ask('0.1.10.in-addr.arpa', 'PTR'), { kind: 'forward', reason: 'unknown-name' }, 'partial reverse name');
  t.same(ask('2.0.1.10.in-addr.arpa', 'A'), { kind: 'answer', answers: [] }, 'reverse name, other type: NODATA');
});

t.test('rotation and ttl options', async (t) => {
  const q: Packet = { questions: [{ name: 'web', type: 'A' }] };
  const first = (rotate: number): unknown => data(decide(q, CLIENT, view, { rotate }))[0];
  t.not(first(0), first(1), 'rotating changes the first address');
  t.equal(first(0), first(2));
  const d = decide(q, CLIENT, view, { ttl: 1 });
  t.ok(d.kind === 'answer' && d.answers.every((a) => (a as { ttl?: number }).ttl === 1));
});

t.test('helpers', async (t) => {
  t.equal(normalizeName('Foo.Bar.'), 'foo.bar');
  t.equal(normalizeName('.'), '');
  t.equal(formatIp(reverseNameToIp('4.3.2.1.in-addr.arpa')!), '1.2.3.4');
  t.equal(reverseNameToIp('256.3.2.1.in-addr.arpa'), undefined);
  t.equal(reverseNameToIp('x.3.2.1.in-addr.arpa'), undefined);
  t.equal(reverseNameToIp('1.0.ip6.arpa'), undefined);
  t.equal(formatIp(reverseNameToIp(`1.${'0.'.repeat(31)}ip6.arpa`)!), '::1');
});

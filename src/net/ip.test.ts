import t from 'tap';
import { canonicalIp, contains, containsCidr, formatCidr, formatIp, overlaps, parseCidr, parseIp, usableRange } from './ip.js';

t.test('parse and format round trip', async (t) => {
  for (const s of ['10.20.0.5', '0.0.0.0', '255.255.255.255', 'fd00:60::5', '::', '::1', '2001:db8:0:1:1:1:1:1', 'fe80::1:0:0:1']) {
    const ip = parseIp(s);
    t.ok(ip, s);
    t.equal(formatIp(ip!), s, s);
  }
  t.equal(canonicalIp('FD00:0060:0000:0000:0000:0000:0000:0005'), 'fd00:60::5');
  t.equal(canonicalIp('::ffff:10.0.0.1'), '::ffff:a00:1');
  t.equal(parseIp('10.0.0.256'), undefined);
  t.equal(parseIp('nope'), undefined);
});

t.test('cidr parsing clears host bits and rejects junk', async (t) => {
  t.equal(formatCidr(parseCidr('10.20.0.5/24')!), '10.20.0.0/24');
  t.equal(formatCidr(parseCidr('fd00:60::1/64')!), 'fd00:60::/64');
  t.equal(parseCidr('10.0.0.0/33'), undefined);
  t.equal(parseCidr('10.0.0.0'), undefined);
  t.equal(parseCidr('x/8'), undefined);
});

t.test('contains / overlaps', async (t) => {
  const a = parseCidr('10.20.0.0/24')!;
  t.ok(contains(a, parseIp('10.20.0.255')!));
  t.notOk(contains(a, parseIp('10.20.1.0')!));
  t.notOk(contains(a, parseIp('fd00::1')!));
  t.ok(overlaps(a, parseCidr('10.20.0.128/25')!));
  t.ok(overlaps(a, parseCidr('10.0.0.0/8')!));
  t.notOk(overlaps(a, parseCidr('10.20.1.0/24')!));
  t.ok(containsCidr(a, parseCidr('10.20.0.128/25')!));
  t.notOk(containsCidr(parseCidr('10.20.0.128/25')!, a));
});

t.test('usable range skips network and broadcast', async (t) => {
  const r = usableRange(parseCidr('10.20.0.0/24')!);
  t.equal(formatIp({ family: 4, value: r.first }), '10.20.0.1');
  t.equal(formatIp({ family: 4, value: r.last }), '10.20.0.254');
  const p2p = usableRange(parseCidr('10.20.0.0/31')!);
  t.equal(p2p.last - p2p.first, 1n);
  const v6 = usableRange(parseCidr('fd00::/126')!);
  t.equal(formatIp({ family: 6, value: v6.first }), 'fd00::1');
  t.equal(formatIp({ family: 6, value: v6.last }), 'fd00::3');
});

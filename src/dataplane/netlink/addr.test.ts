import t from 'tap';
import { bytesToIp, bytesToMac, canonicalIp, ipToBytes, isMulticastIp, isUnicastMac, macToBytes } from './addr.js';

t.test('canonical IPv4', async (t) => {
  t.same(canonicalIp('192.168.77.2'), { address: '192.168.77.2', family: 4 });
  t.same(canonicalIp('0.0.0.0'), { address: '0.0.0.0', family: 4 });
  for (const bad of ['192.168.77', '192.168.77.256', '010.1.1.1', '1.2.3.4.5', '1.2.3.-1', ' 1.2.3.4', '1.2.3.4/24', 'eth0', '']) {
    t.equal(canonicalIp(bad), undefined, JSON.stringify(bad));
  }
});

t.test('canonical IPv6 (RFC 5952)', async (t) => {
  const cases: [string, string][] = [
    ['fd77::2', 'fd77::2'],
    ['FD77:0:0::0002', 'fd77::2'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run wins
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ];
  for (const [input, want] of cases) t.same(canonicalIp(input), { address: want, family: 6 }, input);
  for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'fe80::1%eth0', ':1', '1:2:3:4:5:6:7::8:9', 'g::1', '1.2.3.4::']) {
    t.equal(canonicalIp(bad), undefined, bad);
  }
});

t.test('bytes round trip', async (t) => {
  t.same(ipToBytes('192.168.77.2'), Buffer.from([192, 168, 77, 2]));
  t.equal(ipToBytes('fd77::2')?.length, 16);
  t.equal(bytesToIp(ipToBytes('fd77::2') ?? Buffer.alloc(0)), 'fd77::2');
  t.equal(bytesToIp(Buffer.from([10, 0, 255, 1])), '10.0.255.1');
  t.equal(bytesToIp(Buffer.alloc(4)), '0.0.0.0');
  t.throws(() => bytesToIp(Buffer.alloc(5)));
});

t.test('MAC', async (t) => {
  t.same(macToBytes('02:42:AC:11:00:02'), Buffer.from([2, 0x42, 0xac, 0x11, 0, 2]));
  t.equal(bytesToMac(Buffer.from([2, 0x42, 0xac, 0x11, 0, 2])), '02:42:ac:11:00:02');
  for (const bad of ['02:42:ac:11:00', '02-42-ac-11-00-02', '0242ac110002', '02:42:ac:11:00:0g']) {
    t.equal(macToBytes(bad), undefined, bad);
  }
  t.ok(isUnicastMac(Buffer.from([2, 0, 0, 0, 0, 1])));
  t.notOk(isUnicastMac(Buffer.from([1, 0, 0x5e, 0, 0, 1])), 'multicast');
  t.notOk(isUnicastMac(Buffer.alloc(6)), 'zero');
});

t.test('isMulticastIp', async (t) => {
  for (const ip of ['224.0.0.1', '239.255.255.255', 'ff02::1', 'ff05::42']) t.ok(isMulticastIp(ipToBytes(ip) ?? Buffer.alloc(0)), ip);
  for (const ip of ['223.255.255.255', '240.0.0.1', '10.0.0.1', 'fe80::1', 'fd00::ff']) t.notOk(isMulticastIp(ipToBytes(ip) ?? Buffer.alloc(0)), ip);
  t.notOk(isMulticastIp(Buffer.alloc(5)), 'not an address');
});

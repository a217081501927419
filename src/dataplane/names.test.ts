import t from 'tap';
import {
  bridgeName,
  containerIfName,
  hostIfName,
  IFNAME_MAX,
  isOwnedName,
  isValidIfname,
  OWNED_PREFIX,
  parseOwnedName,
  vxlanName,
} from './names.js';

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
const DOCKER_ID = '3f1e9c0b2a4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7';

t.test('network device names', async (t) => {
  for (const vni of [1, 0x2a, 0x1000, 0xabcdef, 0xffffff]) {
    for (const [name, kind] of [
      [bridgeName(vni), 'bridge'],
      [vxlanName(vni), 'vxlan'],
    ] as const) {
      t.ok(bytes(name) <= IFNAME_MAX, `${name} fits IFNAMSIZ`);
      t.ok(name.startsWith(OWNED_PREFIX), `${name} carries the prefix`);
      t.ok(isOwnedName(name), `${name} is owned and valid`);
      t.same(parseOwnedName(name), { kind, vni }, `${name} parses back`);
    }
  }
  t.equal(bridgeName(0x2a), 'tsbr-00002a');
  t.equal(vxlanName(0xffffff), 'tsvx-ffffff');
  t.not(bridgeName(1), vxlanName(1));
});

t.test('endpoint device names', async (t) => {
  const host = hostIfName(DOCKER_ID);
  const ctr = containerIfName(DOCKER_ID);
  t.equal(host, 'tsh3f1e9c0b2a4');
  t.equal(ctr, 'tsc3f1e9c0b2a4');
  for (const name of [host, ctr]) {
    t.ok(bytes(name) <= IFNAME_MAX, `${name} fits IFNAMSIZ`);
    t.ok(isOwnedName(name));
  }
  t.same(parseOwnedName(host), { kind: 'host', stem: '3f1e9c0b2a4' });
  t.same(parseOwnedName(ctr), { kind: 'container', stem: '3f1e9c0b2a4' });
  t.equal(hostIfName('ABC-DEF-0123-4567'), 'tshabcdef01234', 'lower-cased, separators dropped');
  t.equal(hostIfName('abcdef'), 'tshabcdef', 'six characters are enough');
  t.same(parseOwnedName(hostIfName('abcdef')), { kind: 'host', stem: 'abcdef' });
  t.throws(() => hostIfName('ab-c'), /too short/);
  t.throws(() => containerIfName(''), /too short/);
});

t.test('names that are not ours', async (t) => {
  for (const name of ['eth0', 'docker0', 'tsbr-xyz', 'tsbr-0000001', 'tsvx-00002A', 'tsh12345', 'ts', 'tsq0123456789']) {
    t.equal(parseOwnedName(name), undefined, name);
  }
  t.notOk(isOwnedName('eth0'));
  t.notOk(isOwnedName('ts-way-too-long-name'));
});

t.test('isValidIfname follows dev_valid_name', async (t) => {
  for (const ok of ['eth0', 'a', 'x'.repeat(15), 'br-1.2', 'ul0@x']) t.ok(isValidIfname(ok), ok);
  for (const bad of ['', '.', '..', 'x'.repeat(16), 'a/b', 'a:b', 'a b', 'a\tb', 'é'.repeat(8)]) {
    t.notOk(isValidIfname(bad), JSON.stringify(bad));
  }
});

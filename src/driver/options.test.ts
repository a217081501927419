import t from 'tap';
import { isTsoverlayError } from '../errors.js';
import { chooseMtu, endpointMac, normalizeMac, parseNetworkOptions } from './options.js';

const underlay = { ifname: 'eth0', mtu: 1500, family: 4 as const };

t.test('options: defaults and known keys', async (t) => {
  const o = parseNetworkOptions({ 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {} });
  t.same(o, { generic: {}, internal: false, ipv6: false });
  const o2 = parseNetworkOptions({
    'com.docker.network.internal': true,
    'com.docker.network.generic': { 'com.docker.network.driver.mtu': '1400', 'tsoverlay.vni': '77' },
  });
  t.equal(o2.mtu, 1400);
  t.equal(o2.vni, 77);
  t.equal(o2.internal, true);
  t.same(parseNetworkOptions(undefined), { generic: {}, internal: false, ipv6: false });
});

t.test('options: the mode', async (t) => {
  const mode = (v: string) => parseNetworkOptions({ 'com.docker.network.generic': { 'tsoverlay.mode': v } });
  t.equal(mode('macvlan').mode, 'macvlan');
  t.equal(mode('bridge').mode, 'bridge');
  t.same(mode('bridge').generic, { 'tsoverlay.mode': 'bridge' }, 'kept among the options as given');
  t.equal(parseNetworkOptions({}).mode, undefined, "not given: the node's --default-mode decides");
  t.throws(() => mode('ipvlan'), { code: 'INVALID_OPTION', message: 'tsoverlay.mode="ipvlan" must be bridge or macvlan' });
});

t.test('options: every problem is reported at once', async (t) => {
  try {
    parseNetworkOptions({ 'com.docker.network.generic': { mtu: '1400', 'com.docker.network.driver.mtu': 'big', 'tsoverlay.vni': '0' } });
    t.fail('should throw');
  } catch (e) {
    t.ok(isTsoverlayError(e, 'INVALID_OPTION'));
    const m = (e as Error).message;
    t.match(m, /unknown driver option "mtu"/);
    t.match(m, /com.docker.network.driver.mtu="big" is not a whole number/);
    t.match(m, /tsoverlay.vni="0" must be/);
  }
  t.throws(() => parseNetworkOptions({ 'com.docker.network.generic': 'x' }), /must be an object/);
});

t.test('mtu: automatic, override, refused above the maximum', async (t) => {
  t.equal(chooseMtu(undefined, underlay, false), 1450);
  t.equal(chooseMtu(undefined, { ...underlay, mtu: 9000 }, false), 8950);
  t.equal(chooseMtu(undefined, { ...underlay, family: 6 }, false), 1430);
  t.equal(chooseMtu(1400, underlay, false), 1400);
  t.throws(() => chooseMtu(1451, underlay, false), /above the maximum 1450 .*eth0 MTU 1500/);
  t.throws(() => chooseMtu(60, underlay, false), /below the minimum 68/);
  t.throws(() => chooseMtu(1200, underlay, true), /below the minimum 1280 for an IPv6 network/);
});

t.test('mac helpers', async (t) => {
  t.equal(normalizeMac('02-AA-bb-cc-dd-ee'), '02:aa:bb:cc:dd:ee');
  t.equal(normalizeMac('zz:aa:bb:cc:dd:ee'), undefined);
  t.equal(endpointMac('10.20.0.5/24', 'abc'), '02:42:0a:14:00:05');
  t.match(endpointMac(undefined, 'f80e0567aabbcc'), /^02:42:f8:0e:05:67$/);
});

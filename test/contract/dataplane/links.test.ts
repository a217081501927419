/**
 * Dataplane contract, links: underlay discovery, a network's devices and an
 * endpoint's in both layouts, replacing incompatible devices, concurrent
 * ensures (fake and real adapter: harness.ts).
 */
import type { Test } from 'tap';
import type { EndpointDevices, NetworkDevices, ObservedLink, TableRoute } from '../../../src/dataplane/dataplane.js';
import { bridgeName, vxlanName } from '../../../src/dataplane/names.js';
import {
  asMacvlan,
  asMacvlanEndpoint,
  byName,
  type ContractEnv,
  epSpec,
  MAC_A,
  MAC_RE,
  netSpec,
  PEER1,
  R,
  runDataplaneContract,
  TABLE,
  UNDERLAY,
  V4,
  V6,
} from './harness.js';

const linksContract = (t: Test, env: ContractEnv): void => {
  const { dp } = env;

  t.test('resolveUnderlay', async (t) => {
    const byIp = await dp.resolveUnderlay(V4);
    t.match(byIp, { ifname: UNDERLAY, address: V4, family: 4, mtu: env.underlayMtu });
    t.ok(byIp.ifindex > 0, 'ifindex');
    t.same(await dp.resolveUnderlay(UNDERLAY), byIp, 'by interface name: its first global IPv4');
    t.same(await dp.resolveUnderlay('fd77:0:0::0002'), { ...byIp, address: V6, family: 6 }, 'by IPv6, any spelling');
    await t.rejects(dp.resolveUnderlay('10.9.9.9'), {
      code: 'INVALID_OPTION',
      message: '--advertise 10.9.9.9: no interface on this host holds that address',
    });
    await t.rejects(dp.resolveUnderlay('nosuch0'), {
      code: 'INVALID_OPTION',
      message: '--advertise nosuch0: no such interface on this host, and not an IP address',
    });
    await t.rejects(dp.resolveUnderlay('10.0.0.0/8'), {
      code: 'INVALID_OPTION',
      message: '--advertise 10.0.0.0/8: not an IP address or interface name',
    });
    await t.rejects(dp.resolveUnderlay(undefined), {
      code: 'INVALID_OPTION',
      message: 'no default route on this host; set --advertise to an IP or interface name',
    });
    await env.setDefaultRoute(true);
    try {
      t.same(await dp.resolveUnderlay(undefined), byIp, 'by the default route');
    } finally {
      await env.setDefaultRoute(false);
    }
  });

  for (const port of [4789, 4790]) {
    t.test(`ensureNetwork creates bridge + VXLAN (port ${port}) and is idempotent`, async (t) => {
      const ul = await dp.resolveUnderlay(UNDERLAY);
      const spec = netSpec(port === 4789 ? 0x2a : 0xabcdef, port, ul, env);
      await dp.ensureNetwork(spec);
      const links = await byName(dp);
      t.same([...links.keys()].sort(), [spec.bridge, spec.vxlan], 'exactly the two devices');
      const br = links.get(spec.bridge);
      t.match(br, { kind: 'bridge', mtu: spec.mtu, up: true, mac: MAC_RE });
      t.equal(br?.master, undefined, 'bridge has no master');
      const vx = links.get(spec.vxlan);
      t.match(vx, { kind: 'vxlan', mtu: spec.mtu, up: true, master: spec.bridge });
      t.same(vx?.vxlan, { vni: spec.vni, port, local: V4, link: ul.ifindex, learning: false, proxy: true });

      const before = await dp.listOwnedLinks();
      await dp.ensureNetwork(spec);
      t.same(await dp.listOwnedLinks(), before, 'second ensure changes nothing (same indexes)');
    });
  }

  t.test('ensureNetwork recreates a VXLAN device whose VNI, port or local changed', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const a = netSpec(0x100, 4789, ul, env);
    await dp.ensureNetwork(a);
    const first = await byName(dp);
    const steps: [string, NetworkDevices, Partial<NonNullable<ObservedLink['vxlan']>>][] = [
      ['vni', { ...a, vni: 0x101 }, { vni: 0x101, port: 4789, local: V4 }],
      ['port', { ...a, vni: 0x101, port: 4790 }, { vni: 0x101, port: 4790, local: V4 }],
      ['local (IPv6)', { ...a, vni: 0x101, port: 4790, local: 'fd77:0::2', mtu: env.underlayMtu - 70 }, { local: V6 }],
    ];
    let prev = first;
    for (const [what, spec, want] of steps) {
      await dp.ensureNetwork(spec);
      const now = await byName(dp);
      t.equal(now.get(a.bridge)?.index, first.get(a.bridge)?.index, `${what}: bridge kept`);
      t.not(now.get(a.vxlan)?.index, prev.get(a.vxlan)?.index, `${what}: vxlan recreated`);
      t.match(now.get(a.vxlan), { master: a.bridge, up: true, mtu: spec.mtu, vxlan: { ...want, learning: false, proxy: true } });
      t.equal(now.get(a.bridge)?.mtu, spec.mtu, `${what}: bridge MTU`);
      const before = await dp.listOwnedLinks();
      await dp.ensureNetwork(spec);
      t.same(await dp.listOwnedLinks(), before, `${what}: then idempotent`);
      prev = now;
    }
  });

  for (const mode of [undefined, 'macvlan'] as const) {
    t.test(`ensureNetwork changes local in place (${mode ?? 'bridge'} mode): entries and macvlans stay`, async (t) => {
      const ul = await dp.resolveUnderlay(UNDERLAY);
      const bridged = netSpec(0x120, 4789, ul, env);
      const a: NetworkDevices = mode ? asMacvlan(bridged) : bridged;
      await dp.ensureNetwork(a);
      const veth = epSpec('c4a9ed0000000001', bridged, '02:42:c0:a8:01:05');
      const ep: EndpointDevices = mode ? asMacvlanEndpoint(veth, a.vxlan) : veth;
      await dp.ensureEndpoint(ep);
      await dp.addFdb(a.vxlan, { mac: MAC_A, dst: PEER1 });
      const first = await byName(dp);
      // a new underlay address (the link, and learning, change the same way: spec.test.ts)
      const moved: NetworkDevices = { ...a, local: '192.168.77.3' };
      t.equal(await dp.ensureNetwork(moved), false, 'not created');
      const now = await byName(dp);
      t.same([...now.values()].map((l) => l.index).sort(), [...first.values()].map((l) => l.index).sort(), 'every device kept (same indexes)');
      t.match(now.get(a.vxlan)?.vxlan, { local: '192.168.77.3', link: ul.ifindex, learning: false, proxy: true, vni: a.vni, port: 4789 });
      t.same((await dp.listForwarding(a.vxlan)).fdb, [{ mac: MAC_A, dst: PEER1 }], 'entries kept');
      const before = await dp.listOwnedLinks();
      await dp.ensureNetwork(moved);
      t.same(await dp.listOwnedLinks(), before, 'then idempotent');
      await dp.ensureNetwork(a);
      t.match((await byName(dp)).get(a.vxlan), { index: first.get(a.vxlan)?.index, vxlan: { local: V4 } }, 'and back');
    });
  }

  t.test('ensureNetwork converges the MTU in place', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const a = netSpec(0x110, 4789, ul, env);
    await dp.ensureNetwork(a);
    const first = await byName(dp);
    await dp.ensureNetwork({ ...a, mtu: a.mtu - 100 });
    const now = await byName(dp);
    for (const name of [a.bridge, a.vxlan]) {
      t.equal(now.get(name)?.index, first.get(name)?.index, `${name} kept`);
      t.equal(now.get(name)?.mtu, a.mtu - 100, `${name} MTU`);
    }
  });

  t.test('ensureNetwork replaces devices of the wrong kind', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const a = netSpec(0x300, 4789, ul, env);
    await env.addVethPair(a.bridge, 'tsjunk300');
    await env.addVethPair(a.vxlan, 'tsjunk301');
    await dp.ensureNetwork(a);
    const links = await byName(dp);
    t.same([...links.keys()].sort(), [a.bridge, a.vxlan], 'strays and their peers are gone');
    t.match(links.get(a.bridge), { kind: 'bridge', up: true });
    t.match(links.get(a.vxlan), { kind: 'vxlan', master: a.bridge, vxlan: { vni: 0x300 } });
  });

  t.test('a VNI+port used by another VXLAN device is a KERNEL_CONFLICT', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const a = netSpec(0x400, 4789, ul, env);
    await dp.ensureNetwork(a);
    const b = { ...netSpec(0x401, 4789, ul, env), vni: 0x400 };
    await t.rejects(dp.ensureNetwork(b), {
      code: 'KERNEL_CONFLICT',
      message: `create vxlan ${b.vxlan}: EEXIST (VNI 1024 on UDP port 4789 is already used by ${a.vxlan})`,
    });
    await dp.ensureNetwork({ ...b, port: 4790 });
    t.match((await byName(dp)).get(b.vxlan), { vxlan: { vni: 0x400, port: 4790 } }, 'same VNI on another port is fine');
  });

  t.test('a VXLAN MTU above what the underlay allows is refused before any change', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const a = netSpec(0x500, 4789, ul, env);
    const tooBig = { ...a, mtu: env.underlayMtu - 49 };
    const message = `ensure network ${a.bridge}: MTU ${tooBig.mtu} is above ${a.mtu}, the most VXLAN over IPv4 allows on underlay ${UNDERLAY} (MTU ${env.underlayMtu})`;
    await t.rejects(dp.ensureNetwork(tooBig), { code: 'INVALID_OPTION', message });
    t.same(await dp.listOwnedLinks(), [], 'nothing created');
    await dp.ensureNetwork(a);
    const before = await dp.listOwnedLinks();
    await t.rejects(dp.ensureNetwork(tooBig), { code: 'INVALID_OPTION', message }, 'nor changed');
    t.same(await dp.listOwnedLinks(), before);
    await t.rejects(dp.ensureNetwork({ ...a, local: V6, mtu: env.underlayMtu - 69 }), {
      code: 'INVALID_OPTION',
      message: /the most VXLAN over IPv6 allows/,
    });
    await t.rejects(dp.ensureNetwork({ ...a, underlayIndex: 9999 }), {
      code: 'KERNEL_FAILURE',
      message: `ensure network ${a.bridge}: underlay interface #9999 does not exist`,
    });
  });

  t.test('invalid specs are INVALID_OPTION and touch nothing', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const a = netSpec(0x510, 4789, ul, env);
    const bad: [string, NetworkDevices][] = [
      ['vni 0', { ...a, vni: 0 }],
      ['vni too big', { ...a, vni: 0x1000000 }],
      ['port 0', { ...a, port: 0 }],
      ['foreign bridge name', { ...a, bridge: 'br0' }],
      ['name too long', { ...a, vxlan: 'tsvx-0000000000000' }],
      ['local not an IP', { ...a, local: 'ul0' }],
      ['mtu', { ...a, mtu: 10 }],
    ];
    for (const [what, spec] of bad) await t.rejects(dp.ensureNetwork(spec), { code: 'INVALID_OPTION' }, what);
    await dp.ensureNetwork(a);
    const ep = epSpec('0123456789abcdef', a, '02:42:c0:a8:00:05');
    await t.rejects(dp.ensureEndpoint({ ...ep, mac: '01:00:5e:00:00:01' }), { code: 'INVALID_OPTION' }, 'multicast MAC');
    await t.rejects(dp.ensureEndpoint({ ...ep, mac: '00:00:00:00:00:00' }), { code: 'INVALID_OPTION' }, 'zero MAC');
    await t.rejects(dp.ensureEndpoint({ ...ep, hostIf: 'veth0' }), { code: 'INVALID_OPTION' }, 'foreign name');
    t.same([...(await byName(dp)).keys()].sort(), [a.bridge, a.vxlan]);
  });

  t.test('ensureEndpoint creates, converges and survives the container end moving away', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const net = netSpec(0x600, 4789, ul, env);
    await dp.ensureNetwork(net);
    const ep = epSpec('a1b2c3d4e5f60718293a4b5c6d7e8f90', net, '02:42:c0:a8:00:05');
    await dp.ensureEndpoint(ep);
    let links = await byName(dp);
    const host = links.get(ep.hostIf);
    t.match(host, { kind: 'veth', master: net.bridge, up: true, mtu: ep.mtu, mac: MAC_RE });
    const ctr = links.get(ep.containerIf);
    t.match(ctr, { kind: 'veth', up: false, mtu: ep.mtu, mac: ep.mac });
    t.equal(ctr?.master, undefined, 'container end not enslaved');

    let before = await dp.listOwnedLinks();
    await dp.ensureEndpoint(ep);
    await dp.ensureEndpoint({ ...ep, mac: ep.mac.toUpperCase() });
    t.same(await dp.listOwnedLinks(), before, 'repeated ensures change nothing');

    await dp.ensureEndpoint({ ...ep, mtu: ep.mtu - 100 });
    links = await byName(dp);
    t.match(links.get(ep.hostIf), { index: host?.index, mtu: ep.mtu - 100, master: net.bridge }, 'host end MTU in place');
    t.match(links.get(ep.containerIf), { index: ctr?.index, mtu: ep.mtu - 100 }, 'container end MTU in place');

    await env.moveToSandbox(ep.containerIf);
    links = await byName(dp);
    t.notOk(links.has(ep.containerIf), 'container end gone from here');
    before = await dp.listOwnedLinks();
    await dp.ensureEndpoint({ ...ep, mtu: ep.mtu - 100 });
    t.same(await dp.listOwnedLinks(), before, 'ensure after the move changes nothing');

    const net2 = netSpec(0x601, 4789, ul, env);
    await dp.ensureNetwork(net2);
    await dp.ensureEndpoint({ ...ep, bridge: net2.bridge, mtu: ep.mtu - 100 });
    t.match((await byName(dp)).get(ep.hostIf), { index: host?.index, master: net2.bridge }, 'host end moved to another bridge');

    t.equal(await dp.deleteLink(ep.hostIf), true, 'delete host end');
    t.equal(await dp.deleteLink(ep.hostIf), false, 'delete again');
    t.notOk((await byName(dp)).has(ep.hostIf));
  });

  t.test('deleting one veth end removes both', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const net = netSpec(0x610, 4789, ul, env);
    await dp.ensureNetwork(net);
    const ep = epSpec('feedfacecafe0001', net, '02:42:c0:a8:00:06');
    await dp.ensureEndpoint(ep);
    t.equal(await dp.deleteLink(ep.containerIf), true);
    const links = await byName(dp);
    t.notOk(links.has(ep.hostIf) || links.has(ep.containerIf));
    t.equal(await dp.deleteLink(ep.hostIf), false);
    t.equal(await dp.deleteLink('tsnothere'), false);
    t.equal(await dp.deleteLink('x'.repeat(20)), false, 'impossible name');
  });

  t.test('ensureEndpoint replaces an orphaned container end', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const net = netSpec(0x620, 4789, ul, env);
    await dp.ensureNetwork(net);
    const ep = epSpec('0badc0de0badc0de', net, '02:42:c0:a8:00:07');
    await env.addVethPair(ep.containerIf, 'tsjunk620');
    await dp.ensureEndpoint(ep);
    const links = await byName(dp);
    t.notOk(links.has('tsjunk620'), 'old pair gone');
    t.match(links.get(ep.hostIf), { kind: 'veth', master: net.bridge, up: true });
    t.match(links.get(ep.containerIf), { kind: 'veth', mac: ep.mac, up: false });
  });

  t.test('ensureEndpoint needs the bridge', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const net = netSpec(0x630, 4789, ul, env);
    await t.rejects(dp.ensureEndpoint(epSpec('abcdefabcdef', net, '02:42:c0:a8:00:08')), {
      code: 'KERNEL_FAILURE',
      message: `ensure endpoint tshabcdefabcde: bridge ${net.bridge} does not exist`,
    });
    t.same(await dp.listOwnedLinks(), []);
  });

  t.test('macvlan mode: the VXLAN device on no bridge, the host macvlan and endpoint macvlans on it', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const bridged = netSpec(0x650, 4789, ul, env);
    const net = asMacvlan(bridged, '06:11:22:33:44:55');
    t.equal(await dp.ensureNetwork(net), true, 'VXLAN device created');
    let links = await byName(dp);
    t.same([...links.keys()].sort(), [net.hostMacvlan, net.vxlan], 'exactly the two devices');
    const vx = links.get(net.vxlan);
    t.match(vx, { kind: 'vxlan', mtu: net.mtu, up: true, vxlan: { vni: net.vni, port: 4789, learning: false, proxy: true } });
    t.equal(vx?.master, undefined, 'the VXLAN device is on no bridge');
    const host = links.get(net.hostMacvlan);
    t.match(host, { kind: 'macvlan', lower: net.vxlan, macvlanMode: 4, mtu: net.mtu, up: true, mac: net.hostMacvlanMac });
    // Linux 6.5+: broadcasts reach the macvlans inline, not through the port's queue
    t.equal(host?.macvlanBcCutoff, -1, 'broadcast cutoff -1 (no broadcast queue)');
    let before = await dp.listOwnedLinks();
    t.equal(await dp.ensureNetwork(net), false, 'ensured again: not created');
    t.same(await dp.listOwnedLinks(), before, 'second ensure changes nothing (same indexes)');

    await dp.ensureBridgeAddress(net.hostMacvlan, R);
    t.same((await byName(dp)).get(net.hostMacvlan)?.addresses, [R], "the resolver's address goes on the host macvlan");
    const route: TableRoute = { dst: '10.65.0.0/24', dev: net.hostMacvlan, src: R };
    await dp.ensureTableRoute(TABLE, route);
    t.same(await dp.listTableRoutes(TABLE), [route], "and its reply route, listed by the host macvlan's name");

    const veth = epSpec('a1b2c3d4e5f6aa55', bridged, '02:42:c0:a8:06:05');
    const ep = asMacvlanEndpoint(veth, net.vxlan);
    await dp.ensureEndpoint(ep);
    links = await byName(dp);
    t.notOk(links.has(veth.hostIf), 'no host end');
    const ctr = links.get(ep.containerIf);
    t.match(ctr, { kind: 'macvlan', lower: net.vxlan, macvlanMode: 4, macvlanBcCutoff: -1, up: false, mtu: net.mtu, mac: ep.mac });
    before = await dp.listOwnedLinks();
    await dp.ensureEndpoint(ep);
    t.same(await dp.listOwnedLinks(), before, 'repeated ensure changes nothing');
    await dp.ensureEndpoint({ ...ep, mtu: ep.mtu - 100, mac: '02:42:c0:a8:06:06' });
    t.match((await byName(dp)).get(ep.containerIf), { index: ctr?.index, mtu: ep.mtu - 100, mac: '02:42:c0:a8:06:06' }, 'MTU and MAC in place');

    await env.moveToSandbox(ep.containerIf);
    t.notOk((await byName(dp)).has(ep.containerIf), 'gone from here once in the container');
    before = await dp.listOwnedLinks();
    await dp.ensureNetwork(net);
    t.same(await dp.listOwnedLinks(), before, 'ensuring the network leaves it alone');

    const stray = asMacvlanEndpoint(epSpec('0badc0de0badc0d1', bridged, '02:42:c0:a8:06:07'), net.vxlan);
    await env.addVethPair(stray.containerIf, 'tsjunk650');
    await dp.ensureEndpoint(stray);
    links = await byName(dp);
    t.notOk(links.has('tsjunk650'), 'a veth in its place is replaced');
    t.match(links.get(stray.containerIf), { kind: 'macvlan', lower: net.vxlan });

    t.equal(await dp.deleteLink(net.vxlan), true);
    t.same(await dp.listOwnedLinks(), [], 'deleting the VXLAN device deletes every macvlan on it');
  });

  t.test('macvlan mode: switching a network between the layouts replaces the devices', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const bridged = netSpec(0x660, 4789, ul, env);
    const macvlan = asMacvlan(bridged);
    await dp.ensureNetwork(bridged);
    await dp.ensureNetwork(macvlan);
    let links = await byName(dp);
    t.match(links.get(bridged.bridge), { kind: 'macvlan', lower: bridged.vxlan });
    t.equal(links.get(bridged.vxlan)?.master, undefined, 'VXLAN device off the bridge');
    await dp.ensureNetwork(bridged);
    links = await byName(dp);
    t.match(links.get(bridged.bridge), { kind: 'bridge', up: true });
    t.match(links.get(bridged.vxlan), { kind: 'vxlan', master: bridged.bridge, up: true });
    t.same([...links.keys()].sort(), [bridged.bridge, bridged.vxlan], 'nothing else');
  });

  t.test('macvlan mode: an endpoint needs the VXLAN device', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const net = netSpec(0x670, 4789, ul, env);
    await t.rejects(dp.ensureEndpoint(asMacvlanEndpoint(epSpec('abcdefabcdef', net, '02:42:c0:a8:00:08'), net.vxlan)), {
      code: 'KERNEL_FAILURE',
      message: `ensure endpoint tscabcdefabcde: vxlan device ${net.vxlan} does not exist`,
    });
    await t.rejects(dp.ensureEndpoint(asMacvlanEndpoint(epSpec('abcdefabcdef', net, '02:42:c0:a8:00:08'), 'eth0')), { code: 'INVALID_OPTION' });
    t.same(await dp.listOwnedLinks(), []);
  });

  t.test('concurrent ensures', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const net = netSpec(0x640, 4789, ul, env);
    await Promise.all([dp.ensureNetwork(net), dp.ensureNetwork(net), dp.listOwnedLinks()]);
    const eps = Array.from({ length: 8 }, (_, i) => epSpec(`c0ffee${i}0000000`, net, `02:42:c0:a8:01:${(i + 16).toString(16)}`));
    await Promise.all([
      ...eps.map((ep) => dp.ensureEndpoint(ep)),
      dp.ensureEndpoint(eps[0] ?? eps[1]!), // the same endpoint twice at once
      dp.listOwnedLinks(),
      dp.resolveUnderlay(V4),
    ]);
    const links = await byName(dp);
    for (const ep of eps) {
      t.match(links.get(ep.hostIf), { kind: 'veth', master: net.bridge, up: true, mtu: net.mtu }, ep.hostIf);
      t.match(links.get(ep.containerIf), { kind: 'veth', mac: ep.mac, up: false }, ep.containerIf);
    }
    t.equal(links.size, 2 + 2 * eps.length, 'nothing else');
  });

};

runDataplaneContract(import.meta.url, linksContract, {
  afterInKernel: (t, logged) => {
    t.test('logs why it recreated devices', async (t) => {
      const warnings = logged.filter((l) => l.level === 'warn');
      t.match(
        warnings.find((l) => l.msg === 'recreating incompatible vxlan device'),
        { obj: { ifname: vxlanName(0x100), reason: 'vni 256, want 257' } },
      );
      t.match(
        warnings.find((l) => l.msg === 'recreating incompatible device'),
        { obj: { ifname: bridgeName(0x300), reason: 'kind is veth, want bridge' } },
      );
      t.ok(logged.some((l) => l.msg === 'created veth pair'), 'creations are logged at info');
    });
  },
});

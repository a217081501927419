/**
 * Contract suite of the Dataplane port: the same assertions run against
 * FakeDataplane (always) and NetlinkDataplane (with TSOVERLAY_IT=1, as root).
 *
 * Node cannot switch its own network namespace, so for the real adapter this
 * file re-executes itself: the parent creates a throw-away namespace
 * `tsct-<random>` with a veth underlay `ul0` (192.168.77.2/24, fd77::2/64; the
 * kernel here has no `dummy` driver) plus a "sandbox" namespace standing in
 * for a container, and runs this file under `nsenter --net=…` with
 * TSOVERLAY_NETNS_CHILD set (same node and tap loader flags, via `t.spawn`, so
 * the child's TAP output nests here). Both namespaces are deleted in
 * `t.teardown`, which also takes every device in them.
 *
 * The data-path test (real kernel only) builds two "hosts" (namespaces joined
 * by a veth underlay), each with its own NetlinkDataplane: this file again,
 * started under `nsenter` with TSOVERLAY_DP_SERVER set, answering dataplane
 * calls as JSON lines on stdin/stdout (`RemoteDataplane`). Containers are two
 * more namespaces; `ping` runs in them through `ip netns exec`.
 *
 * The resolver data-path test (real kernel only) builds one "host" namespace
 * with a network bridge and the resolver address R on it, a "container"
 * namespace on that bridge and an "outside" namespace on the underlay, runs
 * a UDP echo server bound to R in the host and asks it from each side, before
 * and after the firewall rules (`IptablesFirewall` running `iptables` in the
 * host namespace through `ip netns exec`).
 */
import { type ChildProcess, type ChildProcessByStdio, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import type {
  Dataplane,
  EndpointDevices,
  FdbEntry,
  Forwarding,
  NeighEntry,
  NetworkDevices,
  ObservedLink,
  TableRoute,
  Underlay,
} from '../../src/dataplane/dataplane.js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { IptablesFirewall, RESOLVER_COMMENT, runCommand } from '../../src/dataplane/firewall.js';
import { bridgeName, containerIfName, hostIfName, vxlanName } from '../../src/dataplane/names.js';
import { NetlinkDataplane } from '../../src/dataplane/netlink-dataplane.js';
import { sortForwarding } from '../../src/dataplane/spec.js';

const V4 = '192.168.77.2';
const V6 = 'fd77::2';
const UNDERLAY = 'ul0';
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** Entries of each kind in the bulk test (the scale the project targets). */
const BULK = 5000;

interface ContractEnv {
  /** For timing reports. */
  name: string;
  dp: Dataplane;
  /** A real kernel: it can refuse what the fake accepts (checked only there). */
  kernel: boolean;
  underlayMtu: number;
  setDefaultRoute(on: boolean): Promise<void>;
  /** Move a device into the sandbox namespace, as Docker does at Join. */
  moveToSandbox(ifname: string): Promise<void>;
  /** Create a veth pair behind the dataplane's back (leftovers of a crash). */
  addVethPair(name: string, peer: string): Promise<void>;
  /** Another writer on the same kernel (a second adapter instance: it shares no cache with `dp`). */
  other: Dataplane;
  /** Policy rules other than the kernel's, as `<priority> from <src> lookup <table>`, sorted. */
  rules(): Promise<string[]>;
  /** Remove every policy rule other than the kernel's. */
  flushRules(): Promise<void>;
}

interface ChildConfig {
  sandbox: string;
  mtu: number;
}

// ---------------------------------------------------------------- the suite

const byName = async (dp: Dataplane): Promise<Map<string, ObservedLink>> =>
  new Map((await dp.listOwnedLinks()).map((l) => [l.name, l]));

const removeOwned = async (dp: Dataplane): Promise<void> => {
  for (const l of await dp.listOwnedLinks()) await dp.deleteLink(l.name);
};

const netSpec = (vni: number, port: number, ul: Underlay, env: ContractEnv): NetworkDevices => ({
  vni,
  bridge: bridgeName(vni),
  vxlan: vxlanName(vni),
  port,
  local: ul.address,
  underlayIndex: ul.ifindex,
  mtu: env.underlayMtu - 50,
});

const epSpec = (id: string, net: NetworkDevices, mac: string): EndpointDevices => ({
  hostIf: hostIfName(id),
  containerIf: containerIfName(id),
  bridge: net.bridge,
  mtu: net.mtu,
  mac,
});

const contract = (t: Test, env: ContractEnv): void => {
  const { dp } = env;
  // Every subtest starts and ends with no devices of ours.
  t.beforeEach(() => removeOwned(dp));
  t.afterEach(() => removeOwned(dp));

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
      const a: NetworkDevices = { ...netSpec(0x120, 4789, ul, env), ...(mode ? { mode } : {}) };
      await dp.ensureNetwork(a);
      const ep: EndpointDevices = { ...epSpec('c4a9ed0000000001', a, '02:42:c0:a8:01:05'), ...(mode ? { macvlanOn: a.vxlan } : {}) };
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
    const net: NetworkDevices = { ...netSpec(0x650, 4789, ul, env), mode: 'macvlan', bridgeMac: '06:11:22:33:44:55' };
    t.equal(await dp.ensureNetwork(net), true, 'VXLAN device created');
    let links = await byName(dp);
    t.same([...links.keys()].sort(), [net.bridge, net.vxlan], 'exactly the two devices');
    const vx = links.get(net.vxlan);
    t.match(vx, { kind: 'vxlan', mtu: net.mtu, up: true, vxlan: { vni: net.vni, port: 4789, learning: false, proxy: true } });
    t.equal(vx?.master, undefined, 'the VXLAN device is on no bridge');
    const host = links.get(net.bridge);
    t.match(host, { kind: 'macvlan', lower: net.vxlan, macvlanMode: 4, mtu: net.mtu, up: true, mac: net.bridgeMac });
    // Linux 6.5+: broadcasts reach the macvlans inline, not through the port's queue
    t.equal(host?.macvlanBcCutoff, -1, 'broadcast cutoff -1 (no broadcast queue)');
    let before = await dp.listOwnedLinks();
    t.equal(await dp.ensureNetwork(net), false, 'ensured again: not created');
    t.same(await dp.listOwnedLinks(), before, 'second ensure changes nothing (same indexes)');

    await dp.ensureBridgeAddress(net.bridge, R);
    t.same((await byName(dp)).get(net.bridge)?.addresses, [R], "the resolver's address goes on the host macvlan");
    const route: TableRoute = { dst: '10.65.0.0/24', dev: net.bridge, src: R };
    await dp.ensureTableRoute(TABLE, route);
    t.same(await dp.listTableRoutes(TABLE), [route], "and its reply route, listed by the host macvlan's name");

    const ep: EndpointDevices = { ...epSpec('a1b2c3d4e5f6aa55', net, '02:42:c0:a8:06:05'), macvlanOn: net.vxlan };
    await dp.ensureEndpoint(ep);
    links = await byName(dp);
    t.notOk(links.has(ep.hostIf), 'no host end');
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

    const stray = { ...epSpec('0badc0de0badc0d1', net, '02:42:c0:a8:06:07'), macvlanOn: net.vxlan };
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
    const macvlan: NetworkDevices = { ...bridged, mode: 'macvlan' };
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
    await t.rejects(dp.ensureEndpoint({ ...epSpec('abcdefabcdef', net, '02:42:c0:a8:00:08'), macvlanOn: net.vxlan }), {
      code: 'KERNEL_FAILURE',
      message: `ensure endpoint tscabcdefabcde: vxlan device ${net.vxlan} does not exist`,
    });
    await t.rejects(dp.ensureEndpoint({ ...epSpec('abcdefabcdef', net, '02:42:c0:a8:00:08'), macvlanOn: 'eth0' }), { code: 'INVALID_OPTION' });
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

  forwardingContract(t, env);
  routingContract(t, env);

  t.test('leaves nothing behind', async (t) => {
    t.same(await dp.listOwnedLinks(), []);
    t.same(await dp.listTableRoutes(TABLE), [], 'no routes (they went with the devices)');
    t.same(await env.rules(), [], 'no rules');
  });
};

// ------------------------------------------------------ forwarding entries

const ZERO = '00:00:00:00:00:00';
const MAC_A = '02:42:0a:14:00:05';
const MAC_B = '02:42:0a:14:00:06';
const MAC_C = '02:42:0a:14:00:07';
/** Remote VTEPs: any address works, the kernel does not check reachability. */
const PEER1 = '192.168.77.10';
const PEER2 = '192.168.77.11';
const PEER3 = '192.168.77.12';
const EMPTY: Forwarding = { fdb: [], neigh: [] };

/** The n-th of many distinct unicast MACs / IPs, for the bulk test. */
const nthMac = (n: number): string => `02:43:00:${[(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
const nthIp = (n: number): string => `10.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${n & 0xff}`;
const nthPeer = (n: number): string => `192.168.${100 + (n % 50)}.${1 + (n % 200)}`;

const forwardingContract = (t: Test, env: ContractEnv): void => {
  const { dp } = env;

  const network = async (vni: number, extra: Partial<NetworkDevices> = {}): Promise<NetworkDevices> => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const spec = { ...netSpec(vni, 4789, ul, env), ...extra };
    await dp.ensureNetwork(spec);
    return spec;
  };

  t.test('FDB and neighbour entries: add, list, re-add, replace, delete (IPv4 and IPv6)', async (t) => {
    const net = await network(0x700);
    t.same(await dp.listForwarding(net.vxlan), EMPTY, 'a new device has none of ours');

    await dp.addFdb(net.vxlan, { mac: MAC_A, dst: PEER1 });
    await dp.addFdb(net.vxlan, { mac: MAC_B, dst: PEER2 });
    await dp.addNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_A });
    await dp.addNeigh(net.vxlan, { ip: 'fd20::5', mac: MAC_A });
    await dp.addNeigh(net.vxlan, { ip: '10.20.0.6', mac: MAC_B });
    const want: Forwarding = {
      fdb: [
        { mac: MAC_A, dst: PEER1 },
        { mac: MAC_B, dst: PEER2 },
      ],
      neigh: [
        { ip: '10.20.0.5', mac: MAC_A },
        { ip: '10.20.0.6', mac: MAC_B },
        { ip: 'fd20::5', mac: MAC_A },
      ],
    };
    t.same(await dp.listForwarding(net.vxlan), want, 'listed, sorted (IPv4 before IPv6)');

    await dp.addFdb(net.vxlan, { mac: MAC_A.toUpperCase(), dst: PEER1 });
    await dp.addNeigh(net.vxlan, { ip: 'FD20:0:0::0005', mac: MAC_A.toUpperCase() });
    await dp.addNeigh(net.vxlan, { ip: '10.20.0.6', mac: MAC_B });
    t.same(await dp.listForwarding(net.vxlan), want, 're-adding (any spelling) changes nothing');

    await dp.addFdb(net.vxlan, { mac: MAC_A, dst: PEER3 });
    await dp.addNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_C });
    t.same(
      await dp.listForwarding(net.vxlan),
      {
        fdb: [
          { mac: MAC_A, dst: PEER3 },
          { mac: MAC_B, dst: PEER2 },
        ],
        neigh: [
          { ip: '10.20.0.5', mac: MAC_C },
          { ip: '10.20.0.6', mac: MAC_B },
          { ip: 'fd20::5', mac: MAC_A },
        ],
      },
      'a unicast MAC has one dst and an IP one MAC: adding replaces',
    );

    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: PEER1 }), false, 'delete with a dst the MAC no longer has');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_C, dst: PEER1 }), false, 'delete an unknown MAC');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: PEER3 }), true, 'delete');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: PEER3 }), false, 'delete again');
    t.equal(await dp.deleteNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_A }), false, 'the IP maps to another MAC now: kept');
    t.equal(await dp.deleteNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_C }), true);
    t.equal(await dp.deleteNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_C }), false, 'delete again');
    t.equal(await dp.deleteNeigh(net.vxlan, { ip: 'fd20:0::5', mac: MAC_A }), true, 'IPv6, any spelling');
    t.equal(await dp.deleteNeigh(net.vxlan, { ip: '10.20.0.99', mac: MAC_A }), false, 'never existed');
    t.same(await dp.listForwarding(net.vxlan), {
      fdb: [{ mac: MAC_B, dst: PEER2 }],
      neigh: [{ ip: '10.20.0.6', mac: MAC_B }],
    });
    t.same(await dp.listOwnedLinks().then((l) => l.map((x) => x.name).sort()), [net.bridge, net.vxlan], 'no device touched');
  });

  t.test('all-zero MAC: one entry per remote node, deleting one keeps the others', async (t) => {
    const net = await network(0x710);
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER1 });
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER2 });
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER1 }); // replay
    await dp.addFdb(net.vxlan, { mac: MAC_A, dst: PEER1 }); // a unicast entry to the same node
    t.same((await dp.listForwarding(net.vxlan)).fdb, [
      { mac: ZERO, dst: PEER1 },
      { mac: ZERO, dst: PEER2 },
      { mac: MAC_A, dst: PEER1 },
    ]);
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER3 }), false, 'a dst it does not have');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER1 }), true);
    t.same((await dp.listForwarding(net.vxlan)).fdb, [
      { mac: ZERO, dst: PEER2 },
      { mac: MAC_A, dst: PEER1 },
    ]);
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER1 }), false, 'delete again');
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER1 });
    t.equal((await dp.listForwarding(net.vxlan)).fdb.length, 3, 'added back');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER2 }), true);
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER1 }), true, 'the last one');
    t.same((await dp.listForwarding(net.vxlan)).fdb, [{ mac: MAC_A, dst: PEER1 }]);
  });

  t.test('an IPv6 underlay takes IPv6 dsts only', async (t) => {
    const net = await network(0x720, { local: V6, mtu: env.underlayMtu - 70 });
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: 'fd77::10' });
    await dp.addFdb(net.vxlan, { mac: MAC_A, dst: 'FD77:0::11' });
    t.same((await dp.listForwarding(net.vxlan)).fdb, [
      { mac: ZERO, dst: 'fd77::10' },
      { mac: MAC_A, dst: 'fd77::11' },
    ]);
    await t.rejects(dp.addFdb(net.vxlan, { mac: MAC_B, dst: PEER1 }), {
      code: 'INVALID_OPTION',
      message: `FDB entry on ${net.vxlan}: dst ${PEER1} is IPv4 but the device's local address is IPv6`,
    });
    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: PEER1 }), false, 'an entry of the other family cannot exist');
    t.equal(await dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: 'fd77::11' }), true);
  });

  t.test('entries live and die with their VXLAN device', async (t) => {
    const net = await network(0x730);
    const entries = async (): Promise<void> => {
      await dp.addFdb(net.vxlan, { mac: MAC_A, dst: PEER1 });
      await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER1 });
      await dp.addNeigh(net.vxlan, { ip: '10.20.0.5', mac: MAC_A });
      await dp.addNeigh(net.vxlan, { ip: 'fd20::5', mac: MAC_A });
    };
    await entries();
    const full = await dp.listForwarding(net.vxlan);
    t.equal(full.fdb.length + full.neigh.length, 4);
    await dp.ensureNetwork(net);
    await dp.ensureNetwork({ ...net, mtu: net.mtu - 10 });
    t.same(await dp.listForwarding(net.vxlan), full, 'kept by a compatible ensure (MTU converged in place)');
    await dp.ensureNetwork({ ...net, port: 4790 });
    t.same(await dp.listForwarding(net.vxlan), EMPTY, 'gone when the device is recreated');
    await entries();
    t.equal(await dp.deleteLink(net.vxlan), true);
    await dp.ensureNetwork(net);
    t.same(await dp.listForwarding(net.vxlan), EMPTY, 'gone with a deleted device');
  });

  t.test('forwarding calls need one of our VXLAN devices and valid entries', async (t) => {
    const net = await network(0x740);
    const missing = vxlanName(0x741);
    const fdb: FdbEntry = { mac: MAC_A, dst: PEER1 };
    const neigh: NeighEntry = { ip: '10.20.0.5', mac: MAC_A };
    const gone = (op: string, name = missing) => ({ code: 'KERNEL_FAILURE', message: `${op} ${name}: no such vxlan device` });
    await t.rejects(dp.listForwarding(missing), gone('list forwarding'));
    await t.rejects(dp.addFdb(missing, fdb), gone('add fdb'));
    await t.rejects(dp.deleteFdb(missing, fdb), gone('delete fdb'));
    await t.rejects(dp.addNeigh(missing, neigh), gone('add neighbour'));
    await t.rejects(dp.deleteNeigh(missing, neigh), gone('delete neighbour'));
    const notVxlan = (op: string) => ({ code: 'KERNEL_FAILURE', message: `${op} ${net.bridge}: not a vxlan device (kind bridge)` });
    await t.rejects(dp.listForwarding(net.bridge), notVxlan('list forwarding'));
    await t.rejects(dp.addFdb(net.bridge, fdb), notVxlan('add fdb'));
    await t.rejects(dp.addNeigh(net.bridge, neigh), notVxlan('add neighbour'));

    const bad: [string, () => Promise<unknown>][] = [
      ['foreign device', () => dp.listForwarding('eth0')],
      ['foreign device (add)', () => dp.addFdb('eth0', fdb)],
      ['multicast MAC', () => dp.addFdb(net.vxlan, { mac: '01:00:5e:00:00:01', dst: PEER1 })],
      ['MAC not a MAC', () => dp.addFdb(net.vxlan, { mac: '02:42', dst: PEER1 })],
      ['dst not an IP', () => dp.addFdb(net.vxlan, { mac: MAC_A, dst: 'peer1' })],
      ['dst multicast', () => dp.addFdb(net.vxlan, { mac: ZERO, dst: '239.1.1.1' })],
      ['dst unspecified', () => dp.addFdb(net.vxlan, { mac: MAC_A, dst: '0.0.0.0' })],
      ['dst with prefix', () => dp.deleteFdb(net.vxlan, { mac: MAC_A, dst: `${PEER1}/24` })],
      ['neighbour all-zero MAC', () => dp.addNeigh(net.vxlan, { ip: '10.20.0.5', mac: ZERO })],
      ['neighbour multicast IP', () => dp.addNeigh(net.vxlan, { ip: 'ff02::1', mac: MAC_A })],
      ['neighbour IP not an IP', () => dp.deleteNeigh(net.vxlan, { ip: '10.20.0', mac: MAC_A })],
      ['invalid entry on a missing device', () => dp.addFdb(missing, { mac: MAC_A, dst: 'x' })],
    ];
    for (const [what, call] of bad) await t.rejects(call(), { code: 'INVALID_OPTION' }, what);
    await t.rejects(dp.addFdb(net.vxlan, { mac: '01:00:5e:00:00:01', dst: PEER1 }), {
      message: `FDB entry on ${net.vxlan}: MAC "01:00:5e:00:00:01" is neither unicast nor all zeros`,
    });
    t.same(await dp.listForwarding(net.vxlan), EMPTY, 'nothing written');
  });

  t.test('the multicast group round-trips and is part of compatibility', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const net = await network(0x750, { group: '239.1.1.42' });
    let links = await byName(dp);
    t.same(links.get(net.vxlan)?.vxlan, {
      vni: net.vni,
      port: 4789,
      local: V4,
      link: ul.ifindex,
      group: '239.1.1.42',
      learning: false,
      proxy: true,
    });
    const before = await dp.listOwnedLinks();
    await dp.ensureNetwork(net);
    t.same(await dp.listOwnedLinks(), before, 'idempotent');
    t.same(await dp.listForwarding(net.vxlan), EMPTY, "the group's own all-zero entry is not listed");
    await dp.addFdb(net.vxlan, { mac: ZERO, dst: PEER1 });
    t.same((await dp.listForwarding(net.vxlan)).fdb, [{ mac: ZERO, dst: PEER1 }], 'head-end entries coexist with the group');
    await t.rejects(
      dp.deleteFdb(net.vxlan, { mac: ZERO, dst: '239.1.1.42' }),
      { code: 'INVALID_OPTION' },
      'the group entry is not ours to delete (a multicast dst is refused)',
    );
    t.equal(await dp.deleteFdb(net.vxlan, { mac: ZERO, dst: PEER1 }), true);
    t.same(await dp.listOwnedLinks(), before, 'the device keeps its group');

    await dp.ensureNetwork({ ...net, group: '239.1.1.43' });
    links = await byName(dp);
    t.not(links.get(net.vxlan)?.index, before.find((l) => l.name === net.vxlan)?.index, 'another group: recreated');
    t.equal(links.get(net.vxlan)?.vxlan?.group, '239.1.1.43');
    const { group: _, ...noGroup } = net;
    await dp.ensureNetwork(noGroup);
    links = await byName(dp);
    t.equal(links.get(net.vxlan)?.vxlan?.group, undefined, 'group removed');
    t.notOk('group' in (links.get(net.vxlan)?.vxlan ?? {}), 'no group key at all');

    await dp.ensureNetwork({ ...net, local: 'FD77::2', group: 'FF05:0::42', mtu: env.underlayMtu - 70 });
    t.match((await byName(dp)).get(net.vxlan)?.vxlan, { local: V6, group: 'ff05::42' }, 'IPv6 group, canonical');

    for (const [what, group] of [
      ['unicast group', '10.1.1.1'],
      ['not an IP', 'group'],
      ['family other than local', 'ff05::1'],
    ] as const) {
      await t.rejects(dp.ensureNetwork({ ...net, group }), { code: 'INVALID_OPTION' }, what);
    }
  });

  t.test('concurrent forwarding calls', async (t) => {
    const net = await network(0x760);
    const n = 64;
    await Promise.all([
      ...Array.from({ length: n }, (_, i) => dp.addFdb(net.vxlan, { mac: nthMac(i), dst: nthPeer(i) })),
      ...Array.from({ length: n }, (_, i) => dp.addNeigh(net.vxlan, { ip: nthIp(i), mac: nthMac(i) })),
      ...Array.from({ length: 4 }, (_, i) => dp.addFdb(net.vxlan, { mac: ZERO, dst: nthPeer(i) })),
      dp.listForwarding(net.vxlan),
      dp.listOwnedLinks(),
    ]);
    const f = await dp.listForwarding(net.vxlan);
    t.equal(f.fdb.length, n + 4);
    t.equal(f.neigh.length, n);
    const deleted = await Promise.all([
      ...Array.from({ length: n }, (_, i) => dp.deleteFdb(net.vxlan, { mac: nthMac(i), dst: nthPeer(i) })),
      ...Array.from({ length: n }, (_, i) => dp.deleteNeigh(net.vxlan, { ip: nthIp(i), mac: nthMac(i) })),
      ...Array.from({ length: 4 }, (_, i) => dp.deleteFdb(net.vxlan, { mac: ZERO, dst: nthPeer(i) })),
    ]);
    t.ok(deleted.every(Boolean), 'every delete found its entry');
    t.same(await dp.listForwarding(net.vxlan), EMPTY);
  });

  t.test('listAllForwarding: every VXLAN device by ifindex, as listForwarding lists it', async (t) => {
    const a = await network(0x790);
    const b = await network(0x791);
    const empty = await network(0x792);
    await Promise.all(Array.from({ length: 8 }, (_, i) => dp.addFdb(a.vxlan, { mac: nthMac(i), dst: nthPeer(i) })));
    await dp.addFdb(a.vxlan, { mac: ZERO, dst: PEER1 });
    await dp.addNeigh(b.vxlan, { ip: nthIp(1), mac: nthMac(1) });
    await dp.addFdb(b.vxlan, { mac: nthMac(1), dst: PEER2 });
    const index = await byName(dp);
    const all = await dp.listAllForwarding();
    for (const net of [a, b]) {
      t.same(all.get(index.get(net.vxlan)?.index ?? -1), await dp.listForwarding(net.vxlan), `${net.vxlan}: the same entries`);
    }
    t.same(all.get(index.get(empty.vxlan)?.index ?? -1) ?? EMPTY, EMPTY, 'a device without entries has none');
    t.notOk(all.has(index.get(a.bridge)?.index ?? -1), 'the bridge has none of ours');
  });

  t.test('addForwarding: many entries at once, as one by one; a bad entry fails alone; the device must exist', async (t) => {
    const net = await network(0x7b0);
    const n = 150;
    const want: Forwarding = {
      fdb: [...Array.from({ length: n }, (_, i) => ({ mac: nthMac(i), dst: nthPeer(i) })), { mac: ZERO, dst: PEER1 }, { mac: ZERO, dst: PEER2 }],
      neigh: Array.from({ length: n }, (_, i) => ({ ip: nthIp(i), mac: nthMac(i) })),
    };
    t.same(await dp.addForwarding(net.vxlan, want), [], 'no failures');
    const have = await dp.listForwarding(net.vxlan);
    t.equal(have.fdb.length, n + 2);
    t.equal(have.neigh.length, n);
    t.same(await dp.addForwarding(net.vxlan, want), [], 'again: nothing fails');
    t.same(await dp.listForwarding(net.vxlan), have, 'and nothing changes');

    const bad = { mac: 'ff:ff:ff:ff:ff:ff', dst: PEER1 };
    const failures = await dp.addForwarding(net.vxlan, { fdb: [bad, { mac: MAC_C, dst: PEER2 }], neigh: [{ ip: 'nope', mac: MAC_C }] });
    t.same(failures.map((f) => [f.kind, f.entry, (f.error as { code?: string }).code]), [
      ['fdb', bad, 'INVALID_OPTION'],
      ['neigh', { ip: 'nope', mac: MAC_C }, 'INVALID_OPTION'],
    ], 'the bad entries, each with its error');
    t.ok((await dp.listForwarding(net.vxlan)).fdb.some((e) => e.mac === MAC_C), 'the good one was added');
    t.same(await dp.addForwarding(net.vxlan, EMPTY), [], 'nothing to add');
    await t.rejects(dp.addForwarding(vxlanName(0x7b1), { fdb: [{ mac: MAC_A, dst: PEER1 }], neigh: [] }), {
      code: 'KERNEL_FAILURE',
      message: /no such vxlan device/,
    });
  });

  if (env.kernel) {
    t.test('addForwarding: an entry the kernel refuses fails alone, with its errno; the rest are written', async (t) => {
      // Below 1280 the kernel drops the device's IPv6 state: IPv6 neighbours are refused (EINVAL).
      const net = await network(0x7b2, { mtu: 1200 });
      const v6 = { ip: 'fd20::9', mac: nthMac(1) };
      const want: Forwarding = {
        fdb: Array.from({ length: 3 }, (_, i) => ({ mac: nthMac(i), dst: nthPeer(i) })),
        neigh: [{ ip: nthIp(0), mac: nthMac(0) }, v6, { ip: nthIp(2), mac: nthMac(2) }],
      };
      const failures = await dp.addForwarding(net.vxlan, want);
      t.same(failures.map((f) => [f.kind, f.entry, (f.error as { code?: string }).code]), [['neigh', v6, 'KERNEL_FAILURE']]);
      t.match(failures[0]?.error.message, `add neighbour ${net.vxlan}: EINVAL (fd20::9 lladdr ${nthMac(1)})`);
      t.same(await dp.listForwarding(net.vxlan), sortForwarding({ fdb: want.fdb, neigh: want.neigh.filter((n) => n !== v6) }));
      await t.rejects(dp.addNeigh(net.vxlan, v6), { code: 'KERNEL_FAILURE', message: /EINVAL/ }, 'one entry alone: rejected');
    });
  }

  t.test('ensureNetwork tells whether it created the VXLAN device (which then has no entries)', async (t) => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const spec = netSpec(0x7a0, 4789, ul, env);
    t.equal(await dp.ensureNetwork(spec), true, 'created');
    await dp.addFdb(spec.vxlan, { mac: MAC_A, dst: PEER1 });
    t.equal(await dp.ensureNetwork(spec), false, 'kept, entries and all');
    t.equal((await dp.listForwarding(spec.vxlan)).fdb.length, 1);
    t.equal(await dp.ensureNetwork({ ...spec, mtu: spec.mtu - 10 }), false, 'an MTU change converges in place');
    await dp.deleteLink(spec.vxlan);
    t.equal(await dp.ensureNetwork(spec), true, 'made again after it was deleted');
    t.same(await dp.listForwarding(spec.vxlan), EMPTY);
  });

  t.test('a VXLAN device recreated or deleted behind our back', async (t) => {
    const net = await network(0x780);
    await dp.addFdb(net.vxlan, { mac: MAC_A, dst: PEER1 }); // the adapter now knows the device
    await env.other.deleteLink(net.vxlan);
    await env.other.ensureNetwork(net);
    await dp.addFdb(net.vxlan, { mac: MAC_B, dst: PEER2 });
    await dp.addNeigh(net.vxlan, { ip: '10.20.0.6', mac: MAC_B });
    t.same(
      await dp.listForwarding(net.vxlan),
      { fdb: [{ mac: MAC_B, dst: PEER2 }], neigh: [{ ip: '10.20.0.6', mac: MAC_B }] },
      'written to the new device',
    );
    t.same(await env.other.listForwarding(net.vxlan), await dp.listForwarding(net.vxlan), 'both writers see the same');
    await env.other.deleteLink(net.vxlan);
    await t.rejects(dp.addNeigh(net.vxlan, { ip: '10.20.0.7', mac: MAC_C }), {
      code: 'KERNEL_FAILURE',
      message: `add neighbour ${net.vxlan}: no such vxlan device`,
    });
    await t.rejects(dp.deleteFdb(net.vxlan, { mac: MAC_B, dst: PEER2 }), {
      code: 'KERNEL_FAILURE',
      message: `delete fdb ${net.vxlan}: no such vxlan device`,
    });
  });

  t.test(`bulk: ${BULK} neighbour + ${BULK} FDB entries`, async (t) => {
    const net = await network(0x770);
    const ms = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e6;
    let start = process.hrtime.bigint();
    for (let i = 0; i < BULK; i++) {
      await dp.addNeigh(net.vxlan, { ip: nthIp(i), mac: nthMac(i) });
      await dp.addFdb(net.vxlan, { mac: nthMac(i), dst: nthPeer(i) });
    }
    const add = ms(start);
    start = process.hrtime.bigint();
    const f = await dp.listForwarding(net.vxlan);
    const list = ms(start);
    t.equal(f.neigh.length, BULK, 'all neighbour entries listed');
    t.equal(f.fdb.length, BULK, 'all FDB entries listed');
    t.same(f.neigh[0], { ip: nthIp(0), mac: nthMac(0) });
    start = process.hrtime.bigint();
    for (let i = 0; i < BULK; i++) {
      await dp.addNeigh(net.vxlan, { ip: nthIp(i), mac: nthMac(i) });
      await dp.addFdb(net.vxlan, { mac: nthMac(i), dst: nthPeer(i) });
    }
    const replay = ms(start);
    start = process.hrtime.bigint();
    const part = Math.min(BULK, 1000);
    for (let i = 0; i < part; i++) {
      await dp.deleteNeigh(net.vxlan, { ip: nthIp(i), mac: nthMac(i) });
      await dp.deleteFdb(net.vxlan, { mac: nthMac(i), dst: nthPeer(i) });
    }
    const del = ms(start);
    const after = await dp.listForwarding(net.vxlan);
    t.equal(after.neigh.length + after.fdb.length, 2 * (BULK - part), 'deleted');
    const line = `${env.name}: add ${BULK}+${BULK} ${add.toFixed(0)} ms (${((add * 1000) / (2 * BULK)).toFixed(0)} µs/entry), list ${list.toFixed(0)} ms, replay ${replay.toFixed(0)} ms, delete ${part}+${part} ${del.toFixed(0)} ms`;
    t.comment(line);
    t.pass(line); // visible in the default reporter too
  });
};

// ------------------------------------------------------- resolver routing

const R = '169.254.53.53';
const R6 = 'fd53::53';
const TABLE = 5353;
const PRIORITY = 5353;

const routingContract = (t: Test, env: ContractEnv): void => {
  const { dp } = env;

  const network = async (vni: number): Promise<NetworkDevices> => {
    const ul = await dp.resolveUnderlay(UNDERLAY);
    const spec = netSpec(vni, 4789, ul, env);
    await dp.ensureNetwork(spec);
    return spec;
  };

  t.test('bridge addresses: idempotent, visible, the same address on several bridges', async (t) => {
    const a = await network(0x800);
    const b = await network(0x801);
    t.equal((await byName(dp)).get(a.bridge)?.addresses, undefined, 'a new bridge has none (the IPv6 link-local is not listed)');
    await dp.ensureBridgeAddress(a.bridge, R);
    await dp.ensureBridgeAddress(b.bridge, R);
    await dp.ensureBridgeAddress(a.bridge, 'FD53:0::53');
    const links = await byName(dp);
    t.same(links.get(a.bridge)?.addresses, [R, R6], 'IPv4 before IPv6, canonical');
    t.same(links.get(b.bridge)?.addresses, [R]);
    t.equal(links.get(a.vxlan)?.addresses, undefined, 'nothing on the VXLAN device');
    const before = await dp.listOwnedLinks();
    await dp.ensureBridgeAddress(a.bridge, R);
    await dp.ensureBridgeAddress(b.bridge, R);
    await dp.ensureBridgeAddress(a.bridge, R6);
    t.same(await dp.listOwnedLinks(), before, 'replays change nothing');

    const missing = bridgeName(0x802);
    await t.rejects(dp.ensureBridgeAddress(missing, R), { code: 'KERNEL_FAILURE', message: `ensure bridge address ${missing}: no such bridge` });
    await t.rejects(dp.ensureBridgeAddress(a.vxlan, R), {
      code: 'KERNEL_FAILURE',
      message: `ensure bridge address ${a.vxlan}: not a bridge (kind vxlan)`,
    });
    for (const [what, bridge, address] of [
      ['foreign device', 'eth0', R],
      ['with a prefix', a.bridge, `${R}/32`],
      ['multicast', a.bridge, '224.0.0.251'],
      ['unspecified', a.bridge, '0.0.0.0'],
      ['not an IP', a.bridge, 'resolver'],
    ] as const) {
      await t.rejects(dp.ensureBridgeAddress(bridge, address), { code: 'INVALID_OPTION' }, what);
    }
    t.same(await dp.listOwnedLinks(), before, 'refused calls change nothing');
  });

  t.test('source rule: idempotent; another table at the same priority is replaced', async (t) => {
    t.teardown(() => env.flushRules());
    t.same(await env.rules(), [], 'none to start with');
    await dp.ensureSourceRule(R, TABLE, PRIORITY);
    await dp.ensureSourceRule(R, TABLE, PRIORITY);
    t.same(await env.rules(), [`5353 from ${R} lookup 5353`], 'one rule, however often ensured');
    await dp.ensureSourceRule('FD53::53', TABLE, PRIORITY);
    await dp.ensureSourceRule(R6, TABLE, PRIORITY);
    t.same(await env.rules(), [`5353 from ${R} lookup 5353`, `5353 from ${R6} lookup 5353`], 'IPv6, any spelling');
    await dp.ensureSourceRule(R, 100, PRIORITY);
    t.same(await env.rules(), [`5353 from ${R} lookup 100`, `5353 from ${R6} lookup 5353`], 'another table: replaced');
    await dp.ensureSourceRule(R, 100, 1000);
    t.same(
      await env.rules(),
      [`1000 from ${R} lookup 100`, `5353 from ${R} lookup 100`, `5353 from ${R6} lookup 5353`],
      'rules at other priorities are left alone',
    );
    const bad: [string, () => Promise<unknown>][] = [
      ['main table', () => dp.ensureSourceRule(R, 254, PRIORITY)],
      ['local table', () => dp.ensureSourceRule(R, 255, PRIORITY)],
      ['table 0', () => dp.ensureSourceRule(R, 0, PRIORITY)],
      ['table not an integer', () => dp.ensureSourceRule(R, 1.5, PRIORITY)],
      ['table above u32', () => dp.ensureSourceRule(R, 2 ** 32, PRIORITY)],
      ['priority 0', () => dp.ensureSourceRule(R, TABLE, 0)],
      ['priority of the main rule', () => dp.ensureSourceRule(R, TABLE, 32766)],
      ['source not an IP', () => dp.ensureSourceRule('resolver', TABLE, PRIORITY)],
      ['source a network', () => dp.ensureSourceRule('169.254.0.0/16', TABLE, PRIORITY)],
    ];
    for (const [what, call] of bad) await t.rejects(call(), { code: 'INVALID_OPTION' }, what);
    t.equal((await env.rules()).length, 3, 'refused calls add nothing');
  });

  t.test('table routes: add, list, replace, delete (IPv4 and IPv6)', async (t) => {
    const a = await network(0x810);
    const b = await network(0x811);
    await dp.ensureBridgeAddress(a.bridge, R);
    await dp.ensureBridgeAddress(a.bridge, R6);
    t.same(await dp.listTableRoutes(TABLE), [], 'none to start with');
    const all: TableRoute[] = [
      { dst: '10.77.0.0/24', dev: a.bridge, src: R },
      { dst: '10.78.0.0/16', dev: b.bridge, src: R }, // src may live on another device
      { dst: '10.79.0.0/24', dev: b.bridge },
      { dst: 'FD77:1:0::/64', dev: a.bridge, src: 'FD53::53' },
    ];
    for (const r of all) await dp.ensureTableRoute(TABLE, r);
    const want: TableRoute[] = [
      { dst: '10.77.0.0/24', dev: a.bridge, src: R },
      { dst: '10.78.0.0/16', dev: b.bridge, src: R },
      { dst: '10.79.0.0/24', dev: b.bridge },
      { dst: 'fd77:1::/64', dev: a.bridge, src: R6 },
    ];
    t.same(await dp.listTableRoutes(TABLE), want, 'listed canonical, sorted');
    for (const r of all) await dp.ensureTableRoute(TABLE, r);
    t.same(await dp.listTableRoutes(TABLE), want, 'replays change nothing');
    t.same(await dp.listTableRoutes(TABLE + 1), [], 'another table is empty');

    await dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: b.bridge, src: R });
    await dp.ensureTableRoute(TABLE, { dst: '10.79.0.0/24', dev: b.bridge, src: R });
    t.same(
      await dp.listTableRoutes(TABLE),
      [
        { dst: '10.77.0.0/24', dev: b.bridge, src: R },
        { dst: '10.78.0.0/16', dev: b.bridge, src: R },
        { dst: '10.79.0.0/24', dev: b.bridge, src: R },
        { dst: 'fd77:1::/64', dev: a.bridge, src: R6 },
      ],
      'one route per dst: a new dev or src replaces it',
    );

    t.equal(await dp.deleteTableRoute(TABLE, { dst: '10.77.0.0/24', dev: a.bridge }), false, 'not through that device');
    t.equal(await dp.deleteTableRoute(TABLE, { dst: '10.77.0.0/24', dev: b.bridge }), true);
    t.equal(await dp.deleteTableRoute(TABLE, { dst: '10.77.0.0/24', dev: b.bridge }), false, 'delete again');
    t.equal(await dp.deleteTableRoute(TABLE, { dst: 'fd77:1:0:0::/64', dev: a.bridge }), true, 'IPv6, any spelling');
    t.equal(await dp.deleteTableRoute(TABLE + 1, { dst: '10.78.0.0/16', dev: b.bridge }), false, 'another table');
    t.equal(await dp.deleteTableRoute(TABLE, { dst: '10.78.0.0/16', dev: bridgeName(0x812) }), false, 'no such device');
    t.same(await dp.listTableRoutes(TABLE), [
      { dst: '10.78.0.0/16', dev: b.bridge, src: R },
      { dst: '10.79.0.0/24', dev: b.bridge, src: R },
    ]);

    const missing = bridgeName(0x812);
    await t.rejects(dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: missing, src: R }), {
      code: 'KERNEL_FAILURE',
      message: `ensure table route ${missing}: no such device`,
    });
    await t.rejects(dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: a.bridge, src: '169.254.53.54' }), {
      code: 'KERNEL_FAILURE',
      message: `ensure table route ${a.bridge}: EINVAL (10.77.0.0/24 table ${TABLE} src 169.254.53.54)`,
    });
    const ep = epSpec('0123456789ab', a, '02:42:0a:4d:00:05');
    await dp.ensureEndpoint(ep);
    await t.rejects(dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: ep.containerIf }), {
      code: 'KERNEL_FAILURE',
      message: `ensure table route ${ep.containerIf}: ENETDOWN (10.77.0.0/24 table ${TABLE})`,
    });
    const bad: [string, () => Promise<unknown>][] = [
      ['host bits set', () => dp.ensureTableRoute(TABLE, { dst: '10.77.0.5/24', dev: a.bridge })],
      ['no prefix length', () => dp.ensureTableRoute(TABLE, { dst: '10.77.0.0', dev: a.bridge })],
      ['src of the other family', () => dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: a.bridge, src: R6 })],
      ['foreign device', () => dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: 'eth0' })],
      ['main table', () => dp.ensureTableRoute(254, { dst: '10.77.0.0/24', dev: a.bridge })],
      ['list the main table', () => dp.listTableRoutes(254)],
      ['delete from the local table', () => dp.deleteTableRoute(255, { dst: '10.77.0.0/24', dev: a.bridge })],
    ];
    for (const [what, call] of bad) await t.rejects(call(), { code: 'INVALID_OPTION' }, what);
    t.equal((await dp.listTableRoutes(TABLE)).length, 2, 'refused calls change nothing');
  });

  t.test('deleting a bridge removes its routes and its addresses', async (t) => {
    const a = await network(0x820);
    const b = await network(0x821);
    for (const n of [a, b]) await dp.ensureBridgeAddress(n.bridge, R);
    await dp.ensureTableRoute(TABLE, { dst: '10.77.0.0/24', dev: a.bridge, src: R });
    await dp.ensureTableRoute(TABLE, { dst: '10.78.0.0/24', dev: b.bridge, src: R });
    t.equal(await dp.deleteLink(a.bridge), true);
    t.same(await dp.listTableRoutes(TABLE), [{ dst: '10.78.0.0/24', dev: b.bridge, src: R }], "the other bridge's route stays");
    await dp.ensureNetwork(a);
    const links = await byName(dp);
    t.equal(links.get(a.bridge)?.addresses, undefined, 'a recreated bridge starts without the address');
    t.same(links.get(b.bridge)?.addresses, [R]);
    t.same(await dp.listTableRoutes(TABLE), [{ dst: '10.78.0.0/24', dev: b.bridge, src: R }], 'nor does its route come back');
    t.equal(await dp.deleteTableRoute(TABLE, { dst: '10.77.0.0/24', dev: a.bridge }), false);
  });
};

// ------------------------------------------------------------- environments

const fakeEnv = (mtu: number): ContractEnv => {
  const fake = new FakeDataplane({
    underlay: { ifname: UNDERLAY, ifindex: 3, address: V4, family: 4, mtu },
    addresses: [V6],
    defaultRoute: false,
  });
  return {
    name: `FakeDataplane (underlay MTU ${mtu})`,
    dp: fake,
    kernel: false,
    underlayMtu: mtu,
    setDefaultRoute: async (on) => {
      fake.defaultRoute = on;
    },
    moveToSandbox: async (ifname) => fake.moveToSandbox(ifname),
    addVethPair: async (name, peer) => fake.addVethPair(name, peer),
    other: fake,
    rules: async () => fake.rules.map((r) => `${r.priority} from ${r.source} lookup ${r.table}`).sort(),
    flushRules: async () => {
      fake.rules.length = 0;
    },
  };
};

/** Run `ip` (in whatever namespace this process is in); throws with stderr on failure. */
const ip = (...args: string[]): void => {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
};

/** Run `ip` and return its stdout. */
const ipOut = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** The kernel's own rules (local, main, default), which `rules()` leaves out. */
const KERNEL_RULES = new Set([0, 32766, 32767]);
const ownRules = (): { family: string; priority: number; src: string; table: string }[] =>
  ['-4', '-6'].flatMap((family) =>
    (JSON.parse(ipOut(family, '-j', 'rule', 'show')) as { priority: number; src: string; table: string }[])
      .filter((r) => !KERNEL_RULES.has(r.priority))
      .map((r) => ({ family, ...r })),
  );

const netlinkEnv = (cfg: ChildConfig, dp: Dataplane, other: Dataplane): ContractEnv => ({
  name: `NetlinkDataplane (underlay MTU ${cfg.mtu})`,
  dp,
  kernel: true,
  underlayMtu: cfg.mtu,
  setDefaultRoute: async (on) => (on ? ip('route', 'add', 'default', 'dev', UNDERLAY) : ip('route', 'del', 'default')),
  moveToSandbox: async (ifname) => ip('link', 'set', ifname, 'netns', cfg.sandbox),
  addVethPair: async (name, peer) => ip('link', 'add', name, 'type', 'veth', 'peer', 'name', peer),
  other,
  rules: async () => ownRules().map((r) => `${r.priority} from ${r.src} lookup ${r.table}`).sort(),
  flushRules: async () => {
    for (const r of ownRules()) ip(r.family, 'rule', 'del', 'priority', String(r.priority), 'from', r.src, 'table', r.table);
  },
});

const MTUS = [1500, 9000];
const SELF = fileURLToPath(import.meta.url);
const childEnv = process.env['TSOVERLAY_NETNS_CHILD'];
const serverEnv = process.env['TSOVERLAY_DP_SERVER'];

// ------------------------------------------------ dataplane over stdin/stdout

/** Marks our reply lines on stdout (tap writes its own lines there too). */
const REPLY_MARK = '@@tsoverlay-dp ';
const REMOTE_METHODS = [
  'resolveUnderlay',
  'listOwnedLinks',
  'ensureNetwork',
  'ensureEndpoint',
  'deleteLink',
  'listForwarding',
  'addFdb',
  'deleteFdb',
  'addNeigh',
  'deleteNeigh',
  'ensureBridgeAddress',
  'ensureSourceRule',
  'listTableRoutes',
  'ensureTableRoute',
  'deleteTableRoute',
] as const;
type RemoteMethod = (typeof REMOTE_METHODS)[number];
interface RemoteCall {
  id: number;
  method: RemoteMethod;
  args: unknown[];
}
type RemoteReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; code: unknown; message: string };

/** The server side: one NetlinkDataplane in this process's namespace, one call at a time. */
const serveDataplane = async (): Promise<void> => {
  const dp = new NetlinkDataplane({ requestTimeoutMs: 5000 });
  for await (const line of createInterface({ input: process.stdin })) {
    const call = JSON.parse(line) as RemoteCall;
    let reply: RemoteReply;
    try {
      if (!REMOTE_METHODS.includes(call.method)) throw new Error(`no method ${String(call.method)}`);
      const fn = dp[call.method] as (...args: unknown[]) => Promise<unknown>;
      reply = { id: call.id, ok: true, value: (await fn.apply(dp, call.args)) ?? null };
    } catch (e) {
      const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
      reply = { id: call.id, ok: false, code, message: e instanceof Error ? e.message : String(e) };
    }
    process.stdout.write(`${REPLY_MARK}${JSON.stringify(reply)}\n`);
  }
  await dp.close();
};

/** The client side: a NetlinkDataplane running in namespace `ns`. */
class RemoteDataplane {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly exited: Promise<void>;
  private nextId = 1;

  constructor(readonly ns: string) {
    this.child = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, ...process.execArgv, SELF], {
      env: { ...process.env, TSOVERLAY_DP_SERVER: ns },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => {
        for (const p of this.pending.values()) p.reject(new Error(`dataplane server in ${ns} exited`));
        this.pending.clear();
        resolve();
      });
    });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      if (!line.startsWith(REPLY_MARK)) return;
      const reply = JSON.parse(line.slice(REPLY_MARK.length)) as RemoteReply;
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (!p) return;
      if (reply.ok) p.resolve(reply.value);
      else p.reject(Object.assign(new Error(reply.message), { code: reply.code }));
    });
  }

  call<M extends RemoteMethod>(method: M, ...args: Parameters<Dataplane[M]>): ReturnType<Dataplane[M]> {
    const id = this.nextId++;
    const result = new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const call: RemoteCall = { id, method, args };
      this.child.stdin.write(`${JSON.stringify(call)}\n`);
    });
    return result as ReturnType<Dataplane[M]>;
  }

  /** End the server (it closes its socket and exits); kill it if it hangs. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** True if `ns` gets an answer from `target` (one echo request, waiting up to `seconds`). */
const pings = (ns: string, target: string, seconds: number): boolean => {
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'ping', '-n', '-c', '1', '-w', String(seconds), target], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

const dataPath = async (t: Test): Promise<void> => {
  const id = randomBytes(3).toString('hex');
  const VNI = 0x6600;
  const hosts = ['a', 'b'].map((h, i) => ({
    ns: `tsdp-${id}-${h}`,
    ctr: `tsdp-${id}-c${h}`,
    underlay: `192.168.78.${i + 1}`,
    ip: `10.66.0.${i + 1}`,
    ip6: `fd66::${i + 1}`,
    mac: `02:42:0a:42:00:0${i + 1}`,
    endpoint: `dp${id}${h}0000`,
  }));
  const [A, B] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
  const servers: RemoteDataplane[] = [];
  /** The endpoint's interface, made by `dp` and put into the host's container as Docker does at Join. */
  const plug = async (dp: RemoteDataplane, h: (typeof hosts)[0], net: NetworkDevices, ifname: string, addresses: string[]): Promise<void> => {
    const ep: EndpointDevices = {
      hostIf: hostIfName(h.endpoint),
      containerIf: containerIfName(h.endpoint),
      bridge: net.bridge,
      mtu: net.mtu,
      mac: h.mac,
      ...(net.mode === 'macvlan' ? { macvlanOn: net.vxlan } : {}),
    };
    await dp.call('ensureEndpoint', ep);
    ip('-n', h.ns, 'link', 'set', ep.containerIf, 'netns', h.ctr);
    ip('-n', h.ctr, 'link', 'set', ep.containerIf, 'name', ifname);
    for (const a of addresses) ip('-n', h.ctr, 'addr', 'add', a, 'dev', ifname, ...(a.includes(':') ? ['nodad'] : []));
    ip('-n', h.ctr, 'link', 'set', ifname, 'up');
  };
  // Registered first, so a half-built setup is removed too. Servers first:
  // a namespace lives on while a process is in it.
  t.teardown(async () => {
    for (const s of servers) await s.close();
    for (const h of hosts) for (const n of [h.ctr, h.ns]) if (existsSync(`/run/netns/${n}`)) ip('netns', 'del', n);
  });
  for (const h of hosts) {
    ip('netns', 'add', h.ns);
    ip('netns', 'add', h.ctr);
    for (const n of [h.ns, h.ctr]) ip('-n', n, 'link', 'set', 'lo', 'up');
  }
  ip('-n', A.ns, 'link', 'add', UNDERLAY, 'type', 'veth', 'peer', 'name', UNDERLAY, 'netns', B.ns);
  const nets: NetworkDevices[] = [];
  for (const h of hosts) {
    ip('-n', h.ns, 'addr', 'add', `${h.underlay}/24`, 'dev', UNDERLAY);
    ip('-n', h.ns, 'link', 'set', UNDERLAY, 'up');
    const dp = new RemoteDataplane(h.ns);
    servers.push(dp);
    const ul = await dp.call('resolveUnderlay', UNDERLAY);
    const net: NetworkDevices = {
      vni: VNI,
      bridge: bridgeName(VNI),
      vxlan: vxlanName(VNI),
      port: 4789,
      local: ul.address,
      underlayIndex: ul.ifindex,
      mtu: ul.mtu - 50,
    };
    nets.push(net);
    await dp.call('ensureNetwork', net);
    await plug(dp, h, net, 'eth0', [`${h.ip}/24`, `${h.ip6}/64`]);
  }
  const [dpA, dpB] = servers as [RemoteDataplane, RemoteDataplane];
  const [netA] = nets as [NetworkDevices];
  const vx = netA.vxlan; // same name on both hosts
  const each = async (fn: (dp: RemoteDataplane, self: typeof A, peer: typeof A) => Promise<unknown>): Promise<void> => {
    await fn(dpA, A, B);
    await fn(dpB, B, A);
  };
  /** Forget what the containers resolved, so the next ping has to ask the proxy again. */
  const flushContainers = (): void => {
    for (const h of hosts) ip('-n', h.ctr, 'neigh', 'flush', 'dev', 'eth0');
  };
  const neighbours = (dp: RemoteDataplane, peer: typeof A) =>
    Promise.all([dp.call('addNeigh', vx, { ip: peer.ip, mac: peer.mac }), dp.call('addNeigh', vx, { ip: peer.ip6, mac: peer.mac })]);

  await t.test('no entries, learning off: no traffic', async (t) => {
    t.same(await dpA.call('listForwarding', vx), EMPTY);
    t.notOk(pings(A.ctr, B.ip, 2), 'IPv4 ping fails');
    t.notOk(pings(A.ctr, B.ip6, 2), 'IPv6 ping fails');
  });

  await t.test('neighbour + unicast FDB entries: traffic flows both ways', async (t) => {
    await each(async (dp, _self, peer) => {
      await neighbours(dp, peer);
      await dp.call('addFdb', vx, { mac: peer.mac, dst: peer.underlay });
    });
    t.same(await dpA.call('listForwarding', vx), {
      fdb: [{ mac: B.mac, dst: B.underlay }],
      neigh: [
        { ip: B.ip, mac: B.mac },
        { ip: B.ip6, mac: B.mac },
      ],
    });
    t.ok(pings(A.ctr, B.ip, 5), 'A -> B, IPv4');
    t.ok(pings(B.ctr, A.ip, 5), 'B -> A, IPv4');
    t.ok(pings(A.ctr, B.ip6, 5), 'A -> B, IPv6');
    t.ok(pings(B.ctr, A.ip6, 5), 'B -> A, IPv6');
  });

  await t.test('all-zero MAC entries alone carry unknown unicast (head-end replication)', async (t) => {
    await each(async (dp, _self, peer) => {
      t.equal(await dp.call('deleteFdb', vx, { mac: peer.mac, dst: peer.underlay }), true);
      await dp.call('addFdb', vx, { mac: ZERO, dst: peer.underlay });
    });
    flushContainers();
    t.ok(pings(A.ctr, B.ip, 5), 'A -> B');
    t.ok(pings(B.ctr, A.ip6, 5), 'B -> A, IPv6');
    await each(async (dp, _self, peer) => {
      t.equal(await dp.call('deleteFdb', vx, { mac: ZERO, dst: peer.underlay }), true);
    });
    t.notOk(pings(A.ctr, B.ip, 2), 'neighbour entries without any FDB entry: no traffic');
  });

  await t.test('a multicast group carries BUM traffic without FDB entries', async (t) => {
    const group = '239.1.66.1';
    for (const [i, dp] of servers.entries()) await dp.call('ensureNetwork', { ...(nets[i] as NetworkDevices), group });
    t.same(await dpA.call('listForwarding', vx), EMPTY, 'the recreated device has no entries');
    t.match(
      (await dpA.call('listOwnedLinks')).find((l) => l.name === vx),
      { vxlan: { group }, master: netA.bridge, up: true },
      'recreated with the group, on the bridge',
    );
    flushContainers();
    t.notOk(pings(A.ctr, B.ip, 2), 'no neighbour entries: ARP is not flooded, the proxy drops it');
    await each((dp, _self, peer) => neighbours(dp, peer));
    t.ok(pings(A.ctr, B.ip, 5), 'A -> B over the group');
    t.ok(pings(B.ctr, A.ip6, 5), 'B -> A, IPv6, over the group');
  });

  await t.test('macvlan mode: the same path with no bridge; the macvlans die with their VXLAN device', async (t) => {
    const vni = VNI + 1;
    const mv = hosts.map((h, i) => ({ ...h, ip: `10.67.0.${i + 1}`, mac: `02:42:0a:43:00:0${i + 1}`, endpoint: `mv${h.endpoint.slice(2)}` }));
    const mvx = vxlanName(vni);
    for (const [i, h] of mv.entries()) {
      const dp = servers[i] as RemoteDataplane;
      const { group: _, ...base } = nets[i] as NetworkDevices;
      const net: NetworkDevices = { ...base, vni, bridge: bridgeName(vni), vxlan: mvx, mode: 'macvlan' };
      await dp.call('ensureNetwork', net);
      await plug(dp, h, net, 'eth1', [`${h.ip}/24`]);
    }
    const [mA, mB] = mv as [(typeof mv)[0], (typeof mv)[0]];
    t.notOk(pings(mA.ctr, mB.ip, 2), 'no entries: no traffic');
    for (const [dp, peer] of [
      [dpA, mB],
      [dpB, mA],
    ] as const) {
      await dp.call('addNeigh', mvx, { ip: peer.ip, mac: peer.mac });
      await dp.call('addFdb', mvx, { mac: peer.mac, dst: peer.underlay });
    }
    t.ok(pings(mA.ctr, mB.ip, 5), 'A -> B');
    t.ok(pings(mB.ctr, mA.ip, 5), 'B -> A');
    t.ok(pings(A.ctr, B.ip, 5), 'the bridge-mode network next to it still carries traffic');
    t.equal(await dpA.call('deleteLink', mvx), true);
    t.throws(() => ipOut('-n', mA.ctr, 'link', 'show', 'eth1'), 'the container lost its interface with the VXLAN device');
  });
};

// ------------------------------------------------- resolver data path

/** UDP echo server: `node -e ECHO_SERVER <address> <port>`; answers "<source> said <payload>", prints "ready" once bound. */
const ECHO_SERVER = `
const [address, port] = process.argv.slice(1);
const s = require('node:dgram').createSocket(address.includes(':') ? 'udp6' : 'udp4');
s.on('message', (m, r) => s.send(r.address + ' said ' + m, r.port, r.address));
s.bind(Number(port), address, () => console.log('ready'));
`;

/** UDP client: `node -e UDP_ASK <address> <port> <ms>`; sends every 200 ms, prints {reply, from} or {} after <ms>. */
const UDP_ASK = `
const [address, port, ms] = process.argv.slice(1);
const s = require('node:dgram').createSocket(address.includes(':') ? 'udp6' : 'udp4');
const done = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
s.on('message', (m, r) => done({ reply: String(m), from: r.address + ':' + r.port }));
s.on('error', (e) => done({ error: e.code }));
const send = () => s.send('hello', Number(port), address);
send();
setInterval(send, 200);
setTimeout(() => done({}), Number(ms));
`;

interface UdpAnswer {
  reply?: string;
  from?: string;
  error?: string;
}

/** Ask the echo server at `address`:`port` from namespace `ns`; {} if no answer within `ms`. */
const udpAsk = (ns: string, address: string, port: number, ms: number): Promise<UdpAnswer> =>
  new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', UDP_ASK, address, String(port), String(ms)], { timeout: ms + 10_000 }, (err, stdout) => {
      if (err) return reject(err);
      resolve(JSON.parse(stdout) as UdpAnswer);
    });
  });

const resolverPath = async (t: Test): Promise<void> => {
  const id = randomBytes(3).toString('hex');
  const HOST = `tsrs-${id}-h`;
  const CTR = `tsrs-${id}-c`;
  const OUT = `tsrs-${id}-o`;
  const VNI = 0xabc;
  const PORT = 5300;
  const CTR_IP = '10.77.0.5';
  const SUBNET = '10.77.0.0/24';
  const namespaces = [HOST, CTR, OUT];
  const procs: ChildProcess[] = [];
  let dp: RemoteDataplane | undefined;
  // Registered first, so a half-built setup is removed too; processes before
  // namespaces (a namespace lives on while a process is in it).
  t.teardown(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill();
    await dp?.close();
    for (const n of namespaces) if (existsSync(`/run/netns/${n}`)) ip('netns', 'del', n);
  });
  for (const n of namespaces) {
    ip('netns', 'add', n);
    ip('-n', n, 'link', 'set', 'lo', 'up');
  }
  // The underlay: HOST's ul0 faces OUT, a neighbour that routes R to us and
  // would use the resolver if nothing stopped it.
  ip('-n', HOST, 'link', 'add', UNDERLAY, 'type', 'veth', 'peer', 'name', UNDERLAY, 'netns', OUT);
  for (const [n, addr] of [
    [HOST, '192.168.79.2/24'],
    [OUT, '192.168.79.1/24'],
  ] as const) {
    ip('-n', n, 'addr', 'add', addr, 'dev', UNDERLAY);
    ip('-n', n, 'link', 'set', UNDERLAY, 'up');
  }
  ip('-n', HOST, 'route', 'add', 'default', 'via', '192.168.79.1', 'dev', UNDERLAY);
  ip('-n', OUT, 'route', 'add', `${R}/32`, 'via', '192.168.79.2', 'dev', UNDERLAY);

  dp = new RemoteDataplane(HOST);
  const ul = await dp.call('resolveUnderlay', UNDERLAY);
  const net: NetworkDevices = {
    vni: VNI,
    bridge: bridgeName(VNI),
    vxlan: vxlanName(VNI),
    port: 4789,
    local: ul.address,
    underlayIndex: ul.ifindex,
    mtu: ul.mtu - 50,
  };
  t.equal(net.bridge, 'tsbr-000abc');
  await dp.call('ensureNetwork', net);
  const ep: EndpointDevices = {
    hostIf: hostIfName(`rs${id}000`),
    containerIf: containerIfName(`rs${id}000`),
    bridge: net.bridge,
    mtu: net.mtu,
    mac: '02:42:0a:4d:00:05',
  };
  await dp.call('ensureEndpoint', ep);
  // What Docker does at Join, with the on-link route to R the driver returns.
  ip('-n', HOST, 'link', 'set', ep.containerIf, 'netns', CTR);
  ip('-n', CTR, 'link', 'set', ep.containerIf, 'name', 'eth0');
  ip('-n', CTR, 'addr', 'add', `${CTR_IP}/24`, 'dev', 'eth0');
  ip('-n', CTR, 'link', 'set', 'eth0', 'up');
  ip('-n', CTR, 'route', 'add', `${R}/32`, 'dev', 'eth0');

  // The resolver's kernel setup, as the reconciler will ask for it.
  const route: TableRoute = { dst: SUBNET, dev: net.bridge, src: R };
  await dp.call('ensureBridgeAddress', net.bridge, R);
  await dp.call('ensureSourceRule', R, TABLE, PRIORITY);
  await dp.call('ensureTableRoute', TABLE, route);

  const server = spawn('ip', ['netns', 'exec', HOST, process.execPath, '-e', ECHO_SERVER, R, String(PORT)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('exit', (code) => reject(new Error(`echo server exited (${code})`)));
    createInterface({ input: server.stdout }).once('line', (line) => (line === 'ready' ? resolve() : reject(new Error(line))));
  });
  const answered = { reply: `${CTR_IP} said hello`, from: `${R}:${PORT}` };
  const flushNeighbours = (): void => {
    ip('-n', HOST, 'neigh', 'flush', 'dev', net.bridge);
    ip('-n', CTR, 'neigh', 'flush', 'dev', 'eth0');
  };

  await t.test('a container asks R on its bridge and the answer comes back', async (t) => {
    t.same(await udpAsk(CTR, R, PORT, 5000), answered, 'default sysctls');
    // The strictest common settings: strict reverse-path filter, ARP replies
    // only for addresses of the interface, ARP requests from an address of
    // the outgoing interface's scope.
    for (const [key, value] of [
      ['net.ipv4.conf.all.rp_filter', '1'],
      ['net.ipv4.conf.all.arp_ignore', '1'],
      ['net.ipv4.conf.all.arp_announce', '2'],
    ] as const) {
      execFileSync('ip', ['netns', 'exec', HOST, 'sysctl', '-q', '-w', `${key}=${value}`]);
    }
    flushNeighbours();
    t.same(await udpAsk(CTR, R, PORT, 5000), answered, 'rp_filter=1, arp_ignore=1, arp_announce=2');
    const neigh = ipOut('-n', CTR, 'neigh', 'show', 'dev', 'eth0');
    t.match(neigh, new RegExp(`^${R.replace(/\./g, '\\.')} lladdr `, 'm'), 'the container resolved R on its link');
    // The host forgets the container while the container still knows R: to
    // answer, the host ARPs for the container itself. With arp_announce=2 the
    // request's source is chosen at link scope: R must be scope link (a
    // host-scope R would be skipped for the underlay address, which a
    // container with a strict rp_filter ignores: the answer is lost).
    execFileSync('ip', ['netns', 'exec', CTR, 'sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=1']);
    ip('-n', HOST, 'neigh', 'flush', 'dev', net.bridge);
    t.same(await udpAsk(CTR, R, PORT, 5000), answered, 'the host ARPs for the container from R');
  });

  await t.test('only packets from R see the table: the main table has no route to the subnet', async (t) => {
    const main = JSON.parse(ipOut('-n', HOST, '-j', 'route', 'show', 'table', 'main')) as { dst: string; dev: string }[];
    t.notOk(
      main.some((r) => r.dst === SUBNET || r.dev === net.bridge),
      'no main-table route to the subnet or through the bridge',
    );
    const plain = JSON.parse(ipOut('-n', HOST, '-j', 'route', 'get', CTR_IP)) as { dev: string }[];
    t.equal(plain[0]?.dev, UNDERLAY, 'the host itself reaches the container subnet only through its default route');
    const fromR = JSON.parse(ipOut('-n', HOST, '-j', 'route', 'get', CTR_IP, 'from', R)) as { dev: string; prefsrc?: string }[];
    t.equal(fromR[0]?.dev, net.bridge, 'from R: through the bridge');
    t.same(await dp?.call('listTableRoutes', TABLE), [route]);
    t.same(
      (await dp?.call('listOwnedLinks'))?.find((l) => l.name === net.bridge)?.addresses,
      [R],
      'the bridge lists R',
    );
  });

  await t.test('without the table route the answer is lost', async (t) => {
    t.equal(await dp?.call('deleteTableRoute', TABLE, route), true);
    t.same(await udpAsk(CTR, R, PORT, 1500), {}, 'no answer');
    await dp?.call('ensureTableRoute', TABLE, route);
    t.same(await udpAsk(CTR, R, PORT, 5000), answered, 'answered again once the route is back');
  });

  await t.test('firewall: R answers the bridges and the node, not the underlay', async (t) => {
    t.same(
      await udpAsk(OUT, R, PORT, 5000),
      { reply: '192.168.79.1 said hello', from: `${R}:${PORT}` },
      'without the rules a neighbour on the underlay reaches R',
    );
    const fw = new IptablesFirewall(undefined, (cmd, args) => runCommand('ip', ['netns', 'exec', HOST, cmd, ...args]));
    await fw.ensureResolverInput(R);
    await fw.ensureResolverInput(R);
    const rules = ipOut('netns', 'exec', HOST, 'iptables', '-S', 'INPUT').split('\n').filter((l) => l.startsWith('-A'));
    const tag = `-m comment --comment "${RESOLVER_COMMENT}"`;
    t.same(
      rules,
      [
        `-A INPUT -d ${R}/32 -i tsbr+ ${tag} -j ACCEPT`,
        `-A INPUT -d ${R}/32 -i lo ${tag} -j ACCEPT`,
        `-A INPUT -d ${R}/32 ${tag} -j DROP`,
      ],
      'three rules, in order, once',
    );
    t.same(await udpAsk(OUT, R, PORT, 1500), {}, 'the neighbour gets no answer');
    t.same(await udpAsk(CTR, R, PORT, 5000), answered, 'the container still does');
    t.same(await udpAsk(HOST, R, PORT, 5000), { reply: `${R} said hello`, from: `${R}:${PORT}` }, 'and the node itself (lo)');
  });
};

if (serverEnv !== undefined) {
  // A dataplane server for the data-path test (see RemoteDataplane).
  await serveDataplane();
} else if (childEnv !== undefined) {
  // Inside the throw-away namespace (see the parent branch below).
  const cfg = JSON.parse(childEnv) as ChildConfig;
  const logged: { level: string; obj: object; msg: string }[] = [];
  const record =
    (level: string) =>
    (obj: object, msg: string): void => {
      logged.push({ level, obj, msg });
    };
  const log = { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
  const dp = new NetlinkDataplane({ log, requestTimeoutMs: 5000 });
  const other = new NetlinkDataplane({ requestTimeoutMs: 5000 });
  t.teardown(() => Promise.all([dp.close(), other.close()]));
  contract(t, netlinkEnv(cfg, dp, other));
  t.test('logs why it recreated devices', async (t) => {
    const warnings = logged.filter((l) => l.level === 'warn');
    t.match(
      warnings.find((l) => l.msg === 'recreating incompatible vxlan device'),
      { obj: { device: vxlanName(0x100), reason: 'vni 256, want 257' } },
    );
    t.match(
      warnings.find((l) => l.msg === 'recreating incompatible device'),
      { obj: { device: bridgeName(0x300), reason: 'kind is veth, want bridge' } },
    );
    t.ok(logged.some((l) => l.msg === 'created veth pair'), 'creations are logged at info');
  });
} else {
  for (const mtu of MTUS) {
    t.test(`FakeDataplane, underlay MTU ${mtu}`, async (t) => contract(t, fakeEnv(mtu)));
  }

  const it = process.env['TSOVERLAY_IT'] === '1';
  for (const mtu of MTUS) {
    const opts = it ? {} : { skip: 'needs root and a kernel with vxlan: set TSOVERLAY_IT=1' };
    t.test(`NetlinkDataplane, underlay MTU ${mtu}`, opts, async (t) => {
      const ns = `tsct-${randomBytes(4).toString('hex')}`;
      const sandbox = `${ns}-sb`;
      // Registered first, so a half-built setup is removed too.
      t.teardown(() => {
        for (const n of [sandbox, ns]) if (existsSync(`/run/netns/${n}`)) ip('netns', 'del', n);
      });
      ip('netns', 'add', ns);
      ip('netns', 'add', sandbox);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'add', UNDERLAY, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'ulpeer', 'mtu', String(mtu));
      ip('-n', ns, 'addr', 'add', `${V4}/24`, 'dev', UNDERLAY);
      ip('-n', ns, 'addr', 'add', `${V6}/64`, 'dev', UNDERLAY, 'nodad');
      ip('-n', ns, 'link', 'set', UNDERLAY, 'up');
      ip('-n', ns, 'link', 'set', 'ulpeer', 'up');
      const config: ChildConfig = { sandbox, mtu };
      await t.spawn(
        'nsenter',
        [`--net=/run/netns/${ns}`, process.execPath, ...process.execArgv, SELF],
        { env: { ...process.env, TSOVERLAY_NETNS_CHILD: JSON.stringify(config) } },
        `contract inside netns ${ns}`,
      );
    });
  }
  const opts = it ? {} : { skip: 'needs root and a kernel with vxlan: set TSOVERLAY_IT=1' };
  t.test('NetlinkDataplane data path between two hosts', opts, dataPath);
  t.test('resolver address: data path through the bridge, policy routing, firewall', opts, resolverPath);
}

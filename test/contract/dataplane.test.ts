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
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import type { Dataplane, EndpointDevices, NetworkDevices, ObservedLink, Underlay } from '../../src/dataplane/dataplane.js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import { bridgeName, containerIfName, hostIfName, vxlanName } from '../../src/dataplane/names.js';
import { NetlinkDataplane } from '../../src/dataplane/netlink-dataplane.js';

const V4 = '192.168.77.2';
const V6 = 'fd77::2';
const UNDERLAY = 'ul0';
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

interface ContractEnv {
  dp: Dataplane;
  underlayMtu: number;
  setDefaultRoute(on: boolean): Promise<void>;
  /** Move a device into the sandbox namespace, as Docker does at Join. */
  moveToSandbox(ifname: string): Promise<void>;
  /** Create a veth pair behind the dataplane's back (leftovers of a crash). */
  addVethPair(name: string, peer: string): Promise<void>;
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

  t.test('leaves nothing behind', async (t) => {
    t.same(await dp.listOwnedLinks(), []);
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
    dp: fake,
    underlayMtu: mtu,
    setDefaultRoute: async (on) => {
      fake.defaultRoute = on;
    },
    moveToSandbox: async (ifname) => fake.moveToSandbox(ifname),
    addVethPair: async (name, peer) => fake.addVethPair(name, peer),
  };
};

/** Run `ip` (in whatever namespace this process is in); throws with stderr on failure. */
const ip = (...args: string[]): void => {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
};

const netlinkEnv = (cfg: ChildConfig, dp: Dataplane): ContractEnv => ({
  dp,
  underlayMtu: cfg.mtu,
  setDefaultRoute: async (on) => (on ? ip('route', 'add', 'default', 'dev', UNDERLAY) : ip('route', 'del', 'default')),
  moveToSandbox: async (ifname) => ip('link', 'set', ifname, 'netns', cfg.sandbox),
  addVethPair: async (name, peer) => ip('link', 'add', name, 'type', 'veth', 'peer', 'name', peer),
});

const MTUS = [1500, 9000];
const childEnv = process.env['TSOVERLAY_NETNS_CHILD'];

if (childEnv !== undefined) {
  // Inside the throw-away namespace (see the parent branch below).
  const cfg = JSON.parse(childEnv) as ChildConfig;
  const dp = new NetlinkDataplane({ requestTimeoutMs: 5000 });
  t.teardown(() => dp.close());
  contract(t, netlinkEnv(cfg, dp));
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
      const self = fileURLToPath(import.meta.url);
      const config: ChildConfig = { sandbox, mtu };
      await t.spawn(
        'nsenter',
        [`--net=/run/netns/${ns}`, process.execPath, ...process.execArgv, self],
        { env: { ...process.env, TSOVERLAY_NETNS_CHILD: JSON.stringify(config) } },
        `contract inside netns ${ns}`,
      );
    });
  }
}

/**
 * The harness of the Dataplane contract suites (test/contract/dataplane/*.test.ts):
 * each suite runs against FakeDataplane (always) and NetlinkDataplane (with
 * TSOVERLAY_IT=1, as root), through `runDataplaneContract`.
 *
 * Node cannot switch its own network namespace, so for the real adapter the
 * suite's file re-executes itself: the parent creates a throw-away namespace
 * `tsct-<random>` with a veth underlay `ul0` (192.168.77.2/24, fd77::2/64; the
 * kernel here has no `dummy` driver) plus a "sandbox" namespace standing in
 * for a container, and runs the file under `nsenter --net=…` with
 * TSOVERLAY_NETNS_CHILD set (same node and tap loader flags, via `t.spawn`, so
 * the child's TAP output nests here). Both namespaces are deleted in
 * `t.teardown`, which also takes every device in them.
 *
 * Every subtest of a suite starts and ends with no devices of ours, and the
 * suite ends by checking that nothing is left behind.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import type {
  BridgeNetworkDevices,
  Dataplane,
  Forwarding,
  MacvlanEndpointDevices,
  MacvlanNetworkDevices,
  ObservedLink,
  Underlay,
  VethEndpointDevices,
} from '../../../src/dataplane/dataplane.js';
import { FakeDataplane } from '../../../src/dataplane/fake-dataplane.js';
import { bridgeName, containerIfName, hostIfName, vxlanName } from '../../../src/dataplane/names.js';
import { NetlinkDataplane } from '../../../src/dataplane/netlink-dataplane.js';

export const V4 = '192.168.77.2';
export const V6 = 'fd77::2';
export const UNDERLAY = 'ul0';
export const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** Entries of each kind in the bulk test (the scale the project targets). */
export const BULK = 5000;

export interface ContractEnv {
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

export interface ChildConfig {
  sandbox: string;
  mtu: number;
}



export const byName = async (dp: Dataplane): Promise<Map<string, ObservedLink>> =>
  new Map((await dp.listOwnedLinks()).map((l) => [l.name, l]));

export const removeOwned = async (dp: Dataplane): Promise<void> => {
  for (const l of await dp.listOwnedLinks()) await dp.deleteLink(l.name);
};

export const netSpec = (vni: number, port: number, ul: Underlay, env: ContractEnv): BridgeNetworkDevices => ({
  layout: 'bridge',
  vni,
  bridge: bridgeName(vni),
  vxlan: vxlanName(vni),
  port,
  local: ul.address,
  underlayIndex: ul.ifindex,
  mtu: env.underlayMtu - 50,
});

export const epSpec = (id: string, net: BridgeNetworkDevices, mac: string): VethEndpointDevices => ({
  layout: 'bridge',
  hostIf: hostIfName(id),
  containerIf: containerIfName(id),
  bridge: net.bridge,
  mtu: net.mtu,
  mac,
});

/** The same network in the macvlan layout: the host macvlan under the bridge's name, with its MAC (or `mac`). */
export const asMacvlan = (net: BridgeNetworkDevices, mac = net.bridgeMac): MacvlanNetworkDevices => {
  const { layout: _, bridge, bridgeMac: __, ...vxlan } = net;
  return { ...vxlan, layout: 'macvlan', hostMacvlan: bridge, ...(mac === undefined ? {} : { hostMacvlanMac: mac }) };
};

/** The same endpoint in the macvlan layout: its container end, a macvlan on `vxlan`. */
export const asMacvlanEndpoint = (ep: VethEndpointDevices, vxlan: string): MacvlanEndpointDevices => ({
  layout: 'macvlan',
  containerIf: ep.containerIf,
  mtu: ep.mtu,
  mac: ep.mac,
  vxlan,
});

// ------------------------------------------------------ forwarding entries

export const ZERO = '00:00:00:00:00:00';
export const MAC_A = '02:42:0a:14:00:05';
export const MAC_B = '02:42:0a:14:00:06';
export const MAC_C = '02:42:0a:14:00:07';
/** Remote VTEPs: any address works, the kernel does not check reachability. */
export const PEER1 = '192.168.77.10';
export const PEER2 = '192.168.77.11';
export const PEER3 = '192.168.77.12';
export const EMPTY: Forwarding = { fdb: [], neigh: [] };

/** The n-th of many distinct unicast MACs / IPs, for the bulk test. */
export const nthMac = (n: number): string => `02:43:00:${[(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
export const nthIp = (n: number): string => `10.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${n & 0xff}`;
export const nthPeer = (n: number): string => `192.168.${100 + (n % 50)}.${1 + (n % 200)}`;

// ------------------------------------------------------ resolver routing

export const R = '169.254.53.53';
export const R6 = 'fd53::53';
export const TABLE = 5353;
export const PRIORITY = 5353;

// ------------------------------------------------------------- environments

export const fakeEnv = (mtu: number): ContractEnv => {
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
export const ip = (...args: string[]): void => {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
};

/** Run `ip` and return its stdout. */
export const ipOut = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** The kernel's own rules (local, main, default), which `rules()` leaves out. */
export const KERNEL_RULES = new Set([0, 32766, 32767]);
export const ownRules = (): { family: string; priority: number; src: string; table: string }[] =>
  ['-4', '-6'].flatMap((family) =>
    (JSON.parse(ipOut(family, '-j', 'rule', 'show')) as { priority: number; src: string; table: string }[])
      .filter((r) => !KERNEL_RULES.has(r.priority))
      .map((r) => ({ family, ...r })),
  );

export const netlinkEnv = (cfg: ChildConfig, dp: Dataplane, other: Dataplane): ContractEnv => ({
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

export const MTUS = [1500, 9000];

/** What the real adapter logged in the child, for suites that check it. */
export interface Logged {
  level: string;
  obj: object;
  msg: string;
}

export interface ContractOptions {
  /** Tests that run after the suite, in the child only (the real adapter), with what it logged. */
  afterInKernel?: (t: Test, logged: Logged[]) => void;
}

const withHooks = (t: Test, env: ContractEnv, suite: (t: Test, env: ContractEnv) => void): void => {
  // Every subtest starts and ends with no devices of ours.
  t.beforeEach(() => removeOwned(env.dp));
  t.afterEach(() => removeOwned(env.dp));
  suite(t, env);
  t.test('leaves nothing behind', async (t) => {
    t.same(await env.dp.listOwnedLinks(), []);
    t.same(await env.dp.listTableRoutes(TABLE), [], 'no routes (they went with the devices)');
    t.same(await env.rules(), [], 'no rules');
  });
};

/**
 * Run `suite` against the fake (two underlay MTUs) and, with TSOVERLAY_IT=1,
 * against the real adapter in a throw-away namespace: the file `selfUrl`
 * (the suite's `import.meta.url`) is run again there.
 */
export const runDataplaneContract = (selfUrl: string, suite: (t: Test, env: ContractEnv) => void, options: ContractOptions = {}): void => {
  const self = fileURLToPath(selfUrl);
  const childEnv = process.env['TSOVERLAY_NETNS_CHILD'];
  if (childEnv !== undefined) {
    // Inside the throw-away namespace (see the parent branch below).
    const cfg = JSON.parse(childEnv) as ChildConfig;
    const logged: Logged[] = [];
    const record =
      (level: string) =>
      (obj: object, msg: string): void => {
        logged.push({ level, obj, msg });
      };
    const log = { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
    const dp = new NetlinkDataplane({ log, requestTimeoutMs: 5000 });
    const other = new NetlinkDataplane({ requestTimeoutMs: 5000 });
    t.teardown(() => Promise.all([dp.close(), other.close()]));
    const env = netlinkEnv(cfg, dp, other);
    withHooks(t, env, suite);
    options.afterInKernel?.(t, logged);
    return;
  }
  for (const mtu of MTUS) {
    t.test(`FakeDataplane, underlay MTU ${mtu}`, async (t) => withHooks(t, fakeEnv(mtu), suite));
  }
  const opts = realKernelOptions();
  for (const mtu of MTUS) {
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
        [`--net=/run/netns/${ns}`, process.execPath, ...process.execArgv, self],
        { env: { ...process.env, TSOVERLAY_NETNS_CHILD: JSON.stringify(config) } },
        `contract inside netns ${ns}`,
      );
    });
  }
};

/** Subtest options of the real-kernel tests: skipped without TSOVERLAY_IT=1. */
export const realKernelOptions = (): { skip?: string } =>
  process.env['TSOVERLAY_IT'] === '1' ? {} : { skip: 'needs root and a kernel with vxlan: set TSOVERLAY_IT=1' };

/**
 * The data-path test (real kernel only, TSOVERLAY_IT=1): two "hosts"
 * (namespaces joined by a veth underlay), each with its own NetlinkDataplane
 * (RemoteDataplane, remote-dataplane.ts). Containers are two more
 * namespaces; `ping` runs in them through `ip netns exec`.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import t, { type Test } from 'tap';
import type { BridgeNetworkDevices, EndpointDevices, NetworkDevices } from '../../../src/dataplane/dataplane.js';
import { bridgeName, containerIfName, hostIfName, hostMacvlanName, vxlanName } from '../../../src/dataplane/names.js';
import { EMPTY, ip, ipOut, realKernelOptions, UNDERLAY, ZERO } from './harness.js';
import { RemoteDataplane } from './remote-dataplane.js';

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
    const end = { containerIf: containerIfName(h.endpoint), mtu: net.mtu, mac: h.mac };
    const ep: EndpointDevices =
      net.layout === 'macvlan'
        ? { ...end, layout: 'macvlan', vxlan: net.vxlan }
        : { ...end, layout: 'bridge', hostIf: hostIfName(h.endpoint), bridge: net.bridge };
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
  const nets: BridgeNetworkDevices[] = [];
  for (const h of hosts) {
    ip('-n', h.ns, 'addr', 'add', `${h.underlay}/24`, 'dev', UNDERLAY);
    ip('-n', h.ns, 'link', 'set', UNDERLAY, 'up');
    const dp = new RemoteDataplane(h.ns);
    servers.push(dp);
    const ul = await dp.call('resolveUnderlay', UNDERLAY);
    const net: BridgeNetworkDevices = {
      layout: 'bridge',
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
  const [netA] = nets as [BridgeNetworkDevices];
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
    // the failed pings before left FAILED entries in the containers: they resolve afresh
    flushContainers();
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
    for (const [i, dp] of servers.entries()) await dp.call('ensureNetwork', { ...(nets[i] as BridgeNetworkDevices), group });
    t.same(await dpA.call('listForwarding', vx), EMPTY, 'the recreated device has no entries');
    t.match(
      (await dpA.call('listOwnedLinks')).find((l) => l.name === vx),
      { vxlan: { group }, master: netA.bridge, up: true },
      'recreated with the group, on the bridge',
    );
    flushContainers();
    t.notOk(pings(A.ctr, B.ip, 2), 'no neighbour entries: ARP is not flooded, the proxy drops it');
    await each((dp, _self, peer) => neighbours(dp, peer));
    flushContainers(); // the failed ping left a FAILED entry in A
    t.ok(pings(A.ctr, B.ip, 5), 'A -> B over the group');
    t.ok(pings(B.ctr, A.ip6, 5), 'B -> A, IPv6, over the group');
  });

  await t.test('macvlan mode: the same path with no bridge; the macvlans die with their VXLAN device', async (t) => {
    const vni = VNI + 1;
    const mv = hosts.map((h, i) => ({ ...h, ip: `10.67.0.${i + 1}`, mac: `02:42:0a:43:00:0${i + 1}`, endpoint: `mv${h.endpoint.slice(2)}` }));
    const mvx = vxlanName(vni);
    for (const [i, h] of mv.entries()) {
      const dp = servers[i] as RemoteDataplane;
      const { group: _, layout: __, bridge: ___, ...base } = nets[i] as BridgeNetworkDevices;
      const net: NetworkDevices = { ...base, vni, layout: 'macvlan', hostMacvlan: hostMacvlanName(vni), vxlan: mvx };
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
    for (const h of mv) ip('-n', h.ctr, 'neigh', 'flush', 'dev', 'eth1'); // the failed ping's FAILED entry
    t.ok(pings(mA.ctr, mB.ip, 5), 'A -> B');
    t.ok(pings(mB.ctr, mA.ip, 5), 'B -> A');
    t.ok(pings(A.ctr, B.ip, 5), 'the bridge-mode network next to it still carries traffic');
    t.equal(await dpA.call('deleteLink', mvx), true);
    t.throws(() => ipOut('-n', mA.ctr, 'link', 'show', 'eth1'), 'the container lost its interface with the VXLAN device');
  });
};

t.test('NetlinkDataplane data path between two hosts', realKernelOptions(), dataPath);

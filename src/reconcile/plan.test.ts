import t from 'tap';
import type { BridgeNetworkDevices, EndpointDevices, NetworkDevices, ObservedLink, VethEndpointDevices } from '../dataplane/dataplane.js';
import { type Desired, keptLinks, plan, planDelta, planResolver, resolverSources } from './plan.js';

const net: BridgeNetworkDevices = { layout: 'bridge', vni: 4096, bridge: 'tsbr-001000', vxlan: 'tsvx-001000', port: 4789, local: '10.0.0.2', underlayIndex: 2, mtu: 1450 };
const ep: VethEndpointDevices = { layout: 'bridge', hostIf: 'tshf80e0567aaa', containerIf: 'tscf80e0567aaa', bridge: 'tsbr-001000', mtu: 1450, mac: '02:42:0a:14:00:02' };

const bridge = (o: Partial<ObservedLink> = {}): ObservedLink => ({ name: net.bridge, index: 10, kind: 'bridge', mtu: 1450, up: true, ...o });
const vxlan = (o: Partial<ObservedLink> = {}, vx: Partial<NonNullable<ObservedLink['vxlan']>> = {}, detached = false): ObservedLink => ({
  name: net.vxlan,
  index: 11,
  kind: 'vxlan',
  mtu: 1450,
  up: true,
  ...(detached ? {} : { master: net.bridge }),
  vxlan: { vni: 4096, port: 4789, local: '10.0.0.2', link: 2, learning: false, proxy: true, ...vx },
  ...o,
});
const host = (o: Partial<ObservedLink> = {}, detached = false): ObservedLink => ({
  name: ep.hostIf,
  index: 12,
  kind: 'veth',
  mtu: 1450,
  up: true,
  ...(detached ? {} : { master: net.bridge }),
  ...o,
});
const desired: Desired = { networks: [net], endpoints: [ep], forwarding: new Map() };

t.test('a converged kernel needs nothing', async (t) => {
  t.same(plan(desired, [bridge(), vxlan(), host()]), []);
  t.same(plan(desired, [bridge(), vxlan({}, { l2miss: false, l3miss: false }), host()]), [], 'miss flags read back off are no drift');
  // The container end sits in the container: nothing to do either way.
  t.same(plan(desired, [bridge(), vxlan(), host(), { name: ep.containerIf, index: 13, kind: 'veth', mtu: 1450, up: false }]), []);
});

t.test('missing or drifted network devices are ensured, with a reason', async (t) => {
  const cases: Array<[ObservedLink[], RegExp]> = [
    [[vxlan(), host()], /bridge tsbr-001000 missing/],
    [[bridge(), host()], /vxlan tsvx-001000 missing/],
    [[bridge({ mtu: 1500 }), vxlan(), host()], /mtu 1500 != 1450/],
    [[bridge({ up: false }), vxlan(), host()], /is down/],
    [[bridge(), vxlan({}, { vni: 5 }), host()], /vni 5 != 4096/],
    [[bridge(), vxlan({}, { port: 4790 }), host()], /port 4790 != 4789/],
    [[bridge(), vxlan({}, { local: '10.0.0.3' }), host()], /local 10.0.0.3 != 10.0.0.2/],
    [[bridge(), vxlan({}, { learning: true }), host()], /learning on/],
    [[bridge(), vxlan({}, { proxy: false }), host()], /proxy off/],
    [[bridge(), vxlan({}, {}, true), host()], /not on tsbr-001000/],
    [[bridge(), vxlan({ kind: 'dummy' }), host()], /not a vxlan/],
    [[bridge(), vxlan({}, { l2miss: true }), host()], /has l2miss on/],
    [[bridge(), vxlan({}, { l3miss: true }), host()], /has l3miss on/],
    [[bridge(), vxlan({}, { link: 3 }), host()], /underlay link 3 != 2/],
    [[bridge(), vxlan({}, { group: '239.1.1.1' }), host()], /group 239.1.1.1 != unset/],
  ];
  for (const [observed, reason] of cases) {
    const actions = plan(desired, observed);
    t.equal(actions.length, 1, String(reason));
    t.equal(actions[0]?.kind, 'ensureNetwork');
    t.match(actions[0]?.reason, reason);
  }
});

t.test('endpoint host ends are re-attached; lost endpoints are left alone', async (t) => {
  let a = plan(desired, [bridge(), vxlan(), host({}, true)]);
  t.match(a, [{ kind: 'ensureEndpoint', reason: /not on tsbr-001000/ }]);
  a = plan(desired, [bridge(), vxlan(), { name: ep.containerIf, index: 13, kind: 'veth', mtu: 1450, up: false }]);
  t.match(a, [{ kind: 'ensureEndpoint', reason: /missing/ }]);
  t.same(plan(desired, [bridge(), vxlan()]), []);
});

t.test('macvlan mode: VXLAN device on no bridge, the host macvlan on it; endpoints checked only while here', async (t) => {
  const { layout: _, bridge: __, ...vx } = net;
  const mnet: NetworkDevices = { ...vx, layout: 'macvlan', hostMacvlan: net.bridge, hostMacvlanMac: '06:00:00:00:00:01' };
  const mep: EndpointDevices = { layout: 'macvlan', containerIf: ep.containerIf, mtu: ep.mtu, mac: ep.mac, vxlan: net.vxlan };
  const want: Desired = { networks: [mnet], endpoints: [mep], forwarding: new Map() };
  const hostMv = (o: Partial<ObservedLink> = {}): ObservedLink => ({
    name: net.bridge,
    index: 10,
    kind: 'macvlan',
    lower: net.vxlan,
    macvlanMode: 4,
    mtu: 1450,
    up: true,
    mac: '06:00:00:00:00:01',
    ...o,
  });
  const ctr = (o: Partial<ObservedLink> = {}): ObservedLink => ({
    name: ep.containerIf,
    index: 13,
    kind: 'macvlan',
    lower: net.vxlan,
    macvlanMode: 4,
    mtu: 1450,
    up: false,
    mac: ep.mac,
    ...o,
  });
  t.same(plan(want, [hostMv(), vxlan({}, {}, true)]), [], 'converged, the endpoint in its container');
  t.same(plan(want, [hostMv(), vxlan({}, {}, true), ctr()]), [], 'converged, the endpoint not joined yet');
  const cases: Array<[ObservedLink[], RegExp]> = [
    [[vxlan({}, {}, true)], /host macvlan tsbr-001000 missing/],
    [[hostMv()], /vxlan tsvx-001000 missing/],
    [[bridge(), vxlan()], /tsvx-001000 is on tsbr-001000, want no bridge/],
    [[bridge(), vxlan({}, {}, true)], /tsbr-001000 is a bridge, not a macvlan/],
    [[hostMv({ lower: 'tsvx-00abcd' }), vxlan({}, {}, true)], /not on tsvx-001000/],
    [[hostMv({ macvlanMode: 1 }), vxlan({}, {}, true)], /macvlan mode 1 is not bridge/],
    [[hostMv({ mac: '06:00:00:00:00:02' }), vxlan({}, {}, true)], /mac 06:00:00:00:00:02 != 06:00:00:00:00:01/],
    [[hostMv({ up: false }), vxlan({}, {}, true)], /tsbr-001000 is down/],
    [[hostMv(), vxlan({}, { port: 4790 }, true)], /port 4790 != 4789/],
  ];
  for (const [observed, reason] of cases) {
    const actions = plan(want, observed);
    t.equal(actions.length, 1, String(reason));
    t.match(actions[0], { kind: 'ensureNetwork', reason }, String(reason));
  }
  t.match(plan(want, [hostMv(), vxlan({}, {}, true), ctr({ mtu: 1400 })]), [{ kind: 'ensureEndpoint', reason: /mtu 1400 != 1450/ }]);
  t.match(plan(want, [hostMv(), vxlan({}, {}, true), ctr({ kind: 'veth' })]), [{ kind: 'ensureEndpoint', reason: /not a macvlan/ }]);
  t.match(plan(want, [hostMv(), vxlan({}, {}, true), ctr({ mac: '02:42:0a:14:00:09' })]), [{ kind: 'ensureEndpoint', reason: /mac/ }]);
});

t.test('absence is not deletion: only links of networks removed through Docker are deleted', async (t) => {
  const strays = [
    bridge(),
    vxlan(),
    host(),
    { name: 'tsbr-00abcd', index: 20, kind: 'bridge', mtu: 1500, up: true },
    { name: 'tshdeadbeef123', index: 21, kind: 'veth', mtu: 1500, up: true, master: 'tsbr-00abcd' },
    { name: 'tsomething', index: 22, kind: 'dummy', mtu: 1500, up: true },
  ];
  // not in the store, never removed (a missing, unreadable or newer record): kept
  t.same(plan(desired, strays), [], 'owned links the store does not know are kept');
  t.same(keptLinks(desired, strays), ['tsbr-00abcd', 'tshdeadbeef123'], 'and reported as kept');
  t.same(plan({ networks: [], endpoints: [], forwarding: new Map() }, [bridge(), vxlan()]), [], 'an empty store deletes nothing');
  // removed through Docker (a tombstone or a deleted record): its devices and what hangs off them go
  const removed: Desired = { ...desired, removable: new Set([0xabcd]) };
  t.same(
    plan(removed, strays).map((x) => (x.kind === 'deleteLink' ? x.name : x.kind)),
    ['tsbr-00abcd', 'tshdeadbeef123'],
  );
  t.same(keptLinks(removed, strays), [], 'nothing left to report');
  t.same(plan({ networks: [], endpoints: [], forwarding: new Map(), removable: new Set([net.vni]) }, [bridge(), vxlan()]).length, 2);
});

t.test('planDelta: new and changed networks are ensured, removed ones deleted, endpoints left to the full pass', async (t) => {
  const other: BridgeNetworkDevices = { ...net, vni: 4097, bridge: 'tsbr-001001', vxlan: 'tsvx-001001' };
  const prev: Desired = { networks: [net, other], endpoints: [], forwarding: new Map() };
  t.same(planDelta(prev, prev), [], 'nothing changed: nothing to do, nothing read');
  const third: BridgeNetworkDevices = { ...net, vni: 4098, bridge: 'tsbr-001002', vxlan: 'tsvx-001002' };
  const next: Desired = { networks: [{ ...net, mtu: 1400 }, third], endpoints: [], forwarding: new Map() };
  const show = (d: Desired) => planDelta(prev, d).map((a) => `${a.kind} ${a.kind === 'ensureNetwork' ? a.spec.vxlan : 'name' in a ? a.name : ''} (${a.reason})`);
  t.same(show(next), [
    'ensureNetwork tsvx-001000 (changed in the store)',
    'ensureNetwork tsvx-001002 (new in the store)',
  ], 'a network that merely left the store keeps its devices');
  t.same(show({ ...next, removable: new Set([4097]) }), [
    'ensureNetwork tsvx-001000 (changed in the store)',
    'ensureNetwork tsvx-001002 (new in the store)',
    'deleteLink tsvx-001001 (network removed through Docker)',
    'deleteLink tsbr-001001 (network removed through Docker)',
  ], 'one removed through Docker loses them');
});

t.test('planResolver: a kept network (device here, not desired) keeps its reply route while the device exists', async (t) => {
  const R = '169.254.53.53';
  const want = { address: R, bridges: [net.bridge], routes: [{ dst: '10.20.0.0/24', dev: net.bridge, src: R }] };
  const kept = { dst: '10.30.0.0/24', dev: 'tsbr-002000', src: R };
  const stale = { dst: '10.21.0.0/24', dev: net.bridge, src: R };
  const links = [bridge({ addresses: [R] }), { ...bridge({ addresses: [R] }), name: 'tsbr-002000', index: 20 }];
  t.same(planResolver(want, links, [...want.routes, kept]), [], 'the kept network\'s route stays: its containers go on resolving');
  t.match(planResolver(want, links, [...want.routes, stale]), [{ kind: 'deleteTableRoute', route: stale }], 'a desired device\'s route to a subnet no longer desired goes');
  t.match(planResolver(want, links.slice(0, 1), [...want.routes, kept]), [{ kind: 'deleteTableRoute', route: kept }], 'without its device it goes');
  t.same(resolverSources(want, [...want.routes, kept, stale]), [
    { subnet: '10.20.0.0/24', device: net.bridge },
    { subnet: '10.30.0.0/24', device: 'tsbr-002000' },
  ], 'the source filter: desired networks and kept ones, not the stale route');
  t.same(resolverSources({ address: R, bridges: [], routes: [] }, []), [], 'no network: none (the firewall step then writes nothing)');
});

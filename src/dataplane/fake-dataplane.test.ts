import t from 'tap';
import { TsoverlayError } from '../errors.js';
import type { BridgeNetworkDevices, VethEndpointDevices } from './dataplane.js';
import { DEFAULT_FAKE_UNDERLAY, FakeDataplane, type FakeFailPoint } from './fake-dataplane.js';
import { bridgeName, containerIfName, hostIfName, vxlanName } from './names.js';

const net = (vni: number, over: Partial<BridgeNetworkDevices> = {}): BridgeNetworkDevices => ({
  layout: 'bridge',
  vni,
  bridge: bridgeName(vni),
  vxlan: vxlanName(vni),
  port: 4789,
  local: '10.0.0.2',
  underlayIndex: 2,
  mtu: 1450,
  ...over,
});
const ep = (id: string, n: BridgeNetworkDevices, mac = '02:42:0a:00:00:05'): VethEndpointDevices => ({
  layout: 'bridge',
  hostIf: hostIfName(id),
  containerIf: containerIfName(id),
  bridge: n.bridge,
  mtu: n.mtu,
  mac,
});

t.test('default underlay and default route', async (t) => {
  const fake = new FakeDataplane();
  t.same(await fake.resolveUnderlay(undefined), DEFAULT_FAKE_UNDERLAY);
  t.same(DEFAULT_FAKE_UNDERLAY, { ifname: 'eth0', ifindex: 2, address: '10.0.0.2', family: 4, mtu: 1500 });
  t.same(await fake.resolveUnderlay('eth0'), DEFAULT_FAKE_UNDERLAY);
  fake.defaultRoute = false;
  await t.rejects(fake.resolveUnderlay(undefined), { code: 'INVALID_OPTION', message: /no default route/ });
  const v6 = new FakeDataplane({ underlay: { ifname: 'ens3', ifindex: 5, address: '2001:db8::5', family: 6, mtu: 9000 } });
  t.same(await v6.resolveUnderlay('ens3'), { ifname: 'ens3', ifindex: 5, address: '2001:db8::5', family: 6, mtu: 9000 }, 'IPv6 only');
  t.same(fake.calls, [], 'reads are not logged');
});

t.test('ensureNetwork logs the call and the kernel changes; a replay changes nothing', async (t) => {
  const fake = new FakeDataplane();
  const n = net(0x2a);
  await fake.ensureNetwork(n);
  t.same(fake.calls, ['ensureNetwork tsbr-00002a', 'createLink tsbr-00002a', 'createLink tsvx-00002a']);
  const changes = fake.changes();
  await fake.ensureNetwork(n);
  t.same(fake.changes(), changes, 'no kernel change the second time');
  t.equal(fake.calls.at(-1), 'ensureNetwork tsbr-00002a');

  await fake.ensureNetwork({ ...n, mtu: 1400 });
  t.same(fake.changes().slice(changes.length), ['setLink tsvx-00002a mtu=1400', 'setLink tsbr-00002a mtu=1400']);

  const before = fake.changes().length;
  await fake.ensureNetwork({ ...n, vni: 0x2b, mtu: 1400 });
  t.same(fake.changes().slice(before), ['removeLink tsvx-00002a', 'createLink tsvx-00002a'], 'recreated');
  t.match(fake.links.get('tsvx-00002a'), { vxlan: { vni: 0x2b }, masterIndex: fake.links.get('tsbr-00002a')?.index });
});

t.test('failNext injects one failure per call, then works again', async (t) => {
  const fake = new FakeDataplane();
  const boom = new TsoverlayError('KERNEL_FAILURE', 'injected');
  fake.failNext('ensureNetwork', boom);
  await t.rejects(fake.ensureNetwork(net(1)), boom);
  t.equal(fake.links.size, 0, 'nothing done');
  await fake.ensureNetwork(net(1));
  t.equal(fake.links.size, 2);

  // A failure half-way leaves half the state; the next ensure completes it.
  fake.failNext('createLink', new Error('second create fails'));
  fake.failNext('createLink', new Error('queued: only the first one is consumed per call'));
  await t.rejects(fake.ensureNetwork(net(2)), { message: 'second create fails' });
  await t.rejects(fake.ensureNetwork(net(2)), { message: /queued/ });
  t.notOk(fake.links.has(bridgeName(2)));
  await fake.ensureNetwork(net(2));
  t.ok(fake.links.has(bridgeName(2)) && fake.links.has(vxlanName(2)));

  fake.failNext('setLink', new Error('set fails'));
  await fake.ensureNetwork(net(2)); // nothing to set: the failure stays queued
  await t.rejects(fake.ensureNetwork(net(2, { mtu: 1400 })), { message: 'set fails' });

  fake.failNext('deleteLink', new Error('nope'));
  await t.rejects(fake.deleteLink(vxlanName(2)), { message: 'nope' });
  t.equal(await fake.deleteLink(vxlanName(2)), true);
  fake.failNext('listOwnedLinks', new Error('list'));
  await t.rejects(fake.listOwnedLinks(), { message: 'list' });
  fake.failNext('resolveUnderlay', new Error('ul'));
  await t.rejects(fake.resolveUnderlay(undefined), { message: 'ul' });
});

t.test('veth pairs, sandbox moves and deletes', async (t) => {
  const fake = new FakeDataplane();
  const n = net(7);
  await fake.ensureNetwork(n);
  const e = ep('0123456789abcdef', n);
  await fake.ensureEndpoint(e);
  t.match(fake.links.get(e.hostIf), { kind: 'veth', up: true, peer: e.containerIf, masterIndex: fake.links.get(n.bridge)?.index });
  t.match(fake.links.get(e.containerIf), { kind: 'veth', up: false, mac: e.mac, peer: e.hostIf });
  t.equal(fake.links.get(e.containerIf)?.masterIndex, undefined);

  fake.moveToSandbox(e.containerIf);
  t.notOk(fake.links.has(e.containerIf));
  t.ok(fake.sandboxed.has(e.containerIf));
  t.throws(() => fake.moveToSandbox(e.containerIf), /no device/);
  const changes = fake.changes().length;
  await fake.ensureEndpoint(e);
  t.equal(fake.changes().length, changes, 'host end already converged');

  t.equal(await fake.deleteLink(e.hostIf), true);
  t.equal(fake.sandboxed.size, 0, 'the sandboxed end went with it');
  t.equal(await fake.deleteLink(e.hostIf), false);
  t.equal(fake.calls.at(-1), `deleteLink ${e.hostIf}`, 'logged even when missing');

  // An orphaned container end is replaced.
  fake.addVethPair(e.containerIf, 'tsjunk0');
  t.throws(() => fake.addVethPair('tsjunk0', 'x'), /exists/);
  await fake.ensureEndpoint(e);
  t.notOk(fake.links.has('tsjunk0'));
  t.ok(fake.links.has(e.hostIf));
});

t.test('deleting a bridge releases its ports', async (t) => {
  const fake = new FakeDataplane();
  const n = net(9);
  await fake.ensureNetwork(n);
  await fake.ensureEndpoint(ep('abcdefabcdef', n));
  t.equal(await fake.deleteLink(n.bridge), true);
  const observed = await fake.listOwnedLinks();
  t.same(observed.filter((l) => l.master !== undefined), []);
  await fake.ensureNetwork(n);
  t.match((await fake.listOwnedLinks()).find((l) => l.name === n.vxlan), { master: n.bridge }, 're-enslaved');
});

t.test('kernel rules: VNI+port conflicts, MTU, unknown underlay', async (t) => {
  const fake = new FakeDataplane();
  await fake.ensureNetwork(net(1));
  await t.rejects(fake.ensureNetwork(net(2, { vni: 1 })), {
    code: 'KERNEL_CONFLICT',
    message: 'create vxlan tsvx-000002: EEXIST (VNI 1 on UDP port 4789 is already used by tsvx-000001)',
  });
  await fake.ensureNetwork(net(3, { vni: 1, port: 4790 }));
  await t.rejects(fake.ensureNetwork(net(5, { mtu: 1451 })), { code: 'INVALID_OPTION' });
  await t.rejects(fake.ensureNetwork(net(5, { underlayIndex: 99 })), { code: 'KERNEL_FAILURE', message: /#99 does not exist/ });
  await t.rejects(fake.ensureEndpoint(ep('abcdefabcdef', net(6))), { code: 'KERNEL_FAILURE', message: /does not exist/ });
});

t.test('close', async (t) => {
  const fake = new FakeDataplane();
  await fake.close();
  t.equal(fake.closed, true);
});

t.test('forwarding entries: calls, kernel changes, failures', async (t) => {
  const fake = new FakeDataplane();
  const n = net(0x2a);
  await fake.ensureNetwork(n);
  const before = fake.changes().length;
  await fake.addFdb(n.vxlan, { mac: '02:42:0a:00:00:05', dst: '10.0.0.3' });
  await fake.addFdb(n.vxlan, { mac: '02:42:0A:00:00:05', dst: '10.0.0.3' }); // replay
  await fake.addFdb(n.vxlan, { mac: '02:42:0a:00:00:05', dst: '10.0.0.4' }); // moves
  await fake.addFdb(n.vxlan, { mac: '00:00:00:00:00:00', dst: '10.0.0.3' });
  await fake.addFdb(n.vxlan, { mac: '00:00:00:00:00:00', dst: '10.0.0.4' });
  await fake.addNeigh(n.vxlan, { ip: '10.1.0.5', mac: '02:42:0a:00:00:05' });
  await fake.addNeigh(n.vxlan, { ip: '10.1.0.5', mac: '02:42:0a:00:00:05' }); // replay
  t.same(fake.changes().slice(before), [
    'setFdb tsvx-00002a 02:42:0a:00:00:05 10.0.0.3',
    'removeFdb tsvx-00002a 02:42:0a:00:00:05 10.0.0.3',
    'setFdb tsvx-00002a 02:42:0a:00:00:05 10.0.0.4',
    'setFdb tsvx-00002a 00:00:00:00:00:00 10.0.0.3',
    'setFdb tsvx-00002a 00:00:00:00:00:00 10.0.0.4',
    'setNeigh tsvx-00002a 10.1.0.5 02:42:0a:00:00:05',
  ]);
  t.equal(fake.calls.filter((c) => c.startsWith('addFdb ')).length, 5, 'every API call is logged');
  const changes = fake.changes().length;
  t.equal(await fake.deleteFdb(n.vxlan, { mac: '00:00:00:00:00:00', dst: '10.0.0.3' }), true);
  t.equal(await fake.deleteNeigh(n.vxlan, { ip: '10.1.0.5', mac: '02:42:0a:00:00:06' }), false, 'another MAC: kept');
  t.equal(await fake.deleteNeigh(n.vxlan, { ip: '10.1.0.5', mac: '02:42:0a:00:00:05' }), true);
  t.same(fake.changes().slice(changes), [
    'removeFdb tsvx-00002a 00:00:00:00:00:00 10.0.0.3',
    'removeNeigh tsvx-00002a 10.1.0.5 02:42:0a:00:00:05',
  ]);
  t.same(await fake.listForwarding(n.vxlan), {
    fdb: [
      { mac: '00:00:00:00:00:00', dst: '10.0.0.4' },
      { mac: '02:42:0a:00:00:05', dst: '10.0.0.4' },
    ],
    neigh: [],
  });

  for (const point of ['listForwarding', 'addFdb', 'deleteFdb', 'addNeigh', 'deleteNeigh'] as const) {
    fake.failNext(point, new Error(point));
  }
  await t.rejects(fake.listForwarding(n.vxlan), { message: 'listForwarding' });
  await t.rejects(fake.addFdb(n.vxlan, { mac: '02:42:0a:00:00:07', dst: '10.0.0.3' }), { message: 'addFdb' });
  await t.rejects(fake.deleteFdb(n.vxlan, { mac: '02:42:0a:00:00:05', dst: '10.0.0.4' }), { message: 'deleteFdb' });
  await t.rejects(fake.addNeigh(n.vxlan, { ip: '10.1.0.7', mac: '02:42:0a:00:00:07' }), { message: 'addNeigh' });
  await t.rejects(fake.deleteNeigh(n.vxlan, { ip: '10.1.0.7', mac: '02:42:0a:00:00:07' }), { message: 'deleteNeigh' });
  t.equal((await fake.listForwarding(n.vxlan)).fdb.length, 2, 'failed calls changed nothing');

  await fake.ensureNetwork({ ...n, group: '239.1.1.1' });
  t.same(await fake.listForwarding(n.vxlan), { fdb: [], neigh: [] }, 'recreated for the group: entries gone');
  t.equal(fake.links.get(n.vxlan)?.vxlan?.group, '239.1.1.1');
  await fake.deleteLink(n.vxlan);
  await t.rejects(fake.addNeigh(n.vxlan, { ip: '10.1.0.7', mac: '02:42:0a:00:00:07' }), {
    code: 'KERNEL_FAILURE',
    message: 'add neighbour tsvx-00002a: no such vxlan device',
  });
});

t.test('resolver routing: calls and kernel changes are logged; a replay changes nothing', async (t) => {
  const fake = new FakeDataplane();
  const n = net(0xabc);
  await fake.ensureNetwork(n);
  const start = fake.changes().length;
  const route = { dst: '10.77.0.0/24', dev: n.bridge, src: '169.254.53.53' };
  const apply = async (): Promise<void> => {
    await fake.ensureBridgeAddress(n.bridge, '169.254.53.53');
    await fake.ensureSourceRule('169.254.53.53', 5353, 5353);
    await fake.ensureTableRoute(5353, route);
  };
  await apply();
  t.same(fake.changes().slice(start), [
    `addAddress ${n.bridge} 169.254.53.53`,
    'addRule 169.254.53.53 5353 5353',
    `setRoute 5353 10.77.0.0/24 ${n.bridge} 169.254.53.53`,
  ]);
  const before = fake.changes();
  await apply();
  t.same(fake.changes(), before, 'replay: no kernel change');
  t.ok(fake.calls.includes(`ensureTableRoute 5353 10.77.0.0/24 ${n.bridge}`), 'API calls logged');
  t.same(fake.rules, [{ source: '169.254.53.53', table: 5353, priority: 5353 }]);

  await fake.deleteLink(n.bridge);
  t.same(await fake.listTableRoutes(5353), [], 'routes go with the device');
  t.notOk(fake.tables.has(5353), 'an emptied table is dropped');
  t.same(fake.rules.length, 1, 'rules stay (they name no device)');
});

t.test('resolver routing: failNext points', async (t) => {
  const fake = new FakeDataplane();
  await fake.ensureNetwork(net(1));
  const calls: [FakeFailPoint, () => Promise<unknown>][] = [
    ['ensureBridgeAddress', () => fake.ensureBridgeAddress(bridgeName(1), '169.254.53.53')],
    ['ensureSourceRule', () => fake.ensureSourceRule('169.254.53.53', 5353, 5353)],
    ['listTableRoutes', () => fake.listTableRoutes(5353)],
    ['ensureTableRoute', () => fake.ensureTableRoute(5353, { dst: '10.0.0.0/24', dev: bridgeName(1) })],
    ['deleteTableRoute', () => fake.deleteTableRoute(5353, { dst: '10.0.0.0/24', dev: bridgeName(1) })],
  ];
  for (const [point, call] of calls) {
    fake.failNext(point, new Error(point));
    await t.rejects(call(), { message: point }, point);
    await call(); // then works
  }
});

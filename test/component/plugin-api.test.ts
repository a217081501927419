/**
 * The whole plugin API through Fastify's inject(), on the fake store and the
 * fake kernel: what dockerd sends, what it gets back, and that refused calls
 * change nothing.
 */
import { pino } from 'pino';
import t from 'tap';
import { bridgeName, containerIfName, hostIfName, vxlanName } from '../../src/dataplane/names.js';
import { buildEdge } from '../../src/server/build-server.js';
import { EP, EP2, NET, NET2, attach, createNetwork, harness, networkOf } from './helpers.js';

t.test('activation and capabilities (empty bodies, no content type)', async (t) => {
  const h = await harness();
  t.same(await h.call('Plugin.Activate'), { status: 200, json: { Implements: ['NetworkDriver', 'IpamDriver'] } });
  t.same((await h.call('NetworkDriver.GetCapabilities')).json, { Scope: 'local', ConnectivityScope: 'global' });
  t.same((await h.call('IpamDriver.GetCapabilities')).json, { RequiresMACAddress: false, RequiresRequestReplay: false });
  t.same((await h.call('IpamDriver.GetDefaultAddressSpaces')).json, {
    LocalDefaultAddressSpace: 'tsoverlay-local',
    GlobalDefaultAddressSpace: 'tsoverlay-global',
  });
  // Called again later: same answer.
  t.same((await h.call('NetworkDriver.GetCapabilities')).json, { Scope: 'local', ConnectivityScope: 'global' });
});

t.test('an edge opened before its core (as serve does): capabilities answered, the rest refused until the core is filled', async (t) => {
  const edge = buildEdge(pino({ level: 'silent' }));
  const h = await harness({ edge });
  t.equal(h.app.server, edge.server, 'the app serves on the edge it was given');
  const ready = async () => {
    const r = await edge.server.inject({ method: 'GET', url: '/ready' });
    return { status: r.statusCode, json: JSON.parse(r.body) as unknown };
  };
  t.same(await ready(), {
    status: 503,
    json: { Ready: false, Err: 'store: tsoverlay is still connecting to its cluster store', Reasons: ['store: tsoverlay is still connecting to its cluster store'] },
  });
  const live = await edge.server.inject({ method: 'GET', url: '/live' });
  t.same([live.statusCode, JSON.parse(live.body)], [200, { Live: true }], 'GET /live: 200 while the process serves, ready or not');
  t.same(await h.call('Plugin.Activate'), { status: 200, json: { Implements: ['NetworkDriver', 'IpamDriver'] } });
  t.same((await h.call('NetworkDriver.GetCapabilities')).json, { Scope: 'local', ConnectivityScope: 'global' });
  t.same((await h.call('IpamDriver.GetDefaultAddressSpaces')).status, 200);
  const before = h.snapshot();
  const pool = { AddressSpace: 'tsoverlay-local', Pool: '10.30.0.0/24', SubPool: '', Options: {}, V6: false };
  t.same(await h.call('IpamDriver.RequestPool', pool), {
    status: 500,
    json: { Err: 'cluster store unavailable: tsoverlay is still connecting to it; try again shortly' },
  });
  t.same((await h.call('NetworkDriver.DeleteNetwork', { NetworkID: NET })).status, 500);
  t.equal((await h.call('NetworkDriver.CreateNetwork', { NetworkID: 5 })).status, 400, 'a bad body is still a 400');
  t.equal(h.snapshot(), before, 'refused calls changed nothing');

  edge.core.fill(h.app);
  t.same(await ready(), { status: 200, json: { Ready: true } });
  const { pool: got, res } = await createNetwork(h, { subnet: '10.30.0.0/24' });
  t.equal(got, '10.30.0.0/24');
  t.same(res, { status: 200, json: {} });
});

for (const mode of [undefined, 'bridge'] as const) {
  t.test(`network lifecycle creates and removes devices (${mode ?? 'default, macvlan'} mode)`, async (t) => {
    const h = await harness();
    const { poolId, pool, gateway, res } = await createNetwork(h, { subnet: '10.20.0.0/24', ...(mode ? { generic: { 'tsoverlay.mode': mode } } : {}) });
    t.equal(pool, '10.20.0.0/24');
    t.equal(gateway, '10.20.0.1/24');
    t.same(res, { status: 200, json: {} });
    const net = await networkOf(h, NET);
    t.equal(net?.vni, 4096);
    t.equal(net?.mtu, 1450);
    t.ok(h.dp.links.get(bridgeName(4096)));
    t.equal(h.dp.links.get(vxlanName(4096))?.vxlan?.vni, 4096);

    const { address, ce, join } = await attach(h, poolId);
    t.equal(address, '10.20.0.2/24');
    t.same(ce.json, { Interface: { MacAddress: '02:42:0a:14:00:02' } });
    t.same(join.json, { InterfaceName: { SrcName: containerIfName(EP), DstPrefix: 'eth' } });
    if (mode === 'bridge') t.match(h.dp.links.get(hostIfName(EP)), { kind: 'veth' }, 'a veth');
    else t.match(h.dp.links.get(containerIfName(EP)), { kind: 'macvlan', lowerIndex: h.dp.links.get(vxlanName(4096))?.index }, 'a macvlan on the VXLAN device');
    t.equal(h.dp.links.get(containerIfName(EP))?.mac, '02:42:0a:14:00:02');
    t.equal(h.dp.links.get(containerIfName(EP))?.mtu, 1450);
    t.same((await h.call('NetworkDriver.ProgramExternalConnectivity', { NetworkID: NET, EndpointID: EP, Options: {} })).json, {});
    t.same((await h.call('NetworkDriver.EndpointOperInfo', { NetworkID: NET, EndpointID: EP })).json, { Value: {} });
    h.dp.moveToSandbox(containerIfName(EP));

    t.same((await h.call('NetworkDriver.RevokeExternalConnectivity', { NetworkID: NET, EndpointID: EP })).json, {});
    t.same((await h.call('NetworkDriver.Leave', { NetworkID: NET, EndpointID: EP })).status, 200);
    t.same((await h.call('NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: EP })).status, 200);
    t.same((await h.call('IpamDriver.ReleaseAddress', { PoolID: poolId, Address: '10.20.0.2' })).status, 200);
    t.notOk(h.dp.links.get(hostIfName(EP)));

    t.equal((await h.call('IpamDriver.ReleaseAddress', { PoolID: poolId, Address: '10.20.0.1' })).status, 200);
    t.equal((await h.call('IpamDriver.ReleasePool', { PoolID: poolId })).status, 200);
    t.equal((await h.call('NetworkDriver.DeleteNetwork', { NetworkID: NET })).status, 200);
    t.same([...h.dp.links.keys()].filter((n) => n.startsWith('ts')), []);
    t.equal(await networkOf(h, NET), undefined);
  });
}

t.test('deletes and releases are idempotent, also for unknown ids', async (t) => {
  const h = await harness();
  for (const [m, b] of [
    ['NetworkDriver.DeleteNetwork', { NetworkID: NET }],
    ['NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: EP }],
    ['NetworkDriver.Leave', { NetworkID: NET, EndpointID: EP }],
    ['NetworkDriver.FreeNetwork', { NetworkID: NET }],
    ['IpamDriver.ReleasePool', { PoolID: 'tsoverlay-local:10.9.0.0_24' }],
    ['IpamDriver.ReleaseAddress', { PoolID: 'tsoverlay-local:10.9.0.0_24', Address: '10.9.0.3' }],
  ] as const) {
    t.same(await h.call(m, b), { status: 200, json: {} }, m);
    t.same(await h.call(m, b), { status: 200, json: {} }, `${m} again`);
  }
});

t.test('default pool, internal network, mtu option, fixed address', async (t) => {
  const h = await harness();
  const a = await createNetwork(h, { internal: true, generic: { 'com.docker.network.driver.mtu': '1400' } });
  t.equal(a.pool, '10.128.0.0/24');
  const net = await networkOf(h, NET);
  t.equal(net?.internal, true);
  t.equal(net?.mtu, 1400);
  const { address, join } = await attach(h, a.poolId, { ip: '10.128.0.50' });
  t.equal(address, '10.128.0.50/24');
  t.same(join.json, { InterfaceName: { SrcName: containerIfName(EP), DstPrefix: 'eth' }, DisableGatewayService: true });
  const b = await createNetwork(h, { id: NET2 });
  t.equal(b.pool, '10.128.1.0/24');
  t.equal((await networkOf(h, NET2))?.vni, 4097);
});

t.test('a MAC given by Docker is kept and not echoed back', async (t) => {
  const h = await harness();
  const { poolId } = await createNetwork(h, { subnet: '10.20.0.0/24' });
  const addr = await h.call('IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null });
  const ce = await h.call('NetworkDriver.CreateEndpoint', {
    NetworkID: NET,
    EndpointID: EP2,
    Interface: { Address: addr.json['Address'], AddressIPv6: '', MacAddress: '02:AA:BB:CC:DD:EE' },
  });
  t.same(ce, { status: 200, json: {} });
  t.equal(h.dp.links.get(containerIfName(EP2))?.mac, '02:aa:bb:cc:dd:ee');
});

t.test('refusals: clear errors, no state change', async (t) => {
  const h = await harness();
  await createNetwork(h, { subnet: '10.20.0.0/24' });

  // MTU above the maximum.
  const p2 = await h.call('IpamDriver.RequestPool', { AddressSpace: 'tsoverlay-local', Pool: '10.21.0.0/24', SubPool: '', Options: {}, V6: false });
  const before2 = h.snapshot();
  let r = await h.call('NetworkDriver.CreateNetwork', {
    NetworkID: NET2,
    Options: { 'com.docker.network.generic': { 'com.docker.network.driver.mtu': '1600' } },
    IPv4Data: [{ AddressSpace: 'tsoverlay-local', Pool: '10.21.0.0/24', Gateway: '10.21.0.1/24' }],
  });
  t.equal(r.status, 500);
  t.match(r.json['Err'], /above the maximum 1450/);
  t.equal(h.snapshot(), before2);
  await h.call('IpamDriver.ReleasePool', { PoolID: p2.json['PoolID'] });

  const before = h.snapshot();
  const links = [...h.dp.links.keys()].sort();

  // Docker's default IPAM.
  r = await h.call('NetworkDriver.CreateNetwork', {
    NetworkID: NET2,
    Options: { 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'LocalDefault', Gateway: '172.17.0.1/16', Pool: '172.17.0.0/16' }],
    IPv6Data: [],
  });
  t.equal(r.status, 500);
  t.match(r.json['Err'], /add --ipam-driver tsoverlay/);

  // Overlapping pool.
  r = await h.call('IpamDriver.RequestPool', { AddressSpace: 'tsoverlay-local', Pool: '10.20.0.128/25', SubPool: '', Options: {}, V6: false });
  t.equal(r.status, 500);
  t.match(r.json['Err'], /overlaps 10.20.0.0\/24/);

  // Unknown option.
  r = await h.call('NetworkDriver.CreateNetwork', {
    NetworkID: NET2,
    Options: { 'com.docker.network.generic': { vni: '5' } },
    IPv4Data: [{ AddressSpace: 'tsoverlay-local', Pool: '10.21.0.0/24' }],
  });
  t.match(r.json['Err'], /unknown driver option "vni"/);

  // Endpoint of an unknown network.
  r = await h.call('NetworkDriver.CreateEndpoint', { NetworkID: NET2, EndpointID: EP, Interface: { Address: '10.21.0.2/24' } });
  t.equal(r.status, 500);
  t.match(r.json['Err'], /not known to tsoverlay/);
  r = await h.call('NetworkDriver.Join', { NetworkID: NET, EndpointID: EP2 });
  t.match(r.json['Err'], /endpoint .* is not known/);

  t.equal(h.snapshot(), before);
  t.same([...h.dp.links.keys()].sort(), links);
});

t.test('garbage bodies get 400 {"Err"} and change nothing; unknown paths 404', async (t) => {
  const h = await harness();
  await createNetwork(h, { subnet: '10.20.0.0/24' });
  const before = h.snapshot();
  const methods = [
    'NetworkDriver.CreateNetwork',
    'NetworkDriver.DeleteNetwork',
    'NetworkDriver.CreateEndpoint',
    'NetworkDriver.Join',
    'NetworkDriver.DeleteEndpoint',
    'IpamDriver.RequestPool',
    'IpamDriver.RequestAddress',
    'IpamDriver.ReleaseAddress',
    'IpamDriver.ReleasePool',
  ];
  const garbage: unknown[] = [
    '',
    '{not json',
    'null',
    '[]',
    '"str"',
    { NetworkID: 5 },
    { NetworkID: '../../etc', EndpointID: 'x' },
    { PoolID: '', Address: 7 },
    { AddressSpace: 1 },
    { NetworkID: [NET], EndpointID: {}, PoolID: null, Options: 'x', IPv4Data: 'y' },
  ];
  for (const m of methods) {
    for (const g of garbage) {
      const r = await h.call(m, g);
      t.ok(r.status >= 400 && r.status < 500, `${m} ${JSON.stringify(g)} → ${r.status}`);
      t.type(r.json['Err'], 'string');
      t.ok((r.json['Err'] as string).length > 0);
    }
  }
  const empty = await h.call('NetworkDriver.CreateNetwork');
  t.match(empty.json['Err'], /needs a JSON body/);
  const nf = await h.call('NetworkDriver.Nope', {});
  t.equal(nf.status, 404);
  t.match(nf.json['Err'], /does not implement/);
  t.equal(h.snapshot(), before);
});

t.test('kernel failure rolls the network back', async (t) => {
  const h = await harness();
  const pool = await h.call('IpamDriver.RequestPool', { AddressSpace: 'tsoverlay-local', Pool: '10.20.0.0/24', SubPool: '', Options: {}, V6: false });
  h.dp.failNext('ensureNetwork', new Error('boom'));
  const r = await h.call('NetworkDriver.CreateNetwork', {
    NetworkID: NET,
    Options: {},
    IPv4Data: [{ AddressSpace: 'tsoverlay-local', Pool: pool.json['Pool'] }],
  });
  t.equal(r.status, 500);
  t.match(r.json['Err'], /could not create the devices of network/);
  t.equal(await networkOf(h, NET), undefined);
  t.same(await h.app.state.usedVnis(), new Set());
});

t.test('replayed CreateNetwork / CreateEndpoint succeed without change', async (t) => {
  const h = await harness();
  const { poolId } = await createNetwork(h, { subnet: '10.20.0.0/24' });
  const r = await h.call('NetworkDriver.CreateNetwork', {
    NetworkID: NET,
    Options: {},
    IPv4Data: [{ AddressSpace: 'tsoverlay-local', Pool: '10.20.0.0/24' }],
  });
  t.equal(r.status, 200);
  t.same(await h.app.state.usedVnis(), new Set([4096]));
  await attach(h, poolId);
  const ce = await h.call('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: '10.20.0.2/24' } });
  t.equal(ce.status, 200);
});

t.test('a fixed VNI that is taken is refused', async (t) => {
  const h = await harness();
  await createNetwork(h, { subnet: '10.20.0.0/24', generic: { 'tsoverlay.vni': '77' } });
  t.equal((await networkOf(h, NET))?.vni, 77);
  const b = await createNetwork(h, { id: NET2, subnet: '10.21.0.0/24', generic: { 'tsoverlay.vni': '77' } });
  t.equal(b.res.status, 500);
  t.match(b.res.json['Err'], /VNI 77 is already used/);
});

/**
 * ClusterState as a facade (cluster-state.ts over state/*.ts) on the memory
 * store: the facade and the family objects it exposes see the same records,
 * endpoints and their names are removed together, node membership, and an
 * unreachable store becomes STORE_UNAVAILABLE in every family. Networks are
 * exercised through the driver in test/component.
 */
import t from 'tap';
import { asEndpointId, asNetworkId, asPoolId, type DnsNameRecord, type EndpointRecord, type PoolRecord } from '../model.js';
import { ClusterState } from './cluster-state.js';
import { KvUnavailable, type KvStore } from './kv-store.js';
import { MemoryKvStore } from './memory-kv-store.js';
import { dnsNamesDir, endpointsDir } from './paths.js';

const NET = 'tsoverlay-local:10.20.0.0_24';

const setup = async () => {
  const kv = new MemoryKvStore();
  const state = new ClusterState(kv);
  await state.init();
  return { kv, state };
};

const pool = (id: string, pfx: string): PoolRecord => ({
  id: asPoolId(id),
  space: 'tsoverlay-local',
  family: 4,
  pool: pfx,
  requested: true,
  users: ['n1'],
  options: {},
  createdAt: '2026-01-01T00:00:00.000Z',
});

const endpoint = (id: string): EndpointRecord => ({
  id: asEndpointId(id),
  networkId: asNetworkId(NET),
  node: 'n1',
  ipv4: '10.20.0.2/24',
  mac: '02:42:0a:14:00:02',
  hostIf: `tsh${id.slice(0, 11)}`,
  containerIf: `tsc${id.slice(0, 11)}`,
});

const names = (endpointId: string): DnsNameRecord => ({
  endpointId,
  network: NET,
  node: 'n1',
  containerId: 'c1',
  name: 'web',
  aliases: ['www'],
  ipv4: '10.20.0.2',
});

t.test('pools: the facade and state.pools are one', async (t) => {
  const { state } = await setup();
  const { version } = await state.listPools();
  t.ok(await state.createPool(pool(NET, '10.20.0.0/24'), version));
  t.notOk(await state.pools.createPool(pool('tsoverlay-local:10.21.0.0_24', '10.21.0.0/24'), version), 'stale /pools version');
  t.same(await state.pools.listPools(), await state.listPools());
  t.ok(await state.claimAddress(NET, { ip: '10.20.0.1', kind: 'gateway', node: 'n1' }));
  t.notOk(await state.pools.claimAddress(NET, { ip: '10.20.0.1', kind: 'endpoint', node: 'n1' }), 'taken once');
  t.same(await state.claimedAddresses(NET), ['10.20.0.1']);
  t.ok(await state.deletePool(NET));
  t.same((await state.listPools()).pools, []);
});

t.test('endpoints and names: replays accepted, names removed with their endpoint', async (t) => {
  const { kv, state } = await setup();
  await kv.commit([
    { type: 'create', path: endpointsDir(NET), data: '' },
    { type: 'create', path: dnsNamesDir(NET), data: '' },
  ]);
  const ep = endpoint('e1'.padEnd(64, 'a'));
  await state.createEndpoint(ep);
  await state.endpoints.createEndpoint(ep); // Docker retried
  await t.rejects(state.createEndpoint({ ...ep, mac: '02:00:00:00:00:09' }), { code: 'STORE_CONFLICT' });
  const read = await state.getEndpoint(NET, ep.id);
  t.same(read, ep);
  t.ok(Object.isFrozen(read), 'decoded records are frozen (shared by every reader)');
  t.same(await state.endpoints.listEndpoints(NET), [ep]);

  t.ok(await state.putDnsName(names(ep.id)));
  t.same(await state.names.listDnsNames(NET), [names(ep.id)]);
  t.ok(await state.deleteEndpoint(NET, ep.id));
  t.equal(await state.getDnsName(NET, ep.id), undefined, 'names go with the endpoint');
  t.notOk(await state.putDnsName(names(ep.id)), 'no names for a gone endpoint');
  t.notOk(await state.deleteEndpoint(NET, ep.id), 'already gone');
});

t.test('nodes: registered by this session', async (t) => {
  const { state } = await setup();
  const rec = { node: 'n1', address: '10.0.0.1', vxlanPort: 4789, hostname: 'h1', version: '0.1.0', startedAt: '2026-01-01T00:00:00.000Z' };
  await state.registerNode(rec);
  t.same(await state.nodeHolder('n1'), { rec, mine: true, version: 0 });
  t.same(await state.nodes.listNodes(), [rec]);
  t.equal(await state.nodeHolder('n2'), undefined);
});

t.test('gone-node records: written once while the node is absent, never moved forward; a malformed one is skipped', async (t) => {
  const { kv, state } = await setup();
  const first = { node: 'n3', since: '2026-12-05T10:01:02.000Z', by: 'n1' };
  t.ok(await state.nodes.markGone(first), 'written');
  t.notOk(await state.nodes.markGone({ ...first, since: '2026-12-05T11:00:00.000Z', by: 'n2' }), 'a second one is refused');
  t.same(await state.nodes.listGone(), [first], 'the first time stays');
  await kv.createEphemeral('/nodes/n4', '{}');
  t.notOk(await state.nodes.markGone({ node: 'n4', since: first.since, by: 'n1' }), 'a live node is never recorded as gone');
  t.same(await state.nodes.goneNames(), ['n3']);
  await kv.commit([{ type: 'create', path: '/gone/n5', data: '{"node":"n5","since":42}' }]);
  t.same(await state.nodes.listGone(), [first], 'a record that does not decode is skipped');
  t.ok(state.badRecords().some((b) => b.path === '/gone/n5'), 'and reported');
  t.same(await state.nodes.goneNames(), ['n3', 'n5'], 'it is still there by name');
  t.ok(await state.nodes.clearGone('n5'), 'and can be removed');
  t.ok(await state.nodes.clearGone('n3'));
  t.notOk(await state.nodes.clearGone('n3'), 'removing an absent record is no error');
  t.same(await state.nodes.goneNames(), []);
});

t.test('an unreachable store is STORE_UNAVAILABLE in every family', async (t) => {
  const down = new Proxy(new MemoryKvStore(), {
    get: (target, prop, receiver) => {
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? () => Promise.reject(new KvUnavailable('ZooKeeper is gone')) : v;
    },
  }) as KvStore;
  const state = new ClusterState(down);
  const unavailable = { code: 'STORE_UNAVAILABLE', message: /cluster store unavailable/ };
  await t.rejects(state.init(), unavailable);
  await t.rejects(state.listNetworks(), unavailable);
  await t.rejects(state.resolveNetwork('e'.repeat(64)), unavailable);
  await t.rejects(state.listPools(), unavailable);
  await t.rejects(state.getEndpoint(NET, 'e1'), unavailable);
  await t.rejects(state.listDnsNames(NET), unavailable);
  await t.rejects(state.listNodes(), unavailable);
  await t.rejects(state.nodes.listGone(), unavailable);
  await t.rejects(state.nodes.markGone({ node: 'n3', since: 'x', by: 'n1' }), unavailable);
});

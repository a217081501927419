/**
 * The collector on the memory store with a stand-in engine: a gone node's
 * records go after the delay and only then, by the lock holder only, never
 * this node's, never through a refused store; own endpoint records unknown
 * to a (reachable) engine go after the grace, with their addresses and names.
 */
import t from 'tap';
import type { EngineNetwork } from '../engine/engine.js';
import { silentLog } from '../log.js';
import { type AddressRecord, type EndpointRecord, type NetworkRecord, asEndpointId, asNetworkId, asPoolId, asVni } from '../model.js';
import { ClusterState } from '../store/cluster-state.js';
import { MemoryKvStore } from '../store/memory-kv-store.js';
import { Collector } from './collector.js';
import { LocalEndpoints } from './local-endpoints.js';

const NET = 'tsoverlay-local:10.20.0.0_29';

const network = (aliases: Record<string, string>): NetworkRecord => ({
  id: asNetworkId(NET),
  vni: asVni(4096),
  aliases,
  deleted: false,
  mtu: 1450,
  internal: false,
  ipv4: [{ poolId: asPoolId(NET), pool: '10.20.0.0/29', gateway: '10.20.0.1' }],
  ipv6: [],
  options: {},
  createdBy: 'n1',
  createdAt: '2026-01-01T00:00:00.000Z',
});

const endpoint = (id: string, node: string, ip: string): EndpointRecord => ({
  id: asEndpointId(id.padEnd(64, '0')),
  networkId: asNetworkId(NET),
  node,
  ipv4: `${ip}/29`,
  mac: '02:42:0a:14:00:02',
  hostIf: `tsh${id}`,
  containerIf: `tsc${id}`,
});

/** A store as three nodes left it: n1 (this node) and n2 live, n3 gone; one endpoint each, named. */
const setup = async (opts: { live?: string[] } = {}) => {
  const kv = new MemoryKvStore();
  const state = new ClusterState(kv);
  await state.init();
  await state.createNetwork(network({ e1: 'n1' }), 'e1', 'n1');
  await state.addAlias(NET, 'e2', 'n2');
  await state.addAlias(NET, 'e3', 'n3');
  const { version } = await state.listPools();
  await state.createPool({ id: asPoolId(NET), space: 'tsoverlay-local', family: 4, pool: '10.20.0.0/29', requested: true, users: ['n1', 'n2', 'n3'], options: {}, createdAt: 'x' }, version);
  const claim = (ip: string, node: string, kind: AddressRecord['kind'] = 'endpoint') => state.claimAddress(NET, { ip, kind, node });
  await claim('10.20.0.1', 'n3', 'gateway');
  const eps = { n1: endpoint('a1', 'n1', '10.20.0.2'), n2: endpoint('b2', 'n2', '10.20.0.3'), n3: endpoint('c3', 'n3', '10.20.0.4') };
  for (const [node, ep] of Object.entries(eps)) {
    await claim(ep.ipv4!.split('/')[0]!, node);
    await state.createEndpoint(ep);
    await state.putDnsName({ endpointId: ep.id, network: NET, node, containerId: `c-${node}`, name: `web-${node}`, aliases: [] });
  }
  await claim('10.20.0.5', 'n3'); // claimed, CreateEndpoint never came (kill -9)
  for (const n of opts.live ?? ['n1', 'n2']) await kv.createEphemeral(`/nodes/${n}`, '{}');
  return { kv, state, eps };
};

const engineWith = (known: Record<string, string[]>, opts: { down?: boolean } = {}) => ({
  inspectNetwork: async (id: string): Promise<EngineNetwork | undefined> => {
    if (opts.down) throw new Error('connect ENOENT /var/run/docker.sock');
    const eps = known[id];
    return eps && { id, name: 'ovr', driver: 'tsoverlay', ipamDriver: 'tsoverlay', subnets: [], options: {}, internal: false, ipv6: false, containers: eps.length, endpoints: eps.map((e) => ({ containerId: 'c', name: 'c', endpointId: e })) };
  },
});

const collector = (state: ClusterState, clock: { now: number }, extra: Partial<ConstructorParameters<typeof Collector>[0]> = {}) =>
  new Collector({ state, local: { takesPart: () => true, remove: () => undefined }, node: 'n1', collectAfterMs: 10_000, orphanGraceMs: 3000, intervalMs: 60_000, log: silentLog, mayChange: async () => true, now: () => clock.now, ...extra });

const held = async (state: ClusterState) => (await state.claimedAddresses(NET)).sort();
const names = async (state: ClusterState) => (await state.listDnsNames(NET)).map((n) => n.name).sort();

t.test('a gone node is collected after the delay: endpoints, names, addresses, alias, pool user', async (t) => {
  const { state, eps } = await setup();
  const clock = { now: 0 };
  const c = collector(state, clock);
  t.same((await c.runOnce()).nodes, [], 'first seen gone: only timed');
  clock.now = 9_999;
  await c.runOnce();
  t.equal((await state.listEndpoints(NET)).length, 3, 'nothing before the delay');
  clock.now = 10_000;
  const r = await c.runOnce();
  t.same(r.nodes, ['n3']);
  t.same(r.addresses, 2, 'the endpoint address and the lone claim');
  t.same((await state.listEndpoints(NET)).map((e) => e.node).sort(), ['n1', 'n2']);
  t.same(await names(state), ['web-n1', 'web-n2'], 'its name no longer resolves');
  t.same(await held(state), ['10.20.0.1', '10.20.0.2', '10.20.0.3'], 'its addresses are free; the gateway stays');
  t.same((await state.getNetwork(NET))?.aliases, { e1: 'n1', e2: 'n2' });
  t.equal(await state.resolveNetwork('e3'), undefined, 'its engine id is gone too');
  t.same((await state.getPool(NET))?.users, ['n1', 'n2']);
  t.equal(eps.n1.node, 'n1');
});

t.test('the holder records when a node was first seen gone: once, until it is back or nothing names it', async (t) => {
  const { kv, state } = await setup();
  const clock = { now: Date.parse('2026-12-05T10:00:00Z') };
  const c = collector(state, clock, { collectAfterMs: 60_000 });
  t.same(await state.nodes.listGone(), [], 'nothing before a pass');
  await c.runOnce();
  const first = { node: 'n3', since: '2026-12-05T10:00:00.000Z', by: 'n1' };
  t.same(await state.nodes.listGone(), [first], 'the gone node, at the first pass that saw it; never a live one');
  clock.now += 20_000;
  await c.runOnce();
  t.same(await state.nodes.listGone(), [first], 'never moved forward');
  // a takeover: a new holder does not rewrite it, and times collection from its own observation
  const next = collector(state, clock, { collectAfterMs: 60_000 });
  await next.runOnce();
  t.same(await state.nodes.listGone(), [first], 'a new holder keeps the time');
  clock.now += 50_000;
  t.same((await next.runOnce()).nodes, [], 'a new holder still waits the whole delay itself (70 s after the record, 50 s after its own look)');
  await kv.createEphemeral('/nodes/n3', '{}');
  await next.runOnce();
  t.same(await state.nodes.listGone(), [], 'back: removed');
  await kv.commit([{ type: 'delete', path: '/nodes/n3', version: -1 }]);
  clock.now += 1_000;
  await next.runOnce();
  t.same((await state.nodes.listGone()).map((g) => g.since), [new Date(clock.now).toISOString()], 'gone again: a new time');
  clock.now += 60_000;
  t.same((await next.runOnce()).nodes, ['n3'], 'collected');
  t.equal((await state.nodes.listGone()).length, 1, 'still recorded in the pass that collected it');
  await next.runOnce();
  t.same(await state.nodes.listGone(), [], 'nothing names it any more: removed at the next pass (no leak)');
});

t.test('a malformed gone-node record: never fatal, not rewritten; one of a node nothing names goes', async (t) => {
  const { kv, state } = await setup();
  await kv.commit([{ type: 'create', path: '/gone/n3', data: 'not json' }]);
  await kv.commit([{ type: 'create', path: '/gone/n8', data: '{}' }]);
  const clock = { now: 0 };
  const c = collector(state, clock);
  t.equal((await c.runOnce()).failed, false, 'the pass goes on');
  t.same(await state.nodes.goneNames(), ['n3'], 'the malformed record of a gone node stays (not rewritten); one of a node nothing names goes');
  t.same(await state.nodes.listGone(), [], 'unreadable: no time');
});

t.test('a node back before the delay keeps everything', async (t) => {
  const { kv, state } = await setup();
  const clock = { now: 0 };
  const c = collector(state, clock);
  await c.runOnce();
  clock.now = 9_000;
  await kv.createEphemeral('/nodes/n3', '{}'); // its session came back
  await c.runOnce();
  await kv.commit([{ type: 'delete', path: '/nodes/n3', version: -1 }]); // and went again
  clock.now = 15_000;
  t.same((await c.runOnce()).nodes, [], 'the delay starts over from its new absence');
  t.equal((await state.listEndpoints(NET)).length, 3);
  t.same((await state.getPool(NET))?.users, ['n1', 'n2', 'n3']);
  clock.now = 25_000;
  t.same((await c.runOnce()).nodes, ['n3'], 'collected once gone for the whole delay again');
});

t.test('a node that registers during the collection stops it (the commit checks its absence)', async (t) => {
  const { kv, state, eps } = await setup();
  await kv.createEphemeral('/nodes/n3', '{}');
  t.notOk(await state.collection.removeEndpoints([eps.n3], [{ poolId: NET, ip: '10.20.0.4' }], 'n3', 'n3'));
  t.equal((await state.listEndpoints(NET)).length, 3, 'nothing removed');
  t.equal(await state.collection.dropPoolUser((await state.getPool(NET))!, 'n3'), 'back');
  t.equal(await state.collection.dropAliases(NET, 'n3'), 'back');
});

t.test('this node is never collected, whatever its membership says', async (t) => {
  const { state } = await setup({ live: ['n2'] }); // n1's own /nodes entry missing (a session being renewed)
  const clock = { now: 0 };
  const c = collector(state, clock);
  await c.runOnce();
  clock.now = 1_000_000;
  const r = await c.runOnce();
  t.same(r.nodes, ['n3']);
  t.ok((await state.listEndpoints(NET)).some((e) => e.node === 'n1'), 'own endpoint kept');
  t.ok((await state.getPool(NET))?.users.includes('n1'));
});

t.test('one collector: the lock holder collects, another live node does not', async (t) => {
  const { kv, state } = await setup();
  const clock = { now: 0 };
  const first = collector(state, clock);
  const otherKv = Object.create(kv, { sessionId: { value: () => 'other' } }) as MemoryKvStore;
  const second = new Collector({ state: new ClusterState(otherKv), local: { takesPart: () => true, remove: () => undefined }, node: 'n2', collectAfterMs: 10_000, orphanGraceMs: 3000, intervalMs: 60_000, log: silentLog, mayChange: async () => true, now: () => clock.now });
  await first.runOnce();
  await second.runOnce();
  clock.now = 20_000;
  t.same((await second.runOnce()).nodes, [], 'not the lock holder: collects nothing');
  t.equal((await state.listEndpoints(NET)).length, 3);
  t.same((await first.runOnce()).nodes, ['n3'], 'the holder does');
  t.same(JSON.parse((await kv.get('/collector'))!.data), { node: 'n1' });
});

t.test('nothing is collected while the store is refused', async (t) => {
  const { state } = await setup();
  const clock = { now: 0 };
  let ok = false;
  const c = collector(state, clock, { mayChange: async () => ok, engine: engineWith({}) });
  await c.runOnce();
  clock.now = 1_000_000;
  t.same(await c.runOnce(), { nodes: [], endpoints: 0, addresses: 0, failed: false });
  t.equal((await state.listEndpoints(NET)).length, 3);
  ok = true;
  t.same((await c.runOnce()).nodes, [], 'accepted again: the delay starts over');
});

t.test('own orphans: an endpoint its engine no longer has goes after the grace, with address and name', async (t) => {
  const { state } = await setup({ live: ['n1', 'n2', 'n3'] });
  const clock = { now: 0 };
  const c = collector(state, clock, { engine: engineWith({ e1: [] }) });
  t.equal((await c.runOnce()).endpoints, 0, 'unknown once: timed');
  clock.now = 2_999;
  t.equal((await c.runOnce()).endpoints, 0, 'within the grace');
  clock.now = 3_000;
  t.equal((await c.runOnce()).endpoints, 1);
  t.same((await state.listEndpoints(NET)).map((e) => e.node).sort(), ['n2', 'n3'], 'only this node\'s record, only after two checks');
  t.same(await names(state), ['web-n2', 'web-n3']);
  t.notOk((await held(state)).includes('10.20.0.2'), 'its address is free');
});

t.test('own orphans: looked for only where this node takes part, and forgotten there once collected', async (t) => {
  const { state, eps } = await setup({ live: ['n1', 'n2', 'n3'] });
  const clock = { now: 0 };
  const local = new LocalEndpoints('n1');
  const c = collector(state, clock, { engine: engineWith({ e1: [] }), local });
  for (const now of [0, 3_000, 60_000]) {
    clock.now = now;
    t.equal((await c.runOnce()).endpoints, 0, `not taken part in: its records are not read (t = ${now} ms)`);
  }
  local.add(NET, eps.n1.id); // as the start scan or the driver's CreateEndpoint does
  clock.now = 100_000;
  await c.runOnce();
  clock.now = 103_000;
  t.equal((await c.runOnce()).endpoints, 1, 'taken part in: collected after the grace');
  t.notOk(local.takesPart(NET), 'its last endpoint collected: the node no longer follows the network');
});

t.test('own orphans: kept while dockerd does not answer, or knows the endpoint', async (t) => {
  const { state, eps } = await setup({ live: ['n1', 'n2', 'n3'] });
  const clock = { now: 0 };
  const down = collector(state, clock, { engine: engineWith({}, { down: true }) });
  const knows = collector(state, clock, { engine: engineWith({ e1: [eps.n1.id] }) });
  const unknownNet = collector(state, clock, { engine: engineWith({}) }); // the engine answers 404 for the network
  for (const now of [0, 5_000, 10_000, 100_000]) {
    clock.now = now;
    await down.runOnce();
    await knows.runOnce();
    await unknownNet.runOnce();
  }
  t.equal((await state.listEndpoints(NET)).length, 3);
  t.ok((await held(state)).includes('10.20.0.2'));
});

t.test('own orphans: an address another record also holds stays claimed', async (t) => {
  const { state } = await setup({ live: ['n1', 'n2', 'n3'] });
  await state.createEndpoint({ ...endpoint('d4', 'n2', '10.20.0.2') }); // a duplicate of n1's address
  const clock = { now: 0 };
  const c = collector(state, clock, { engine: engineWith({ e1: [] }) });
  await c.runOnce();
  clock.now = 5_000;
  t.equal((await c.runOnce()).endpoints, 1);
  t.ok((await held(state)).includes('10.20.0.2'), 'the other record still uses it');
});

t.test('a gone node\'s last alias and last pool use are kept, said once, and not collected again each pass', async (t) => {
  const { state } = await setup();
  const solo = 'tsoverlay-local:10.30.0.0_24';
  await state.createNetwork({ ...network({}), id: asNetworkId(solo), vni: asVni(4097), aliases: { e9: 'n3' }, ipv4: [{ poolId: asPoolId(solo), pool: '10.30.0.0/24' }] }, 'e9', 'n3');
  const { version } = await state.listPools();
  await state.createPool({ id: asPoolId(solo), space: 'tsoverlay-local', family: 4, pool: '10.30.0.0/24', requested: true, users: ['n3'], options: {}, createdAt: 'x' }, version);
  const lines: string[] = [];
  const log = { ...silentLog, info: (_: object, msg: string) => void lines.push(msg) };
  const clock = { now: 0 };
  const c = collector(state, clock, { log });
  await c.runOnce();
  clock.now = 10_000;
  t.same((await c.runOnce()).nodes, ['n3']);
  t.same((await state.getNetwork(solo))?.aliases, { e9: 'n3' }, 'the network it alone has keeps its alias');
  t.same((await state.getPool(solo))?.users, ['n3'], 'and its pool its user');
  t.same((await state.getPool(NET))?.users, ['n1', 'n2'], 'a shared pool loses it');
  for (const now of [20_000, 30_000]) {
    clock.now = now;
    t.same((await c.runOnce()).nodes, [], 'nothing left to collect: not collected again');
  }
  t.equal(lines.filter((l) => l.startsWith('not collected')).length, 2, 'each kept record said once', { lines });
  t.same((await state.nodes.listGone()).map((g) => [g.node, g.since]), [['n3', new Date(0).toISOString()]], 'still named (its last alias): still recorded gone, since its first look');
  t.equal(lines.filter((l) => l.startsWith('collected:')).length, 4, 'each collection is one line: endpoint, lone claim, alias, pool user', { lines });
});
